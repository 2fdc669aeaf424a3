import { strict as assert } from "node:assert";
import { podDiagramOf } from "../../components/podDiagram";
import { type PodNetworkSpec, planPodNetwork } from "../../components/podPlan";
import type { LabHost, LabSegment, PulumiStack } from "../../provider/testing";
import { testingKit, writeProgram } from "../support/harness";
import { changes, labConfig, ok, ping } from "./support";

/** Two nodes on the segment linkLabHosts makes (192.0.2.1 and .2), one pod each. */
const SPEC: PodNetworkSpec = {
  clusterCidr: "10.244.0.0/16",
  nodes: [
    { name: "node-a", nodeAddress: "192.0.2.1", pods: [{ name: "web" }] },
    { name: "node-b", nodeAddress: "192.0.2.2", pods: [{ name: "db" }] },
  ],
};

const PROGRAM = `
import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";

const cfg = new pulumi.Config();
const connectionOf = (suffix: string) => ({
  host: cfg.require("host" + suffix),
  port: cfg.requireNumber("port" + suffix),
  user: "root",
  privateKey: cfg.requireSecret("privateKey" + suffix),
});
const spec = ${JSON.stringify(SPEC)};
const net = new netns.PodNetwork("cluster", {
  ...spec,
  nodes: spec.nodes.map((n, i) => ({ ...n, connection: connectionOf(i === 0 ? "" : "B") })),
});
export const podCidrs = net.podCidrs;
export const addresses = net.addresses;
export const diagram = net.diagram;
`;

/** A TCP server that answers each connection with the address it came from. */
const PEER_ECHO = (port: number) => [
  process.execPath,
  "-e",
  `require("net").createServer((s) => s.end(s.remoteAddress + "\\n")).listen(${port}, "0.0.0.0", () => console.log("listening"))`,
];
const CONNECT = (host: string, port: number) => [
  process.execPath,
  "-e",
  `const s = require("net").connect(${port}, ${JSON.stringify(host)}); let d = ""; s.on("data", (c) => (d += c)); s.on("end", () => process.stdout.write(d)); s.on("error", (e) => { console.error(e.message); process.exit(1); }); setTimeout(() => process.exit(2), 3000).unref();`,
];

describe("PodNetwork (mode routes) on two linked lab hosts, through the real Pulumi engine", function () {
  this.timeout(600_000);
  let a: LabHost;
  let b: LabHost;
  let segment: LabSegment;
  let stack: PulumiStack;
  let pristine: string[];
  const log: string[] = [];
  const plan = planPodNetwork(SPEC);
  const address = (pod: string) => plan.nodes.flatMap((n) => n.pods).find((p) => p.name === pod)!.address;

  before(async () => {
    const kit = testingKit();
    // FORWARD policy DROP on both nodes, as Docker leaves hosts: a pod's new connection to another node's
    // pod must be accepted by the rules the stack makes, not by the policy.
    [a, b] = await Promise.all(
      ["a", "b"].map((x) => kit.startLabHost({ name: `it-pods-${x}-${process.pid}`, forwardPolicyDrop: true })),
    );
    segment = await kit.linkLabHosts([a, b], { subnet: "192.0.2.0/24" });
    assert.deepEqual([segment.addressOf(a), segment.addressOf(b)], ["192.0.2.1", "192.0.2.2"]);
    pristine = await Promise.all([kit.fingerprint(a), kit.fingerprint(b)]);
    stack = new kit.PulumiStack({
      programDir: writeProgram("podnet", PROGRAM),
      config: { ...labConfig(a), ...labConfig(b, "B") },
      log: (l) => log.push(l),
    });
  });

  after(async () => {
    if (stack) await stack.destroy().catch(() => undefined);
    await segment?.remove();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it("pods reach each other across nodes without NAT, and the outside through NAT; a second up changes nothing", async () => {
    const up = await stack.up();
    ok(up, log);
    assert.deepEqual(up.outputs.podCidrs, { "node-a": "10.244.147.0/24", "node-b": "10.244.38.0/24" });
    assert.deepEqual(up.outputs.addresses, { web: address("web"), db: address("db") });
    assert.equal(up.outputs.diagram, podDiagramOf(plan));

    assert.equal((await ping(a, address("db"), "web")).code, 0, "web (node a) -> db (node b)");
    assert.equal((await ping(b, address("web"), "db")).code, 0, "db (node b) -> web (node a)");

    const server = a.spawn(PEER_ECHO(8080), { namespace: "web" });
    try {
      for (let i = 0; i < 50 && !server.stdout().includes("listening"); i++)
        await new Promise((r) => setTimeout(r, 100));
      const seen = await b.exec(CONNECT(address("web"), 8080), { namespace: "db" });
      assert.equal(seen.stdout.trim(), address("db"), "the server on node a saw another address than the pod's");
    } finally {
      await server.kill();
    }
    // The LAN peer has no route to the pods: only MASQUERADE brings the reply back.
    assert.equal((await ping(a, a.lan.internetAddress, "web")).code, 0, "web -> the lab's internet (NAT)");

    const again = await stack.up();
    ok(again, log);
    assert.equal(changes(again), 0, JSON.stringify(again.steps));
  });

  it("a LAN neighbour forging a pod source is not forwarded through a node (FORWARD policy DROP holds)", async () => {
    // Node b's host plays the neighbour on the shared segment: it sends to node a's internet address from
    // an address of its own pod CIDR (node a routes that back over the segment, so no rp_filter drops it).
    // Only pod traffic from node a's bridge may leave node a; the forged packet must die in node a's FORWARD.
    const forged = address("db").replace(/\.\d+$/, ".99");
    const size = 1111; // ICMP payload; the IPv4 packet is 1139 bytes: the LAN peer counts only those.
    const counter = ["INPUT", "-p", "icmp", "-m", "length", "--length", String(size + 28), "-j", "ACCEPT"];
    await a.execLan(["iptables", "-I", ...counter]);
    await b.exec(["ip", "addr", "add", `${forged}/32`, "dev", "lo"]);
    await b.exec(["ip", "route", "add", `${a.lan.internetAddress}/32`, "via", segment.addressOf(a)]);
    // Node b would masquerade its own pod-CIDR source on the way out (its MasqueradeRule): the neighbour doesn't.
    const keepSource = ["POSTROUTING", "-s", `${forged}/32`, "-j", "RETURN"];
    await b.exec(["iptables", "-t", "nat", "-I", ...keepSource]);
    try {
      // Control first: the same packets from node a's own pod do leave (through NAT).
      await a.exec(["ping", "-c", "2", "-i", "0.2", "-W", "1", "-s", String(size), a.lan.internetAddress], {
        namespace: "web",
        allowFailure: true,
      });
      const counted = async () => {
        const saved = (await a.execLan(["iptables-save", "-c", "-t", "filter"])).stdout;
        const line = saved.split("\n").find((l) => l.endsWith(`-A ${counter.join(" ")}`));
        assert.ok(line, `the LAN peer's counting rule is listed by iptables-save -c: ${saved}`);
        return Number(/^\[(\d+):\d+\]/.exec(line)![1]);
      };
      const control = await counted();
      assert.equal(control, 2, "web's own packets reached the LAN peer (the counter works)");
      await b.exec(
        ["ping", "-c", "3", "-i", "0.2", "-W", "1", "-s", String(size), "-I", forged, a.lan.internetAddress],
        {
          allowFailure: true,
        },
      );
      assert.equal((await counted()) - control, 0, `packets forged from ${forged} were forwarded by node a`);
    } finally {
      await b.exec(["iptables", "-t", "nat", "-D", ...keepSource], { allowFailure: true });
      await b.exec(["ip", "route", "del", `${a.lan.internetAddress}/32`], { allowFailure: true });
      await b.exec(["ip", "addr", "del", `${forged}/32`, "dev", "lo"], { allowFailure: true });
      await a.execLan(["iptables", "-D", ...counter], { allowFailure: true });
    }
    assert.equal((await ping(a, address("db"), "web")).code, 0, "web -> db still");
    assert.equal((await ping(b, address("web"), "db")).code, 0, "db -> web still");
  });

  it("destroy leaves both labs as they were", async () => {
    const d = await stack.destroy();
    ok(d, log);
    const kit = testingKit();
    const now = await Promise.all([kit.fingerprint(a), kit.fingerprint(b)]);
    assert.deepEqual(now, pristine);
  });
});
