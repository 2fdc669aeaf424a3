import { strict as assert } from "node:assert";
import { type NetworkSpec, planNetwork } from "../../components/plan";
import type { LabHost, PulumiStack } from "../../provider/testing";
import { rewriteProgram, testingKit, writeProgram } from "../support/harness";
import { SERVER, waitListening } from "../support/tcp";
import { HEADER } from "./programs";
import { changes, labConfig, ok } from "./support";

/** red and blue on v-net-0, no NAT (so no default route), port 8080 to blue:80. */
const SPEC: NetworkSpec = {
  bridge: "v-net-0",
  subnet: "192.168.15.0/24",
  gateway: "192.168.15.5",
  namespaces: [
    { name: "red", address: "192.168.15.1" },
    { name: "blue", address: "192.168.15.2" },
  ],
  outboundNat: false,
  portForwards: [{ namespace: "blue", hostPort: 8080, port: 80 }],
};
/** 2 namespaces: 2 to the gateway, 2 to each other; 1 port forward. */
const MATRIX = 5;

function probeProgram(lanPeer: string, extra = ""): string {
  return `${HEADER}
const net = new netns.IsolatedNetwork("lab", { connection, ...${JSON.stringify(SPEC)}, verify: true });
// Depends on the objects the network made, not on a bare name (the namespace alone is not enough: the
// path needs both cables).
const toBlue = new netns.Probe("red-blue", { connection, namespace: net.namespaces["red"].name, target: "192.168.15.2" }, { dependsOn: [net.vethPairs["red"], net.vethPairs["blue"]] });
const noRoute = new netns.Probe("red-lan", { connection, namespace: "red", target: ${JSON.stringify(lanPeer)}, expect: "unreachable", timeoutMs: 500 }, { dependsOn: [net.vethPairs["red"]] });
${extra}
export const rttMs = toBlue.rttMs;
export const reachable = toBlue.reachable;
export const lanReachable = noRoute.reachable;
export const redToBlue = net.probes["red-to-blue"].reachable;
`;
}

const probesIn = (resources: Array<{ type: string }>) => resources.filter((r) => r.type.endsWith(":Probe")).length;

describe("Probe and IsolatedNetwork verify on a lab host (through the real Pulumi engine)", function () {
  this.timeout(600_000);
  let lab: LabHost;
  let stack: PulumiStack;
  let dir: string;
  let pristine: string;
  const log: string[] = [];
  const blueVeth = planNetwork(SPEC).namespaces.find((n) => n.name === "blue")!.vethName;
  const stateProbes = async () => probesIn((await stack.exportState()).deployment.resources ?? []);

  before(async () => {
    const kit = testingKit();
    lab = await kit.startLabHost({ name: `it-probe-${process.pid}` });
    pristine = await kit.fingerprint(lab);
    dir = writeProgram("probe", probeProgram(lab.lan.peerAddress));
    stack = new kit.PulumiStack({ programDir: dir, config: labConfig(lab), log: (l) => log.push(l) });
  });

  after(async () => {
    if (lab) await lab.exec(["ip", "-n", "blue", "link", "set", blueVeth, "up"], { allowFailure: true });
    if (stack) await stack.destroy().catch(() => undefined);
    if (lab) await lab.stop();
  });

  it("verify: true adds the matrix; a reachable probe has its rttMs; expect unreachable holds where there is no route", async () => {
    const up = await stack.up();
    ok(up, log);
    assert.equal(await stateProbes(), MATRIX + 2, "matrix + the two standalone probes in state");
    assert.equal(up.outputs.reachable, true);
    assert.ok(typeof up.outputs.rttMs === "number" && up.outputs.rttMs > 0, `rttMs ${up.outputs.rttMs}`);
    assert.equal(up.outputs.lanReachable, false);
    const again = await stack.up();
    ok(again, log);
    assert.equal(changes(again), 0, "a second up re-runs no check");
  });

  it("a probe that sees the wrong thing fails the up, naming source, target and what was seen", async () => {
    rewriteProgram(
      dir,
      probeProgram(
        lab.lan.peerAddress,
        `new netns.Probe("red-nobody", { connection, namespace: "red", target: "192.168.15.99", timeoutMs: 500 }, { dependsOn: [net.vethPairs["red"]] });`,
      ),
    );
    const up = await stack.up();
    assert.equal(up.ok, false, "the up must fail");
    assert.match(
      up.error ?? "",
      /probe from namespace "red" on [^ ]+ to 192\.168\.15\.99 \(ICMP echo\): expected reachable, but saw: (no echo reply within 500 ms|From 192\.168\.15\.1 .*Unreachable)/,
    );
    rewriteProgram(dir, probeProgram(lab.lan.peerAddress));
    ok(await stack.up(), log);
  });

  // Issue #10 item 8: expect "unreachable" passed when the check could not run at all.
  it('expect "unreachable" from a namespace that does not exist fails the up: could not check, never "unreachable"', async () => {
    rewriteProgram(
      dir,
      probeProgram(
        lab.lan.peerAddress,
        `new netns.Probe("from-nowhere", { connection, namespace: "nosuch", target: "192.168.15.2", expect: "unreachable", timeoutMs: 500 });`,
      ),
    );
    const up = await stack.up();
    assert.equal(up.ok, false, "the up must fail: nothing was checked");
    assert.match(
      up.error ?? "",
      /probe from namespace "nosuch" on [^ ]+ to 192\.168\.15\.2 \(ICMP echo\): could not check, so neither reachable nor unreachable was seen: namespace "nosuch" does not exist\. Fix: make it first/,
    );
    rewriteProgram(dir, probeProgram(lab.lan.peerAddress));
    ok(await stack.up(), log);
  });

  it("TCP: a listening port is reachable with its connect time; a closed one is refused (expect unreachable)", async () => {
    const server = lab.spawn(SERVER("hi", 80), { namespace: "blue" });
    try {
      await waitListening(server);
      rewriteProgram(
        dir,
        probeProgram(
          lab.lan.peerAddress,
          `const web = new netns.Probe("host-web", { connection, target: "192.168.15.2", port: 80 }, { dependsOn: [net.vethPairs["blue"]] });
new netns.Probe("host-closed", { connection, target: "192.168.15.2", port: 81, expect: "unreachable" }, { dependsOn: [net.vethPairs["blue"]] });
export const webRtt = web.rttMs;`,
        ),
      );
      const up = await stack.up();
      ok(up, log);
      assert.ok(typeof up.outputs.webRtt === "number", `webRtt ${up.outputs.webRtt}`);
    } finally {
      await server.kill();
    }
    rewriteProgram(dir, probeProgram(lab.lan.peerAddress));
    ok(await stack.up(), log);
  });

  it("a link taken down behind Pulumi's back: refresh reports the change, and the next up repairs the link and re-checks; a break nothing repairs fails the up", async () => {
    await lab.exec(["ip", "-n", "blue", "link", "set", blueVeth, "down"]);
    const refresh = await stack.refresh();
    ok(refresh, log);
    assert.ok(changes(refresh) >= 4, `refresh changed ${changes(refresh)}: ${JSON.stringify(refresh.counts)}`);
    // Refresh runs no program: the stack outputs stay; the Probes' state holds what the check saw.
    const state = (await stack.exportState()).deployment.resources as Array<{
      urn: string;
      outputs?: { reachable?: boolean };
    }>;
    const seen = (name: string) => state.find((r) => r.urn.endsWith(`::${name}`))?.outputs?.reachable;
    assert.equal(seen("lab-probe-red-to-blue"), false);
    assert.equal(seen("red-blue"), false);
    assert.equal(seen("lab-probe-red-to-gateway"), true, "red's own path is untouched");
    // Trial finding F2: a plain refresh said only "~ Probe updated"; the rttMs stayed while unreachable.
    assert.ok(
      refresh.diagnostics.some((d) =>
        /\[pulumi-netns\] probe red -> 192\.168\.15\.2 \(ICMP echo\): was reachable, now unreachable \(no echo reply/.test(
          d.message,
        ),
      ),
      `refresh says what changed: ${JSON.stringify(refresh.diagnostics.filter((d) => d.severity !== "debug"))}`,
    );
    const outputsOf = (name: string) =>
      (state as Array<{ urn: string; outputs?: Record<string, unknown> }>).find((r) => r.urn.endsWith(`::${name}`))
        ?.outputs ?? {};
    assert.equal(outputsOf("red-blue").rttMs, undefined, "no round trip while unreachable");
    assert.ok(!("isolationOn" in outputsOf("lab-isolation")), "no leftover isolationOn output");
    // The next up: the VethPair puts blue's end back up (its refresh saw it down), then the Probes,
    // drifted, check again after it and pass.
    const back = await stack.up();
    ok(back, log);
    assert.ok(
      back.steps.some((st) => st.op === "update" && st.urn.endsWith("::lab-blue-veth")),
      "the VethPair repaired",
    );
    assert.ok(
      back.steps.filter((st) => st.op === "update" && /:Probe::/.test(st.urn)).length >= 4,
      "probes re-checked",
    );
    assert.equal(back.outputs.redToBlue, true);
    // A break no resource of the stack repairs (a DROP rule in blue made by hand): up --refresh fails, naming blue.
    await lab.exec(["iptables", "-I", "INPUT", "-j", "DROP"], { namespace: "blue" });
    try {
      const up = await stack.up({ refresh: true });
      assert.equal(up.ok, false, "the up must fail while blue drops everything");
      assert.match(
        up.error ?? "",
        /probe from namespace "red" on [^ ]+ to 192\.168\.15\.2 \(ICMP echo\): expected reachable, but saw: no echo reply/,
      );
    } finally {
      await lab.exec(["iptables", "-D", "INPUT", "-j", "DROP"], { namespace: "blue" });
    }
    ok(await stack.up({ refresh: true }), log);
  });

  it("destroy leaves the lab host as it was", async () => {
    ok(await stack.destroy(), log);
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });
});

describe("IsolatedNetwork verify: isolation from the program's other networks on the host (real engine)", function () {
  this.timeout(600_000);
  let lab: LabHost;
  let stack: PulumiStack;
  let pristine: string;
  const log: string[] = [];
  // Both with outbound NAT, so each namespace has a default route through the host: only the isolation
  // rules stand between the networks, and an "unreachable" seen says they work.
  const first = { ...SPEC, outboundNat: true, portForwards: [] };
  const second: NetworkSpec = {
    bridge: "v-net-1",
    subnet: "10.31.0.0/24",
    namespaces: [{ name: "alpha" }],
    outboundNat: true,
  };
  const program = `${HEADER}
const one = new netns.IsolatedNetwork("one", { connection, ...${JSON.stringify(first)}, verify: true });
const two = new netns.IsolatedNetwork("two", { connection, ...${JSON.stringify(second)}, verify: true });
export const oneProbes = Object.keys(one.probes).sort();
export const twoProbes = Object.keys(two.probes).sort();
`;
  const isolationProbes = async () =>
    (
      (await stack.exportState()).deployment.resources as Array<{
        urn: string;
        type: string;
        outputs?: Record<string, unknown>;
      }>
    )
      .filter((r) => r.type.endsWith(":Probe") && /-to-(one|two)\//.test(r.urn))
      .map((r) => `${r.urn.split("::").pop()} ${r.outputs?.expect} ${r.outputs?.reachable}`)
      .sort();

  before(async () => {
    const kit = testingKit();
    lab = await kit.startLabHost({ name: `it-probe-isol-${process.pid}` });
    pristine = await kit.fingerprint(lab);
    stack = new kit.PulumiStack({
      programDir: writeProgram("probe-isol", program),
      config: labConfig(lab),
      log: (l) => log.push(l),
    });
  });

  after(async () => {
    if (stack) await stack.destroy().catch(() => undefined);
    if (lab) await lab.stop();
  });

  it("each network's namespaces probe the other's as unreachable; with the isolation rules flushed by hand, refresh sees them reachable and up puts the isolation back", async () => {
    const up = await stack.up();
    ok(up, log);
    assert.deepEqual(await isolationProbes(), [
      "two-probe-alpha-to-one/red unreachable false",
      "two-probe-blue-to-two/alpha unreachable false",
      "two-probe-red-to-two/alpha unreachable false",
    ]);
    assert.ok((up.outputs.oneProbes as string[]).includes("red-to-two/alpha"), JSON.stringify(up.outputs.oneProbes));
    assert.ok((up.outputs.twoProbes as string[]).includes("alpha-to-one/red"), JSON.stringify(up.outputs.twoProbes));

    // Isolation gone (a firewall reload of the mangle table): refresh's probes see the networks meet.
    await lab.exec(["iptables", "-t", "mangle", "-F", "FORWARD"]);
    const refresh = await stack.refresh();
    ok(refresh, log);
    assert.deepEqual(await isolationProbes(), [
      "two-probe-alpha-to-one/red unreachable true",
      "two-probe-blue-to-two/alpha unreachable true",
      "two-probe-red-to-two/alpha unreachable true",
    ]);
    assert.ok(
      refresh.diagnostics.some((d) =>
        /\[pulumi-netns\] probe alpha -> 192\.168\.15\.1 \(ICMP echo\): was unreachable, now reachable/.test(d.message),
      ),
      `refresh says what changed: ${JSON.stringify(refresh.diagnostics.filter((d) => d.severity !== "debug"))}`,
    );
    // The next up puts the isolation rules back (the NetworkIsolations saw them missing) before the probes re-check.
    const repaired = await stack.up();
    ok(repaired, log);
    assert.deepEqual(await isolationProbes(), [
      "two-probe-alpha-to-one/red unreachable false",
      "two-probe-blue-to-two/alpha unreachable false",
      "two-probe-red-to-two/alpha unreachable false",
    ]);
  });

  it("destroy leaves the lab host as it was", async () => {
    ok(await stack.destroy(), log);
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });
});
