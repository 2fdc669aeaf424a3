import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import * as path from "node:path";
import type { LabHost, PulumiStack } from "../../provider/testing";
import { type LabHost as SourceLabHost, startLabHost } from "../../provider/testing/labHost";
import { type LabSegment, linkLabHosts } from "../../provider/testing/labNetwork";
import { closeAllRemotes, HostKeyMismatchError, openRemote } from "../../provider/transport";
import { labConfig, providerCounts } from "../integration/support";
import { testingKit, writeProgram } from "../support/harness";
import { CONFIGURED_PROGRAM, countEvents, NAMESPACES_PROGRAM, strayKey } from "./support";

/** "SHA256:..." of a known_hosts style key, as ssh-keygen -l prints it. */
function sha256Of(key: string): string {
  const blob = Buffer.from(key.split(" ")[1], "base64");
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

describe("security: host keys are pinned, recorded on first use, and a change is refused", function () {
  this.timeout(300_000);
  let lab: LabHost;
  let dir: string;
  let manyDir: string;
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
  /** The NAMESPACES_PROGRAM with `resources` as stack `name`, with its own trace file. */
  const many = (resources: Array<{ name: string; conn?: Record<string, unknown> }>, name: string) => {
    const i = ++n;
    const trace = path.join(manyDir, `trace-${i}.jsonl`);
    const s = new (testingKit().PulumiStack)({
      programDir: manyDir,
      stack: name,
      config: { ...labConfig(lab), resources: JSON.stringify(resources) },
      env: { PULUMI_NETNS_TRACE: trace },
    });
    stacks.push(s);
    return { s, trace };
  };
  const label = () => `root@${lab.connection.host}:${lab.connection.port}`;
  const endpoint = () => `${lab.connection.host}:${lab.connection.port}`;
  const namespaces = async () =>
    (JSON.parse((await lab.exec(["ip", "-j", "netns", "list"])).stdout || "[]") as Array<{ name: string }>)
      .map((x) => x.name)
      .sort();

  before(async () => {
    lab = await testingKit().startLabHost({ name: `sec-hostkey-${process.pid}` });
    dir = writeProgram("hostkeys", CONFIGURED_PROGRAM);
    manyDir = writeProgram("hostkeys-many", NAMESPACES_PROGRAM);
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

  it("accepts a pin of each host key type the host holds, in both forms (an update each), and records the pinned key", async () => {
    assert.deepEqual(
      lab.hostKeys.map((k) => k.split(" ")[0]),
      ["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"],
    );
    const [ed25519, ecdsa, rsa] = lab.hostKeys;
    const steps: Array<{ pin: string; key: string }> = [
      { pin: ed25519, key: ed25519 },
      { pin: sha256Of(ecdsa), key: ecdsa },
      { pin: rsa, key: rsa },
      { pin: sha256Of(ed25519), key: ed25519 },
    ];
    let last: PulumiStack | undefined;
    for (const [i, step] of steps.entries()) {
      const { s } = stack({ hostKey: step.pin }, "pinned");
      const r = await s.up();
      assert.ok(r.ok, `${step.pin}: ${r.error}`);
      const expected =
        i === 0 ? { create: 1, update: 0, replace: 0, delete: 0 } : { create: 0, update: 1, replace: 0, delete: 0 };
      assert.deepEqual(providerCounts(r), expected, `${step.pin}: ${JSON.stringify(r.steps)}`);
      assert.deepEqual(r.outputs.knownHostKeys, { [endpoint()]: step.key }, step.pin);
      last = s;
    }
    assert.deepEqual(await namespaces(), ["pinned"]);
    const d = await last?.destroy();
    assert.ok(d?.ok, d?.error);
    assert.deepEqual(await namespaces(), []);
  });

  it("checks each resource's own pin on the connection another resource opened: a wrong one is refused, its namespace not made", async () => {
    const wrong = strayKey().publicKey;
    const { s } = many(
      [
        { name: "own-right", conn: { hostKey: lab.connection.hostKey } },
        { name: "own-wrong", conn: { hostKey: wrong } },
      ],
      "own-pins",
    );
    const r = await s.up();
    assert.equal(r.ok, false, "a wrong pin was accepted");
    const error = r.error ?? "";
    assert.ok(error.includes(`host key mismatch for ${label()}`), error);
    assert.ok(error.includes(sha256Of(wrong)) && error.includes(sha256Of(lab.connection.hostKey)), error);
    assert.deepEqual(await namespaces(), ["own-right"]);
    const d = await s.destroy();
    assert.ok(d.ok, d.error);
    assert.deepEqual(await namespaces(), []);
  });

  it("host key rotation: first use recorded, change refused (refresh, and a new resource of the stack), new key pinned, pin removed, refresh and destroy work", async () => {
    const before = await testingKit().fingerprint(lab);
    const old = lab.connection.hostKey;
    const one = [{ name: "rot-a" }];
    const first = await many(one, "rotation").s.up();
    assert.ok(first.ok, first.error);
    assert.deepEqual(first.outputs.knownHostKeys, { "rot-a": { [endpoint()]: old } });

    const rotated = await lab.rotateHostKey();
    assert.notEqual(rotated, old);
    const mismatch = (res: { ok: boolean; error?: string }, what: string) => {
      assert.equal(res.ok, false, `${what} succeeded`);
      const error = res.error ?? "";
      assert.ok(error.includes(`host key mismatch for ${label()}`), `${what}: ${error}`);
      assert.ok(error.includes(sha256Of(old)) && error.includes(sha256Of(rotated)), `${what}: ${error}`);
      assert.ok(error.includes("connection.hostKey"), `${what}: the way out is not named: ${error}`);
    };
    const refresh = many(one, "rotation");
    mismatch(await refresh.s.refresh(), "refresh");
    assert.equal(countEvents(refresh.trace, "command"), 0, "refresh sent a command");

    // A new resource on the host must not trust the new key on its own while the stack knows the old one.
    const added = many([...one, { name: "rot-b" }], "rotation");
    mismatch(await added.s.up(), "up with a new resource");
    assert.equal(countEvents(added.trace, "command"), 0, "the new resource sent a command");
    assert.deepEqual(await namespaces(), ["rot-a"]);

    // The way out: pin the new key (after checking it on the host), up; then the pin can go.
    const pinned = await many(
      ["rot-a", "rot-b"].map((name) => ({ name, conn: { hostKey: rotated } })),
      "rotation",
    ).s.up();
    assert.ok(pinned.ok, pinned.error);
    const now = { [endpoint()]: rotated };
    assert.deepEqual(pinned.outputs.knownHostKeys, { "rot-a": now, "rot-b": now });
    const unpinned = await many([{ name: "rot-a" }, { name: "rot-b" }], "rotation").s.up();
    assert.ok(unpinned.ok, unpinned.error);
    assert.deepEqual(unpinned.outputs.knownHostKeys, { "rot-a": now, "rot-b": now });
    const refreshed = await many([{ name: "rot-a" }, { name: "rot-b" }], "rotation").s.refresh();
    assert.ok(refreshed.ok, refreshed.error);
    assert.deepEqual(await namespaces(), ["rot-a", "rot-b"]);
    const destroyed = await many([{ name: "rot-a" }, { name: "rot-b" }], "rotation").s.destroy();
    assert.ok(destroyed.ok, destroyed.error);
    assert.deepEqual(await namespaces(), []);
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
  let jump: SourceLabHost;
  let target: SourceLabHost;
  let segment: LabSegment | undefined;

  before(async () => {
    [jump, target] = await Promise.all([
      startLabHost({ name: `sec-jump-${process.pid}` }),
      startLabHost({ name: `sec-target-${process.pid}` }),
    ]);
    // The jump host reaches the target's sshd (on its management address) over a segment the two
    // share: a route to that one address each way, from the management address, so the target's
    // sshd sees the jump host's own address. The routes go with the segment's devices.
    segment = await linkLabHosts([jump, target], { subnet: "192.0.2.0/30" });
    const via = (lab: SourceLabHost) => segment!.addressOf(lab);
    await jump.exec(["ip", "route", "add", `${target.address}/32`, "via", via(target), "src", jump.address]);
    await target.exec(["ip", "route", "add", `${jump.address}/32`, "via", via(jump), "src", target.address]);
  });

  after(async () => {
    closeAllRemotes();
    await segment?.remove();
    await Promise.all([jump?.stop(), target?.stop()]);
  });

  afterEach(() => closeAllRemotes());

  const endpointOf = (lab: SourceLabHost) => `${lab.connection.host}:${lab.connection.port}`;

  it("the target's sshd sees the jump host as the client, and both hops' keys are recorded", async () => {
    assert.notEqual(endpointOf(jump), endpointOf(target));
    const direct = await openRemote({ ...target.connection });
    const directFrom = (await direct.run("echo $SSH_CONNECTION")).stdout.trim().split(" ")[0];
    assert.notEqual(directFrom, jump.address);
    const viaProxy = await openRemote({ ...target.connection, proxy: { ...jump.connection } });
    const proxiedFrom = (await viaProxy.run("echo $SSH_CONNECTION")).stdout.trim().split(" ")[0];
    assert.equal(proxiedFrom, jump.address);
    assert.deepEqual(viaProxy.hostKeys(), {
      [endpointOf(jump)]: jump.connection.hostKey,
      [endpointOf(target)]: target.connection.hostKey,
    });
  });

  it("checks each caller's jump host pin on the pooled jump connection, and accepts an ECDSA pin for either hop", async () => {
    const through = (proxyKey?: string, targetKey?: string) =>
      openRemote({ ...target.connection, hostKey: targetKey, proxy: { ...jump.connection, hostKey: proxyKey } });
    await through();
    await assert.rejects(through(strayKey().publicKey), (e: unknown) => {
      assert.ok(e instanceof HostKeyMismatchError, String(e));
      assert.match(e.message, /connection\.proxy\.hostKey/);
      return true;
    });
    // The target's key given as the jump host's (the hops swapped) is refused too.
    await assert.rejects(through(target.connection.hostKey), HostKeyMismatchError);
    const ecdsa = await through(jump.hostKeys[1], target.hostKeys[1]);
    assert.deepEqual(ecdsa.hostKeys(), {
      [endpointOf(jump)]: jump.hostKeys[1],
      [endpointOf(target)]: target.hostKeys[1],
    });
  });
});
