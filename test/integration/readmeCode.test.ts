import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { LabHost } from "../../provider/testing";
import { programDir, REPO, testingKit, writeProgram } from "../support/harness";
import { sourceOf, type TsProgram, tableResourceCells, tsPrograms, withoutLayout } from "../support/readmeCode";
import { labConfig, netnsList, ok, ping } from "./support";

/**
 * README.md's TypeScript, as a reader copies it. Every ```ts block is a whole
 * program unless the HTML comment before it says it continues a named one
 * (the convention is in test/support/readmeCode.ts). Each program is compiled
 * by strict tsc in a project laid out as a user's (the packed tarball
 * installed, Pulumi's template tsconfig) and a failure names the README line.
 * The lesson's program and the IsolatedNetwork one then run on a lab host
 * through the real engine.
 */
const README = fs.readFileSync(path.join(REPO, "README.md"), "utf8");
const LESSON_SECTION = "## The lesson as one program";

/** Pulumi's `typescript` template's compiler options, with every file a module of its own. */
const USER_TSCONFIG = {
  compilerOptions: {
    strict: true,
    target: "es2020",
    module: "commonjs",
    moduleResolution: "node",
    experimentalDecorators: true,
    noFallthroughCasesInSwitch: true,
    noImplicitReturns: true,
    forceConsistentCasingInFileNames: true,
    // Each block stands for its own project's index.ts: one block's names are not another's.
    moduleDetection: "force",
    // What the user's project has in node_modules/@types; tsc would also take the repository's (the scratch project is inside it).
    types: ["node"],
    noEmit: true,
  },
};

const fileOf = (p: TsProgram) => `readme-line-${p.parts[p.parts.length - 1].line}.ts`;

function tsc(dir: string): Promise<string> {
  const bin = path.join(dir, "node_modules", "typescript", "bin", "tsc");
  return new Promise((resolve) =>
    execFile(process.execPath, [bin, "-p", ".", "--pretty", "false"], { cwd: dir, maxBuffer: 16 << 20 }, (_e, out) =>
      resolve(out),
    ),
  );
}

function named(name: string): TsProgram {
  const p = tsPrograms(README).find((x) => x.name === name);
  assert.ok(p, `README.md has no \`<!-- ts: ${name} ... -->\` block`);
  return p;
}

describe("README: its TypeScript compiles as a user's project and the lesson runs on a lab host", function () {
  this.timeout(900_000);

  it("every ```ts block compiles with strict tsc against the packed package (failures name the README line)", async () => {
    const programs = tsPrograms(README);
    assert.ok(programs.length >= 1, "README.md has no ```ts block");
    const dir = programDir("readme-ts");
    const files = programs.map(fileOf);
    for (const [i, p] of programs.entries()) fs.writeFileSync(path.join(dir, files[i]), sourceOf(p).text);
    fs.writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify({ ...USER_TSCONFIG, files }, null, 2));
    const out = await tsc(dir);
    const errors = out
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => {
        const m = /^(readme-line-\d+\.ts)\((\d+),\d+\): (.*)$/.exec(l);
        if (!m) return l;
        const p = programs[files.indexOf(m[1])];
        return `README.md:${sourceOf(p).markdownLine(Number(m[2]))} (${p.label}): ${m[3]}`;
      });
    assert.deepEqual(errors, [], `README's TypeScript does not compile:\n${errors.join("\n")}`);
  });

  it("every resource in the lesson table is code from a block that compiles (and the lesson program runs)", () => {
    const cells = tableResourceCells(README, LESSON_SECTION);
    assert.ok(cells.length >= 8, `only ${cells.length} resource cells found in "${LESSON_SECTION}"`);
    const compiled = tsPrograms(README).map((p) => withoutLayout(sourceOf(p).text));
    const missing = cells.filter((c) => !compiled.some((text) => text.includes(withoutLayout(c.code))));
    assert.deepEqual(
      missing.map((c) => `README.md:${c.line}: ${c.code}`),
      [],
      "table cells that are in no ```ts block",
    );
  });

  describe("on a lab host, through the real engine", () => {
    let lab: LabHost | undefined;
    let pristine: string;
    const log: string[] = [];

    before(async () => {
      const kit = testingKit();
      lab = await kit.startLabHost({ name: `it-readme-ts-${process.pid}` });
      pristine = await kit.fingerprint(lab);
    });

    after(async () => {
      if (lab) await lab.stop();
    });

    /** Runs a README program up, lets `check` look at the lab, destroys it, and compares the lab with before. */
    async function upCheckDestroy(program: TsProgram, check: (lab: LabHost) => Promise<void>): Promise<void> {
      const kit = testingKit();
      const theLab = lab as LabHost;
      const dir = writeProgram(`readme-${program.name}`, sourceOf(program).text);
      const stack = new kit.PulumiStack({ programDir: dir, config: labConfig(theLab), log: (l) => log.push(l) });
      try {
        ok(await stack.up(), log);
        await check(theLab);
        ok(await stack.destroy(), log);
      } finally {
        await stack.destroy().catch(() => undefined);
      }
      assert.deepEqual(await netnsList(theLab), []);
      assert.equal(await kit.fingerprint(theLab), pristine, "the lab host differs after destroy");
    }

    const pings = async (lab: LabHost, tries: Array<[from: string | undefined, to: string]>) => {
      const failed: string[] = [];
      for (const [from, to] of tries)
        if ((await ping(lab, to, from)).code !== 0) failed.push(`${from ?? "the host"} -> ${to}`);
      assert.deepEqual(failed, [], "pings that got no answer");
    };

    it('"lesson-bridge": red and blue ping each other and the gateway, red reaches the "internet" through NAT', async () => {
      await upCheckDestroy(named("lesson-bridge"), async (theLab) => {
        assert.deepEqual((await netnsList(theLab)).sort(), ["blue", "red"]);
        await pings(theLab, [
          ["red", "192.168.15.2"],
          ["blue", "192.168.15.1"],
          ["red", "192.168.15.5"],
          ["red", "198.51.100.1"],
        ]);
      });
    });

    it('"isolated-network": the network, a VethPair between two of its namespaces and a host Route to it', async () => {
      await upCheckDestroy(named("isolated-network"), async (theLab) => {
        assert.deepEqual((await netnsList(theLab)).sort(), ["blue", "red"]);
        await pings(theLab, [
          ["red", "192.168.15.2"],
          ["red", "10.10.0.2"],
          [undefined, "10.10.0.1"],
        ]);
      });
    });
  });
});
