import { strict as assert } from "node:assert";
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fingerprint, type LabHost, startLabHost } from "../../provider/testing";
import { pulumiRoot } from "../support/harness";
import { netnsList } from "./support";

/**
 * The README's "Pointing it at a real lab VM with `pulumi up`" section, run
 * literally against a lab host: its ```sh blocks are read from README.md at
 * test time, only the values a reader substitutes (HOST, PORT, KEY_FILE) are
 * replaced, and every other line runs as written, one after the other in one
 * bash (so variables carry over, as in a terminal), in a copy of this working
 * tree (tracked and untracked, not ignored, files) outside the repository.
 * Every line's stdin is /dev/null: the text must work without a terminal.
 *
 * The environment is what a reader's shell has: the Pulumi CLI on PATH (the
 * one `npm run pulumi:install` gives), PULUMI_CONFIG_PASSPHRASE (the README
 * says the passphrase prompt takes it), and, so the machine's own Pulumi
 * settings stay untouched, PULUMI_HOME in a temp folder and update checks off.
 */
const REPO = path.resolve(__dirname, "..", "..");
const SECTION = /^## Pointing it at a real lab VM with `pulumi up`\s*$/;

/** What a reader replaces in the README's commands: `NAME=<example>` lines, by the lab's values. */
const SUBSTITUTIONS = (lab: LabHost, keyFile: string): Array<[name: string, value: string]> => [
  ["HOST", lab.connection.host],
  ["PORT", String(lab.connection.port)],
  ["KEY_FILE", keyFile],
];

/** The section's ```sh blocks as command lines (comment-only and blank lines dropped, `\` continuations joined). */
function readmeCommands(readme: string): string[] {
  const lines = readme.split("\n");
  const start = lines.findIndex((l) => SECTION.test(l));
  assert.ok(start >= 0, "README.md has no section '## Pointing it at a real lab VM with `pulumi up`'");
  const end = lines.findIndex((l, i) => i > start && /^## /.test(l));
  const section = lines.slice(start + 1, end < 0 ? undefined : end);
  const commands: string[] = [];
  let inBlock = false;
  let pending = "";
  for (const line of section) {
    if (!inBlock) {
      if (/^```(sh|bash|shell)\s*$/.test(line)) inBlock = true;
      continue;
    }
    if (/^```\s*$/.test(line)) {
      inBlock = false;
      continue;
    }
    const joined = pending + line;
    if (/\\$/.test(line)) {
      pending = `${joined.slice(0, -1)} `;
      continue;
    }
    pending = "";
    if (joined.trim() && !/^\s*#/.test(joined)) commands.push(joined);
  }
  return commands;
}

/** Replaces the value of each `NAME=...` line (keeping its comment); each name must be assigned exactly once. */
function substitute(commands: string[], values: Array<[string, string]>): string[] {
  const out = [...commands];
  for (const [name, value] of values) {
    const re = new RegExp(`^${name}=\\S+`);
    const hits = out.map((l, i) => (re.test(l) ? i : -1)).filter((i) => i >= 0);
    assert.equal(hits.length, 1, `the README's commands assign ${name}= ${hits.length} times (expected once)`);
    out[hits[0]] = out[hits[0]].replace(re, `${name}=${shellQuote(value)}`);
  }
  return out;
}

const shellQuote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** One bash, fed a line at a time like a terminal; each line runs with stdin from /dev/null. */
class Shell {
  readonly child: ChildProcess;
  readonly transcript: string[] = [];
  private buffer = "";
  private waiter?: (code: number) => void;
  private exited?: string;
  private readonly mark = `__readme_line_done_${randomBytes(6).toString("hex")}`;

  constructor(cwd: string, env: NodeJS.ProcessEnv) {
    // Its own process group, so a hung line can be ended with everything it started.
    this.child = spawn("bash", ["--noprofile", "--norc"], {
      cwd,
      env,
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    });
    this.child.stdout?.on("data", (c: Buffer) => this.onData(c.toString()));
    this.child.stderr?.on("data", (c: Buffer) => this.transcript.push(...c.toString().trimEnd().split("\n")));
    this.child.on("exit", (code, signal) => {
      this.exited = `bash exited (${code ?? signal})`;
      this.waiter?.(-1);
    });
  }

  private onData(text: string): void {
    this.buffer += text;
    const lines = this.buffer.split("\n");
    this.buffer = lines.pop() ?? "";
    for (const l of lines) {
      const m = new RegExp(`^${this.mark} (\\d+)$`).exec(l);
      if (m) this.waiter?.(Number(m[1]));
      else this.transcript.push(l);
    }
  }

  /** Runs one command line; resolves with its exit status (-1 if bash died or the line timed out). */
  run(line: string, timeoutMs: number): Promise<number> {
    if (this.exited) return Promise.resolve(-1);
    this.transcript.push(`$ ${line}`);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.transcript.push(`(timed out after ${timeoutMs} ms)`);
        this.waiter = undefined;
        resolve(-1);
      }, timeoutMs);
      this.waiter = (code) => {
        clearTimeout(timer);
        this.waiter = undefined;
        resolve(code);
      };
      // A { } group runs in this shell (variables and exports carry over); its output, stderr included, in order.
      this.child.stdin?.write(`{\n${line}\n} </dev/null 2>&1; echo "${this.mark} $?"\n`);
    });
  }

  /** Ends bash and whatever it started (its process group): SIGINT as Ctrl-C would, then SIGKILL. */
  async stop(): Promise<void> {
    const pid = this.child.pid;
    if (this.exited || !pid) return;
    this.child.stdin?.end();
    const gone = new Promise<void>((r) => this.child.once("exit", () => r()));
    const signal = (s: NodeJS.Signals) => {
      try {
        process.kill(-pid, s);
      } catch {
        // already gone
      }
    };
    signal("SIGINT");
    if (await Promise.race([gone.then(() => true), sleep(10_000).then(() => false)])) return;
    signal("SIGKILL");
    await Promise.race([gone, sleep(5_000)]);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** The working tree as a clone would have it, plus uncommitted and untracked (not ignored) files. */
function copyWorkingTree(dest: string): void {
  const files = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], {
    cwd: REPO,
    encoding: "utf8",
  })
    .split("\0")
    .filter(Boolean);
  for (const f of files) {
    if (f.split("/").includes("node_modules")) continue;
    const src = path.join(REPO, f);
    const st = fs.lstatSync(src, { throwIfNoEntry: false });
    if (!st) continue; // deleted in the working tree
    const dst = path.join(dest, f);
    fs.mkdirSync(path.dirname(dst), { recursive: true });
    if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(src), dst);
    else fs.copyFileSync(src, dst);
  }
}

/** The lab host's links, from `ip -j -d link show`. */
async function links(
  lab: LabHost,
): Promise<Array<{ ifname: string; master?: string; linkinfo?: { info_kind?: string } }>> {
  return JSON.parse((await lab.exec(["ip", "-j", "-d", "link", "show"])).stdout);
}

async function addresses(lab: LabHost, dev: string): Promise<string[]> {
  const out = JSON.parse((await lab.exec(["ip", "-j", "addr", "show", "dev", dev])).stdout);
  return out.flatMap((l: { addr_info: Array<{ family: string; local: string; prefixlen: number }> }) =>
    l.addr_info.filter((a) => a.family === "inet").map((a) => `${a.local}/${a.prefixlen}`),
  );
}

/** Every file under dir, node_modules and dist left out. */
function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === "node_modules" || e.name === "dist" ? [] : filesUnder(p);
    return e.isFile() ? [p] : [];
  });
}

describe("README: 'Pointing it at a real lab VM with `pulumi up`', run literally against a lab host", function () {
  this.timeout(1_200_000);
  let lab: LabHost | undefined;
  let work: string;
  let shell: Shell | undefined;
  let env: NodeJS.ProcessEnv;
  let commands: string[];
  let upRan = false;
  let destroyed = false;

  before(async () => {
    const root = pulumiRoot();
    work = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-netns-readme-"));
    lab = await startLabHost({ name: `it-readme-${process.pid}` });
    const keyFile = path.join(work, "lab-key");
    fs.writeFileSync(keyFile, lab.connection.privateKey, { mode: 0o600 });
    const readme = fs.readFileSync(path.join(REPO, "README.md"), "utf8");
    commands = substitute(readmeCommands(readme), SUBSTITUTIONS(lab, keyFile));
    const repo = path.join(work, "pulumi-netns");
    copyWorkingTree(repo);
    env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith("npm_") && !k.startsWith("PULUMI_")),
    );
    Object.assign(env, {
      PATH: `${path.join(root, "bin")}${path.delimiter}${process.env.PATH ?? ""}`,
      PULUMI_HOME: path.join(work, "pulumi-home"),
      PULUMI_CONFIG_PASSPHRASE: "readme-test-passphrase",
      PULUMI_SKIP_UPDATE_CHECK: "true",
    });
    shell = new Shell(repo, env);
  });

  after(async () => {
    await shell?.stop();
    if (lab && upRan && !destroyed && shell) {
      // Best effort, so a failure leaves no stack behind either (the lab's stop removes what it made anyway).
      await new Promise<void>((resolve) =>
        execFile(
          path.join(pulumiRoot(), "bin", "pulumi"),
          ["destroy", "--yes", "--non-interactive"],
          { cwd: path.join(work, "pulumi-netns"), env, timeout: 180_000, killSignal: "SIGKILL" },
          () => resolve(),
        ),
      );
    }
    if (lab) await lab.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it("says which commands it runs: setup, a stack with every required config key, up and destroy", () => {
    const at = (re: RegExp) => commands.findIndex((c) => re.test(c));
    assert.ok(
      at(/npm ci\b.*npm run pulumi:setup/) >= 0,
      `no 'npm ci && npm run pulumi:setup' in:\n${commands.join("\n")}`,
    );
    for (const key of ["host", "privateKey"])
      assert.ok(at(new RegExp(`pulumi config set (--secret )?${key}\\b`)) >= 0, `the README never sets ${key}`);
    assert.match(commands[at(/pulumi config set .*privateKey/)], /--secret/, "privateKey must be set as a secret");
    const up = at(/^pulumi up\b/);
    const destroy = at(/^pulumi destroy\b/);
    assert.ok(up >= 0 && destroy > up, `expected 'pulumi up' then 'pulumi destroy' in:\n${commands.join("\n")}`);
  });

  it("brings the lesson up on the lab host with the README's commands, and destroy leaves it as it was", async () => {
    assert.ok(lab && shell);
    const theLab = lab;
    const before = await fingerprint(theLab);
    assert.deepEqual(await netnsList(theLab), []);
    const tail = () => shell!.transcript.slice(-60).join("\n");

    for (const line of commands) {
      const code = await shell.run(line, 900_000);
      assert.equal(code, 0, `README line failed (exit ${code}): ${line}\n--- transcript ---\n${tail()}`);

      if (/^pulumi up\b/.test(line)) {
        upRan = true;
        assert.deepEqual((await netnsList(theLab)).sort(), ["blue", "red"], tail());
        const all = await links(theLab);
        const bridge = all.find((l) => l.ifname === "v-net-0");
        assert.equal(bridge?.linkinfo?.info_kind, "bridge", "v-net-0 is not a bridge");
        assert.deepEqual(await addresses(theLab, "v-net-0"), ["192.168.15.5/24"]);
        assert.deepEqual(
          all
            .filter((l) => l.master === "v-net-0")
            .map((l) => l.ifname)
            .sort(),
          ["veth-blue-br", "veth-red-br"],
        );
        // The key went in as a secret: its text is in no file the commands wrote (stack config, state, backups).
        const keyLine = theLab.connection.privateKey.split("\n")[1];
        const written = [...filesUnder(path.join(work, "pulumi-netns")), ...filesUnder(path.join(work, "pulumi-home"))];
        const text = (f: string) => fs.readFileSync(f, "utf8");
        assert.ok(
          written.some((f) => text(f).includes("pulumi-nodejs:dynamic/netns:Bridge")),
          "no stack state was written in the working copy",
        );
        assert.ok(
          written.some((f) => /privateKey:\s*\n\s*secure:/.test(text(f))),
          "no stack config with a secure privateKey",
        );
        for (const f of written) assert.ok(!text(f).includes(keyLine), `the private key is in ${f}`);
      }

      if (/^pulumi destroy\b/.test(line)) {
        destroyed = true;
        assert.deepEqual(await netnsList(theLab), []);
        assert.equal(await fingerprint(theLab), before, "the lab host differs after pulumi destroy");
      }
    }
    assert.ok(upRan && destroyed);
  });
});
