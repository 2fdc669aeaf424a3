import { strict as assert } from "node:assert";
import * as path from "node:path";
import type { LabHost, LocalStack } from "../../provider/testing";
import { testingKit, writeProgram } from "../integration/harness";
import { bridged, program } from "../integration/programs";
import { changes, dropSshSessions, labConfig, netnsList, ok, ping, traceEvents } from "../integration/support";

const FULL = { lanRoute: true, nat: true, redDefault: true, portForward: true };

/** Kills the lab's sshd session processes (what a restart or a dropped link does to open connections). */

describe("faults: dropped connections, restarts, a rebooted host, drift of every kind", function () {
  this.timeout(600_000);
  let lab: LabHost;
  let stack: LocalStack;
  let dir: string;
  let pristine: string;
  let traceFile: string;
  const log: string[] = [];

  before(async () => {
    const kit = testingKit();
    lab = await kit.startLabHost({ name: `it-faults-${process.pid}` });
    pristine = await kit.fingerprint(lab);
    dir = writeProgram("faults", program(bridged(FULL)));
    traceFile = path.join(dir, "trace.jsonl");
    stack = new kit.LocalStack({
      programDir: dir,
      config: labConfig(lab),
      log: (l) => log.push(l),
      env: { PULUMI_NETNS_TRACE: traceFile },
    });
  });

  after(async () => {
    if (stack) await stack.destroy().catch(() => undefined);
    if (lab) await lab.stop();
  });

  it("sshd sessions die between up and refresh: the pool reconnects", async () => {
    ok(await stack.up(), log);
    await dropSshSessions(lab);
    const refreshed = await stack.refresh();
    ok(refreshed, log);
    assert.equal(refreshed.counts.update + refreshed.counts.delete, 0, JSON.stringify(refreshed.steps));
  });

  it("a rebooted host (every namespace, link, rule and sysctl gone): refresh drops everything, up rebuilds it and traffic flows", async () => {
    await lab.exec([
      "sh",
      "-c",
      "ip -all netns delete; ip link del v-net-0; iptables -w -F; iptables -w -t nat -F; nft flush ruleset; echo 0 > /proc/sys/net/ipv4/ip_forward; echo 0 > /proc/sys/net/ipv4/conf/all/route_localnet",
    ]);
    const state = await stack.state();
    const custom = state.resources.filter((r) => r.custom).length;
    const refreshed = await stack.refresh();
    ok(refreshed, log);
    assert.equal(refreshed.counts.delete, custom, JSON.stringify(refreshed.steps));
    const up = await stack.up();
    ok(up, log);
    assert.equal(up.counts.create, custom);
    assert.equal((await ping(lab, "192.168.15.2", "red")).code, 0);
    assert.equal((await ping(lab, lab.lan.peerAddress, "blue")).code, 0);
    assert.equal((await ping(lab, lab.lan.internetAddress, "red")).code, 0);
  });

  const drifts: Array<[string, string[], RegExp]> = [
    [
      "an address removed",
      ["ip", "-n", "red", "addr", "del", "192.168.15.1/24", "dev", "veth-red"],
      /VethPair::red-br/,
    ],
    ["a link set down", ["ip", "-n", "blue", "link", "set", "veth-blue", "down"], /VethPair::blue-br/],
    ["a port removed from the bridge", ["ip", "link", "set", "veth-red-br", "nomaster"], /VethPair::red-br/],
    ["the bridge's address removed", ["ip", "addr", "del", "192.168.15.5/24", "dev", "v-net-0"], /Bridge::v-net-0/],
    ["lo set down in a namespace", ["ip", "-n", "red", "link", "set", "lo", "down"], /Namespace::red/],
    [
      "ip_forward switched off",
      ["sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward"],
      /MasqueradeRule::nat|PortForward::web/,
    ],
    [
      "a port-forward rule deleted",
      [
        "sh",
        "-c",
        "iptables-save -t nat | grep -- '-j DNAT' | grep PREROUTING | sed 's/^-A/-D/' | xargs -L1 iptables -w -t nat",
      ],
      /PortForward::web/,
    ],
  ];
  for (const [what, cmd, urn] of drifts) {
    it(`drift: ${what} is seen by refresh and repaired by up`, async () => {
      await lab.exec(cmd);
      const refreshed = await stack.refresh();
      ok(refreshed, log);
      const changed = refreshed.steps.filter((s) => s.op.startsWith("refresh-") && s.op !== "refresh-same");
      assert.ok(
        changed.some((s) => urn.test(s.urn)),
        `refresh should report ${urn}: ${JSON.stringify(changed)}`,
      );
      const up = await stack.up();
      ok(up, log);
      assert.ok(up.counts.update + up.counts.create >= 1, JSON.stringify(up.steps));
      const again = await stack.up();
      assert.equal(changes(again), 0, `after repair, up is a no-op: ${JSON.stringify(again.steps)}`);
      const quiet = await stack.refresh();
      assert.equal(
        quiet.counts.update + quiet.counts.delete,
        0,
        `after repair, refresh finds nothing: ${JSON.stringify(quiet.steps)}`,
      );
    });
  }

  it("destroy after all of that leaves the host as it was", async () => {
    ok(await stack.destroy(), log);
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });
});

/** About ten lab stacks' worth of resources on one host, at the engine's default parallelism and at 16. */
function manyNamespaces(count: number): string {
  const names = Array.from({ length: count }, (_, i) => `ns${String(i).padStart(3, "0")}`);
  return program(`
const net = new netns.IsolatedNetwork("many", {
  connection,
  bridge: "v-many",
  subnet: "10.77.0.0/16",
  namespaces: ${JSON.stringify(names.map((name) => ({ name })))},
  outboundNat: true,
});
export const addresses = net.addresses;
`);
}

for (const parallel of [8, 16]) {
  describe(`200 resources on one host with parallelism ${parallel}`, function () {
    this.timeout(900_000);
    let lab: LabHost;
    let stack: LocalStack;
    let pristine: string;
    const log: string[] = [];
    const COUNT = 66; // 66 x (Namespace + VethPair + Route) + Bridge + MasqueradeRule = 200

    before(async () => {
      const kit = testingKit();
      lab = await kit.startLabHost({ name: `it-many-${parallel}-${process.pid}` });
      pristine = await kit.fingerprint(lab);
      const dir = writeProgram(`many-${parallel}`, manyNamespaces(COUNT));
      stack = new kit.LocalStack({
        programDir: dir,
        parallel,
        config: labConfig(lab),
        log: (l) => log.push(l),
        env: { PULUMI_NETNS_TRACE: path.join(dir, "trace.jsonl") },
      });
    });

    after(async () => {
      if (stack) await stack.destroy().catch(() => undefined);
      if (lab) await lab.stop();
    });

    it("all objects correct, no channel-open failure, no xtables lock error, one handshake", async () => {
      const up = await stack.up();
      ok(up, log);
      const state = await stack.state();
      assert.equal(state.resources.filter((r) => r.custom).length, 200);
      assert.equal((await netnsList(lab)).length, COUNT);
      const ports = JSON.parse((await lab.exec(["ip", "-j", "link", "show", "master", "v-many"])).stdout);
      assert.equal(ports.length, COUNT);
      for (const ns of ["ns000", "ns033", "ns065"]) {
        const routes = JSON.parse((await lab.exec(["ip", "-j", "route", "show", "default"], { namespace: ns })).stdout);
        assert.equal(routes.length, 1, ns);
      }
      const events = traceEvents(path.join(stack.programDir, "trace.jsonl"));
      assert.equal(
        events.filter((e) => e.event === "handshake").length,
        1,
        "one SSH handshake for the whole deployment",
      );
      assert.equal(events.filter((e) => e.event === "connection-error").length, 0);
      const failed = events.filter((e) => e.event === "command" && e.code !== 0);
      assert.ok(!failed.some((e) => /xtables|lock/i.test(String(e.command))), JSON.stringify(failed));
      assert.ok(!log.some((l) => /open failure|xtables lock|Another app is currently holding/i.test(l)));
      assert.equal((await lab.exec(["ping", "-c", "1", "-W", "2", "10.77.0.1"], { namespace: "ns033" })).code, 0);
    });

    it("destroy leaves the host as it was", async () => {
      ok(await stack.destroy(), log);
      assert.equal(await testingKit().fingerprint(lab), pristine);
    });
  });
}

describe("faults: the SSH connection drops in the middle of up", function () {
  this.timeout(600_000);
  let lab: LabHost;
  let stack: LocalStack;
  let pristine: string;
  let traceFile: string;
  const log: string[] = [];
  const COUNT = 15;

  before(async () => {
    const kit = testingKit();
    lab = await kit.startLabHost({ name: `it-drop-${process.pid}` });
    pristine = await kit.fingerprint(lab);
    const dir = writeProgram("drop", manyNamespaces(COUNT));
    traceFile = path.join(dir, "trace.jsonl");
    stack = new kit.LocalStack({
      programDir: dir,
      config: labConfig(lab),
      log: (l) => log.push(l),
      env: { PULUMI_NETNS_TRACE: traceFile },
    });
  });

  after(async () => {
    if (stack) await stack.destroy().catch(() => undefined);
    if (lab) await lab.stop();
  });

  it("up fails clearly (or finishes); the next up converges with nothing doubled; destroy leaves the host as it was", async () => {
    let finished = false;
    const running = stack.up().finally(() => {
      finished = true;
    });
    // Cut every session as soon as the provider host has sent its first commands.
    let killed = 0;
    for (let i = 0; i < 6000 && !finished && killed === 0; i++) {
      if (traceEvents(traceFile).filter((e) => e.event === "command").length >= 2) killed = await dropSshSessions(lab);
      else await new Promise((r) => setTimeout(r, 10));
    }
    const first = await running;
    assert.ok(killed >= 1, `a session was cut while up ran (up finished first: ${finished})`);
    if (!first.ok) assert.match(first.error ?? "", /closed|did not finish|connect|exit code null/i, first.error);
    ok(await stack.up(), log);
    const again = await stack.up();
    assert.equal(changes(again), 0, JSON.stringify(again.steps));
    assert.equal((await netnsList(lab)).length, COUNT);
    const rules = (await lab.exec(["iptables-save"])).stdout.split("\n").filter((l) => l.includes("pulumi-netns/"));
    assert.equal(
      rules.filter((l) => l.includes("-j MASQUERADE")).length,
      1,
      `exactly one masquerade rule:\n${rules.join("\n")}`,
    );
    const veths = JSON.parse((await lab.exec(["ip", "-j", "link", "show", "type", "veth"])).stdout).filter(
      (v: { ifname: string }) => !["mgmt0", "eth0"].includes(v.ifname),
    );
    assert.equal(
      veths.length,
      COUNT,
      `no orphan veth in the host namespace: ${veths.map((v: { ifname: string }) => v.ifname).join(" ")}\n${first.error}\n${log.join("\n")}`,
    );
    ok(await stack.destroy(), log);
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });
});
