import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import * as path from "node:path";
import type { LabHost, PulumiStack } from "../../provider/testing";
import { type LabHost as SourceLabHost, startLabHost } from "../../provider/testing/labHost";
import { closeAllRemotes, openRemote } from "../../provider/transport";
import { labConfig, providerCounts } from "../integration/support";
import { testingKit, writeProgram } from "../support/harness";
import { CONFIGURED_PROGRAM, countEvents, strayKey } from "./support";

/** "SHA256:..." of a known_hosts style key, as ssh-keygen -l prints it. */
function sha256Of(key: string): string {
  const blob = Buffer.from(key.split(" ")[1], "base64");
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

describe("security: host keys are pinned, recorded on first use, and a change is refused", function () {
  this.timeout(300_000);
  let lab: LabHost;
  let dir: string;
  let n = 0;
  const stacks: PulumiStack[] = [];

  /** The one-Namespace program as stack `name` (two calls with one name share its state), with its own trace file. */
  const stack = (conn: Record<string, unknown>, name = "hk") => {
    const i = ++n;
    const trace = path.join(dir, `trace-${i}.jsonl`);
    const s = new (testingKit().PulumiStack)({
      programDir: dir,
      stack: name,
      config: {
        ...labConfig(lab),
        kind: "Namespace",
        args: JSON.stringify({ name }),
        // Secret config when it carries a key (a jump host's), as a user's would be.
        conn: { value: JSON.stringify(conn), secret: JSON.stringify(conn).includes("PRIVATE KEY") },
      },
      env: { PULUMI_NETNS_TRACE: trace },
    });
    stacks.push(s);
    return { s, trace };
  };
  const label = () => `root@${lab.connection.host}:${lab.connection.port}`;
  const namespaces = async () =>
    (JSON.parse((await lab.exec(["ip", "-j", "netns", "list"])).stdout || "[]") as Array<{ name: string }>)
      .map((x) => x.name)
      .sort();

  before(async () => {
    lab = await testingKit().startLabHost({ name: `sec-hostkey-${process.pid}` });
    dir = writeProgram("hostkeys", CONFIGURED_PROGRAM);
  });

  after(async () => {
    // What a failed test left (a stack whose host key changed cannot be destroyed: the lab goes with it).
    for (const s of stacks) await s.destroy().catch(() => undefined);
    if (lab) await lab.stop();
  });

  it("refuses a pinned key that does not match: names the host and both fingerprints, changes nothing, sends nothing", async () => {
    const before = await testingKit().fingerprint(lab);
    const wrong = strayKey().publicKey;
    const { s, trace } = stack({ hostKey: wrong }, "pinned-wrong");
    const r = await s.up();
    assert.equal(r.ok, false);
    const error = r.error ?? "";
    assert.ok(error.includes(`host key mismatch for ${label()}`), error);
    assert.ok(error.includes(sha256Of(wrong)), `expected fingerprint missing: ${error}`);
    assert.ok(error.includes(sha256Of(lab.connection.hostKey)), `presented fingerprint missing: ${error}`);
    assert.equal(countEvents(trace, "command"), 0);
    assert.equal(await testingKit().fingerprint(lab), before);
  });

  it("accepts both pin forms: `ssh-ed25519 AAAA...` and `SHA256:...` (an update, not a replace)", async () => {
    const pinned = stack({ hostKey: lab.connection.hostKey }, "pinned");
    const r = await pinned.s.up();
    assert.ok(r.ok, r.error);
    assert.deepEqual(await namespaces(), ["pinned"]);
    const byFingerprint = stack({ hostKey: sha256Of(lab.connection.hostKey) }, "pinned");
    const r2 = await byFingerprint.s.up();
    assert.ok(r2.ok, r2.error);
    assert.deepEqual(providerCounts(r2), { create: 0, update: 1, replace: 0, delete: 0 }, JSON.stringify(r2.steps));
    const d = await byFingerprint.s.destroy();
    assert.ok(d.ok, d.error);
    assert.deepEqual(await namespaces(), []);
  });

  it("records the key on first use, then refuses refresh and destroy after the host key changed (both fingerprints)", async () => {
    const tofu = stack({}, "tofu");
    const r = await tofu.s.up();
    assert.ok(r.ok, r.error);
    const old = lab.connection.hostKey;
    const keys = r.outputs.knownHostKeys as Record<string, string>;
    assert.equal(keys[`${lab.connection.host}:${lab.connection.port}`], old);
    const before = await testingKit().fingerprint(lab);

    const rotated = await lab.rotateHostKey();
    assert.notEqual(rotated, old);
    for (const op of ["refresh", "destroy"] as const) {
      const again = stack({}, "tofu");
      const res = await again.s[op]();
      assert.equal(res.ok, false, `${op} succeeded`);
      const error = res.error ?? "";
      assert.ok(error.includes(`host key mismatch for ${label()}`), `${op}: ${error}`);
      assert.ok(error.includes(sha256Of(old)) && error.includes(sha256Of(rotated)), `${op}: ${error}`);
      assert.equal(countEvents(again.trace, "command"), 0, `${op} sent a command`);
    }
    assert.deepEqual(await namespaces(), ["tofu"]);
    assert.equal(await testingKit().fingerprint(lab), before);
  });

  it("checks the jump host's key too: a wrong proxy.hostKey pin is refused before any command", async () => {
    const wrong = strayKey().publicKey;
    const { s, trace } = stack(
      {
        hostKey: lab.connection.hostKey,
        proxy: {
          host: lab.connection.host,
          port: lab.connection.port,
          privateKey: lab.connection.privateKey,
          hostKey: wrong,
        },
      },
      "via-proxy",
    );
    const r = await s.up();
    assert.equal(r.ok, false);
    assert.ok((r.error ?? "").includes(`host key mismatch for ${label()}`), r.error);
    assert.ok((r.error ?? "").includes(sha256Of(wrong)), r.error);
    assert.equal(countEvents(trace, "command"), 0);
    assert.equal(countEvents(trace, "handshake"), 0);
  });
});

describe("security: a jump host carries the connection (transport)", function () {
  this.timeout(120_000);
  let lab: SourceLabHost;

  before(async () => {
    lab = await startLabHost({ name: `sec-jump-${process.pid}` });
  });

  after(async () => {
    closeAllRemotes();
    if (lab) await lab.stop();
  });

  it("the target's sshd sees the jump host as the client, and both hops' keys are recorded", async () => {
    const direct = await openRemote({ ...lab.connection });
    const directFrom = (await direct.run("echo $SSH_CONNECTION")).stdout.trim().split(" ")[0];
    assert.notEqual(directFrom, lab.address);
    // The lab is its own jump host: through it, the target's sshd is dialed from inside the lab.
    const viaProxy = await openRemote({ ...lab.connection, proxy: { ...lab.connection } });
    const proxiedFrom = (await viaProxy.run("echo $SSH_CONNECTION")).stdout.trim().split(" ")[0];
    assert.equal(proxiedFrom, lab.address);
    assert.deepEqual(Object.values(viaProxy.hostKeys()), [lab.connection.hostKey]);
  });
});
