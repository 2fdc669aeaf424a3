import { strict as assert } from "node:assert";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { LabHost, PulumiStack } from "../../provider/testing";
import { labConfig } from "../integration/support";
import { testingKit, writeProgram } from "../support/harness";
import { CONFIGURED_PROGRAM, countEvents } from "./support";

/**
 * The lab shares /etc/passwd and /etc/sudoers.d with this machine, so the two
 * users made here are machine users: uniquely named system users without a
 * home, removed (with the sudoers drop-in) in after(), whatever happened.
 */
const SUFFIX = `${process.pid}`.slice(-6);
const SUDOER = `pnetns-sudo-${SUFFIX}`;
const PLAIN = `pnetns-nosudo-${SUFFIX}`;
const DROP_IN = `/etc/sudoers.d/pulumi-netns-test-${SUFFIX}`;

const hasSudo = () => spawnSync("sh", ["-c", "command -v sudo && command -v useradd"]).status === 0;

function removeUsers(): void {
  fs.rmSync(DROP_IN, { force: true });
  for (const u of [SUDOER, PLAIN]) spawnSync("userdel", [u], { stdio: "ignore" });
}

describe("security: sudo: true for a non-root user", function () {
  this.timeout(300_000);
  let lab: LabHost;
  let dir: string;
  const stacks: PulumiStack[] = [];

  before(async function () {
    if (!hasSudo()) {
      // Needs the Debian packages sudo and passwd (useradd).
      this.skip();
    }
    removeUsers();
    for (const u of [SUDOER, PLAIN]) {
      execFileSync("useradd", ["--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/bin/sh", u]);
      // sshd (without PAM) refuses locked accounts ("!"); "*" means: no password, not locked.
      execFileSync("usermod", ["-p", "*", u]);
    }
    fs.writeFileSync(DROP_IN, `${SUDOER} ALL=(root) NOPASSWD: ALL\n`, { mode: 0o440 });
    execFileSync("visudo", ["-cf", DROP_IN], { stdio: "ignore" });
    lab = await testingKit().startLabHost({ name: `sec-sudo-${process.pid}` });
    dir = writeProgram("sudo", CONFIGURED_PROGRAM);
  });

  after(async () => {
    // What a failed test left, while its user can still log in.
    for (const s of stacks) await s.destroy().catch(() => undefined);
    removeUsers();
    if (lab) await lab.stop();
  });

  const stack = (user: string, sudo: boolean) => {
    const trace = path.join(dir, `trace-${user}-${sudo}.jsonl`);
    const s = new (testingKit().PulumiStack)({
      programDir: dir,
      stack: user.split("-")[1],
      config: {
        ...labConfig(lab),
        user,
        kind: "Namespace",
        args: JSON.stringify({ name: `via-${user.split("-")[1]}` }),
        conn: JSON.stringify({ sudo }),
      },
      env: { PULUMI_NETNS_TRACE: trace },
    });
    stacks.push(s);
    return { s, trace };
  };

  const namespaces = async () =>
    (JSON.parse((await lab.exec(["ip", "-j", "netns", "list"])).stdout || "[]") as Array<{ name: string }>).map(
      (x) => x.name,
    );

  it("a user with passwordless sudo creates and destroys through sudo -n", async () => {
    const { s, trace } = stack(SUDOER, true);
    const r = await s.up();
    assert.ok(r.ok, r.error);
    assert.deepEqual(await namespaces(), ["via-sudo"]);
    assert.ok(countEvents(trace, "command") > 0);
    const d = await s.destroy();
    assert.ok(d.ok, d.error);
    assert.deepEqual(await namespaces(), []);
  });

  it("a user without sudo rights fails with a clear message before changing anything", async () => {
    const before = await testingKit().fingerprint(lab);
    const { s, trace } = stack(PLAIN, true);
    const r = await s.up();
    assert.equal(r.ok, false);
    assert.match(
      r.error ?? "",
      /cannot run commands as root through "sudo -n" on pnetns-nosudo-\S+@.*passwordless sudo/s,
    );
    assert.equal(countEvents(trace, "command"), 0);
    assert.equal(await testingKit().fingerprint(lab), before);
  });
});
