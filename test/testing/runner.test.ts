// Tests for LocalStack (provider/testing/runner.ts), the Pulumi-engine stand-in.
// Run: npx mocha -r ts-node/register test/testing/runner.test.ts --timeout 120000
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalStack, type OperationResult } from "../../provider/testing/runner";

const REPO = path.resolve(__dirname, "..", "..");
const FIXTURE = path.join(REPO, "test", "fixtures", "runner");

interface FileSpec {
  name: string;
  content?: string;
  kind?: string;
  dbr?: boolean;
  fail?: boolean;
  delayMs?: number;
  dependsOn?: string[];
  contentFrom?: string;
  secret?: string;
  group?: string;
  deletedWith?: string;
}

/** A scratch copy of the fixture program with its own node_modules, files dir and call log. */
class Lab {
  readonly root = fs.mkdtempSync(path.join(os.tmpdir(), "netns-runner-"));
  readonly prog = path.join(this.root, "prog");
  readonly dir = path.join(this.root, "files");
  readonly logFile = path.join(this.root, "calls.log");
  readonly lines: string[] = [];

  constructor() {
    fs.cpSync(path.join(FIXTURE, "program"), this.prog, { recursive: true });
    const nm = path.join(this.prog, "node_modules");
    fs.mkdirSync(nm);
    for (const e of fs.readdirSync(path.join(REPO, "node_modules"))) {
      fs.symlinkSync(path.join(REPO, "node_modules", e), path.join(nm, e));
    }
    fs.cpSync(path.join(FIXTURE, "files-helper"), path.join(nm, "runner-fixture-files"), { recursive: true });
    fs.writeFileSync(this.logFile, "");
  }

  stack(files: FileSpec[]): LocalStack {
    return new LocalStack({
      programDir: this.prog,
      stack: "test",
      config: { dir: this.dir, logFile: this.logFile, files: JSON.stringify(files) },
      log: (l) => this.lines.push(l),
    });
  }

  async run(op: "up" | "preview" | "refresh" | "destroy", files: FileSpec[] = []): Promise<OperationResult> {
    this.lines.push(`=== ${op}`);
    return this.stack(files)[op]();
  }

  calls(): string[] {
    return fs.readFileSync(this.logFile, "utf8").split("\n").filter(Boolean);
  }

  clearCalls(): void {
    fs.writeFileSync(this.logFile, "");
  }

  file(name: string, kind = "txt"): string {
    return path.join(this.dir, `${name}.${kind}`);
  }

  stateText(): string {
    return fs.readFileSync(path.join(this.prog, ".pulumi-state", "test.json"), "utf8");
  }

  customUrns(state: { resources: Array<{ custom: boolean; name: string; delete?: boolean }> }): string[] {
    return state.resources
      .filter((r) => r.custom && !r.delete)
      .map((r) => r.name)
      .sort();
  }

  cleanup(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

function expectOk(r: OperationResult, lab: Lab): void {
  assert.ok(r.ok, `operation failed: ${r.error}\n${lab.lines.join("\n")}`);
}

function hostProcessesIn(dir: string): number[] {
  const pids: number[] = [];
  for (const p of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) {
      continue;
    }
    try {
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, "utf8");
      if (cmd.includes("dynamic-provider") && fs.readlinkSync(`/proc/${p}/cwd`).startsWith(dir)) {
        pids.push(Number(p));
      }
    } catch {
      // process gone
    }
  }
  return pids;
}

/** Runner child processes working on `stateFile` (their argv holds the request JSON with its path). */
function runnerChildrenFor(stateFile: string): number[] {
  const pids: number[] = [];
  for (const p of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) {
      continue;
    }
    try {
      const argv = fs.readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0");
      if (argv.some((a) => /runnerChild\.[jt]s$/.test(a)) && argv.some((a) => a.includes(JSON.stringify(stateFile)))) {
        pids.push(Number(p));
      }
    } catch {
      // process gone
    }
  }
  return pids;
}

describe("LocalStack runner", function () {
  this.timeout(120000);
  const labs: Lab[] = [];
  const newLab = () => {
    const l = new Lab();
    labs.push(l);
    return l;
  };
  after(() => {
    for (const l of labs) {
      assert.deepEqual(hostProcessesIn(l.root), [], "provider host processes left behind");
      l.cleanup();
    }
  });

  it("up creates, a second up is a no-op, secrets stay secret and are encrypted in state", async () => {
    const lab = newLab();
    const files: FileSpec[] = [
      { name: "red", content: "R" },
      { name: "blue", content: "B", secret: "s3cr3t-Pa55w0rd", dependsOn: ["red"] },
    ];
    const r1 = await lab.run("up", files);
    expectOk(r1, lab);
    assert.equal(r1.counts.create, 3); // stack + 2 files
    assert.equal(fs.readFileSync(lab.file("red"), "utf8"), "R");
    assert.equal(fs.readFileSync(lab.file("blue"), "utf8"), "B");
    assert.deepEqual(r1.outputs.paths, { red: lab.file("red"), blue: lab.file("blue") });
    assert.equal(r1.outputs.plain, "hello");
    assert.equal(r1.outputs.secretOut, "[secret]");
    assert.ok(
      lab.lines.some((l) => /^\+ create +pulumi-nodejs:dynamic:Resource red \.\.\. ok \(\d+ ms\)$/.test(l)),
      lab.lines.join("\n"),
    );

    // The secret is in neither inputs, outputs nor stack outputs in plain text.
    const text = lab.stateText();
    assert.ok(!text.includes("s3cr3t-Pa55w0rd"), "secret in plain text in the state file");
    assert.ok(text.includes("__encrypted"));
    const keyFile = path.join(lab.prog, ".pulumi-state", "test.json.key");
    assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
    const state = await lab.stack(files).state();
    const blue = state.resources.find((r) => r.name === "blue")!;
    assert.equal(blue.inputs.secret, "s3cr3t-Pa55w0rd");
    assert.deepEqual(blue.secretPaths, [["secret"]]);
    assert.deepEqual(blue.dependencies, [state.resources.find((r) => r.name === "red")!.urn]);
    assert.equal(typeof blue.provider, "string");
    assert.ok(blue.provider.length > 0);

    lab.clearCalls();
    const stateFile = path.join(lab.prog, ".pulumi-state", "test.json");
    const before = fs.statSync(stateFile);
    const r2 = await lab.run("up", files);
    expectOk(r2, lab);
    // A no-op up writes nothing: neither the state file nor a journal.
    const after = fs.statSync(stateFile);
    assert.deepEqual([after.ino, after.mtimeMs], [before.ino, before.mtimeMs], "no-op up rewrote the state file");
    assert.ok(!fs.existsSync(`${stateFile}.journal`), "no-op up left a journal");
    assert.deepEqual({ ...r2.counts, same: 0 }, { create: 0, update: 0, replace: 0, delete: 0, same: 0, read: 0 });
    assert.equal(r2.counts.same, 3);
    assert.equal(r2.outputs.secretOut, "[secret]");
    assert.deepEqual(
      lab.calls().filter((c) => /^(create|update|delete) /.test(c)),
      [],
    );
  });

  it("changing an input updates; a replace honours delete-before-replace; removing a resource deletes it", async () => {
    const lab = newLab();
    await lab.run("up", [
      { name: "a", content: "1" },
      { name: "b", content: "1" },
      { name: "c", content: "1" },
    ]);
    lab.clearCalls();
    const up = await lab.run("up", [
      { name: "a", content: "2" }, // update
      { name: "b", content: "1", kind: "conf", dbr: true }, // replace, delete first
      { name: "c", content: "1", kind: "conf" }, // replace, create first
    ]);
    expectOk(up, lab);
    assert.equal(up.counts.update, 1);
    assert.equal(up.counts.replace, 2);
    assert.equal(up.counts.create, 0);
    assert.equal(fs.readFileSync(lab.file("a"), "utf8"), "2");
    assert.ok(fs.existsSync(lab.file("b", "conf")) && !fs.existsSync(lab.file("b")));
    assert.ok(fs.existsSync(lab.file("c", "conf")) && !fs.existsSync(lab.file("c")));
    const calls = lab.calls();
    assert.ok(calls.indexOf("delete b") < calls.indexOf("create b"), calls.join("\n"));
    assert.ok(calls.indexOf("create c") < calls.indexOf("delete c"), calls.join("\n"));
    const st = await lab.stack([]).state();
    assert.deepEqual(lab.customUrns(st), ["a", "b", "c"]);
    assert.ok(!st.resources.some((r) => r.delete), "pending replace-deletes left in state");

    const rm = await lab.run("up", [{ name: "a", content: "2" }]);
    expectOk(rm, lab);
    assert.equal(rm.counts.delete, 2);
    assert.ok(!fs.existsSync(lab.file("b", "conf")) && !fs.existsSync(lab.file("c", "conf")));
    assert.deepEqual(lab.customUrns(await lab.stack([]).state()), ["a"]);
  });

  it("refresh drops a resource removed behind its back and reports changed outputs", async () => {
    const lab = newLab();
    const files = [
      { name: "keep", content: "k" },
      { name: "gone", content: "g" },
      { name: "edited", content: "e" },
    ];
    expectOk(await lab.run("up", files), lab);
    fs.rmSync(lab.file("gone"));
    fs.writeFileSync(lab.file("edited"), "edited by hand");
    const r = await lab.run("refresh", files);
    expectOk(r, lab);
    assert.equal(r.counts.delete, 1);
    assert.equal(r.counts.update, 1);
    assert.equal(r.counts.same, 1);
    const del = r.steps.find((s) => s.op === "refresh-delete")!;
    assert.match(del.urn, /::gone$/);
    const upd = r.steps.find((s) => s.op === "refresh-update")!;
    assert.match(upd.urn, /::edited$/);
    assert.match(upd.detail ?? "", /content/);
    assert.match(upd.detail ?? "", /size/);
    const st = await lab.stack(files).state();
    assert.deepEqual(lab.customUrns(st), ["edited", "keep"]);
    assert.equal(st.resources.find((x) => x.name === "edited")!.outputs.content, "edited by hand");

    // The next up recreates the dropped file and restores the edited one.
    const up = await lab.run("up", files);
    expectOk(up, lab);
    assert.equal(up.counts.create, 1);
    assert.equal(up.counts.update, 1);
    assert.equal(fs.readFileSync(lab.file("edited"), "utf8"), "e");
  });

  it("preview touches nothing, passes unknowns through check and counts what would happen", async () => {
    const lab = newLab();
    const files: FileSpec[] = [
      { name: "src", content: "s" },
      { name: "dst", contentFrom: "src" },
    ];
    const p = await lab.run("preview", files);
    expectOk(p, lab);
    assert.equal(p.counts.create, 3);
    assert.ok(!fs.existsSync(lab.dir), "preview created the files dir");
    assert.ok(!fs.existsSync(path.join(lab.prog, ".pulumi-state", "test.json")), "preview wrote state");
    const calls = lab.calls();
    assert.ok(calls.includes("check dst unknown=content"), calls.join("\n"));
    assert.ok(!calls.some((c) => /^(create|update|delete) /.test(c)), calls.join("\n"));
    assert.match(p.steps.find((s) => s.urn.endsWith("::dst"))!.detail ?? "", /unknown inputs: content/);
    assert.deepEqual(p.outputs.paths, { src: "[unknown]", dst: "[unknown]" });

    expectOk(await lab.run("up", files), lab);
    lab.clearCalls();
    const before = lab.stateText();
    const p2 = await lab.run("preview", [{ name: "src", content: "changed" }]);
    expectOk(p2, lab);
    assert.equal(p2.counts.update, 1);
    assert.equal(p2.counts.delete, 1);
    assert.equal(fs.readFileSync(lab.file("src"), "utf8"), "s");
    assert.ok(fs.existsSync(lab.file("dst")));
    assert.equal(lab.stateText(), before);
    assert.ok(!lab.calls().some((c) => /^(create|update|delete) /.test(c)));
  });

  it("destroy removes everything in reverse dependency order", async () => {
    const lab = newLab();
    const files: FileSpec[] = [
      { name: "base", content: "0", group: "g" },
      { name: "mid", content: "1", dependsOn: ["base"], group: "g" },
      { name: "top", contentFrom: "mid" },
      { name: "loner", content: "x" },
    ];
    expectOk(await lab.run("up", files), lab);
    const st = await lab.stack(files).state();
    const mid = st.resources.find((r) => r.name === "mid")!;
    assert.match(mid.urn, /::fixture:index:Group\$pulumi-nodejs:dynamic:Resource::mid$/);
    lab.clearCalls();
    const d = await lab.run("destroy");
    expectOk(d, lab);
    assert.equal(d.counts.delete, 6); // 4 files + group + stack
    const deletes = lab.calls().filter((c) => c.startsWith("delete "));
    assert.equal(deletes.length, 4);
    assert.ok(deletes.indexOf("delete top") < deletes.indexOf("delete mid"), deletes.join(","));
    assert.ok(deletes.indexOf("delete mid") < deletes.indexOf("delete base"), deletes.join(","));
    const order = d.steps.map((s) => s.urn.split("::").pop());
    assert.ok(order.indexOf("g") > order.indexOf("base") && order.indexOf("g") > order.indexOf("mid"));
    assert.equal(order[order.length - 1], "runner-fixture-test");
    assert.deepEqual(fs.readdirSync(lab.dir), []);
    assert.deepEqual((await lab.stack([]).state()).resources, []);
  });

  it("honours deletedWith as the engine does: no provider delete when the target goes too, a delete when it stays", async () => {
    const lab = newLab();
    const files: FileSpec[] = [
      { name: "holder", content: "h" },
      { name: "inside", content: "i", dependsOn: ["holder"], deletedWith: "holder" },
      { name: "alone", content: "a", deletedWith: "holder" },
    ];
    expectOk(await lab.run("up", files), lab);
    const st = await lab.stack(files).state();
    const holder = st.resources.find((r) => r.name === "holder")!;
    assert.equal(st.resources.find((r) => r.name === "inside")!.deletedWith, holder.urn);
    // Removing only "alone" from the program: its target stays, so its provider delete runs.
    lab.clearCalls();
    const kept = files.slice(0, 2);
    expectOk(await lab.run("up", kept), lab);
    assert.deepEqual(
      lab.calls().filter((c) => c.startsWith("delete ")),
      ["delete alone"],
    );
    lab.clearCalls();
    const d = await lab.run("destroy");
    expectOk(d, lab);
    assert.deepEqual(
      lab.calls().filter((c) => c.startsWith("delete ")),
      ["delete holder"],
      "inside went with holder",
    );
    const inside = d.steps.find((s) => s.urn.endsWith("::inside"));
    assert.match(inside?.detail ?? "", /deleted with .*holder/);
    assert.deepEqual((await lab.stack([]).state()).resources, []);
    // The fixture's files are plain files: "inside" really was left to its holder.
    assert.deepEqual(fs.readdirSync(lab.dir), ["inside.txt"]);
  });

  it("a failing create keeps the created siblings in state and destroy cleans them up", async () => {
    const lab = newLab();
    const files: FileSpec[] = [
      { name: "ok1", content: "1" },
      { name: "bad", content: "x", fail: true },
      { name: "ok2", content: "2", delayMs: 200 },
      { name: "after-bad", content: "3", dependsOn: ["bad"] },
    ];
    const r = await lab.run("up", files);
    assert.equal(r.ok, false);
    assert.match(r.error ?? "", /create pulumi-nodejs:dynamic:Resource bad .*boom: cannot create bad/);
    assert.ok(lab.lines.some((l) => l.includes("bad") && l.includes("boom")));
    assert.equal(r.counts.create, 3); // stack + ok1 + ok2
    const st = await lab.stack(files).state();
    assert.deepEqual(lab.customUrns(st), ["ok1", "ok2"]);
    assert.ok(fs.existsSync(lab.file("ok1")) && fs.existsSync(lab.file("ok2")));
    assert.ok(!lab.calls().includes("create after-bad"));

    const d = await lab.run("destroy");
    expectOk(d, lab);
    assert.deepEqual(fs.readdirSync(lab.dir), []);
    assert.deepEqual((await lab.stack([]).state()).resources, []);
  });

  it("a failed create ends the update even when other resources wait on its outputs (as the engine stops)", async () => {
    const lab = newLab();
    const files: FileSpec[] = [
      { name: "bad", content: "x", fail: true, group: "g" },
      { name: "dep", contentFrom: "bad", dependsOn: ["bad"], group: "g" },
      { name: "dep2", content: "y", dependsOn: ["dep"], group: "g" },
    ];
    const started = Date.now();
    const r = await lab.run("up", files);
    assert.equal(r.ok, false);
    assert.match(r.error ?? "", /create pulumi-nodejs:dynamic:Resource bad .*boom/);
    assert.ok(Date.now() - started < 30_000, `the failed up took ${Date.now() - started} ms`);
    assert.ok(!lab.calls().some((c) => c.startsWith("create dep")));
  });

  it("a runner killed mid-up leaves state (file + journal) from which destroy removes everything created", async () => {
    const lab = newLab();
    const secret = "jOurn4l-s3cr3t-Va1ue";
    const files: FileSpec[] = [
      { name: "first", content: "1", secret },
      { name: "second", content: "2", dependsOn: ["first"] },
      { name: "slow", content: "3", delayMs: 60000 },
    ];
    const stack = lab.stack(files);
    const journal = `${stack.stateFile}.journal`;
    const up = stack.up().then(
      (r) => ({ ok: true as const, r }),
      (e: Error) => ({ ok: false as const, e }),
    );
    // Wait until both fast creates are in the journal, then SIGKILL the runner child mid-step.
    const journalNames = () =>
      fs.existsSync(journal)
        ? fs
            .readFileSync(journal, "utf8")
            .split("\n")
            .filter(Boolean)
            .flatMap((l) => JSON.parse(l).ops.map((o: { put?: { name: string } }) => o.put?.name))
        : [];
    const deadline = Date.now() + 60000;
    while (!(journalNames().includes("first") && journalNames().includes("second"))) {
      assert.ok(Date.now() < deadline, `creates never reached the journal:\n${lab.lines.join("\n")}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(lab.calls().includes("create slow"), lab.calls().join(","));
    const children = runnerChildrenFor(stack.stateFile);
    assert.equal(children.length, 1, `runner child processes: ${children}`);
    process.kill(children[0], "SIGKILL");
    const res = await up;
    assert.equal(res.ok, false, "up finished although its runner was killed");
    assert.match(res.ok ? "" : res.e.message, /exited with code null without a result/);

    // The state file alone does not know the creates (it is written at the end); the journal does.
    assert.ok(!fs.existsSync(stack.stateFile) || !fs.readFileSync(stack.stateFile, "utf8").includes("first"));
    const journalText = fs.readFileSync(journal, "utf8");
    assert.ok(!journalText.includes(secret), "secret in plain text in the journal");
    assert.ok(journalText.includes("__encrypted"));
    const st = await stack.state();
    assert.deepEqual(lab.customUrns(st), ["first", "second"]);
    assert.equal(st.resources.find((r) => r.name === "first")!.inputs.secret, secret);
    assert.ok(!JSON.stringify(await stack.rawState()).includes(secret));
    assert.ok(fs.existsSync(lab.file("first")) && fs.existsSync(lab.file("second")));
    assert.ok(!fs.existsSync(lab.file("slow")));

    lab.clearCalls();
    const d = await lab.run("destroy");
    expectOk(d, lab);
    assert.deepEqual(
      lab
        .calls()
        .filter((c) => c.startsWith("delete "))
        .sort(),
      ["delete first", "delete second"],
    );
    assert.deepEqual(fs.readdirSync(lab.dir), []);
    assert.deepEqual((await lab.stack([]).state()).resources, []);
    assert.ok(!fs.existsSync(journal), "journal left after destroy");
  });

  it("check failures name the resource, property and reason", async () => {
    const lab = newLab();
    const r = await lab.run("up", [{ name: "x/y", content: "1" }]);
    assert.equal(r.ok, false);
    assert.match(r.error ?? "", /x\/y.*property name: must not contain a slash/);
    assert.ok(!fs.existsSync(lab.dir));
  });
});
