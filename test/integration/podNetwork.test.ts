import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { podDiagramOf } from "../../components/podDiagram";
import { type PodNetworkSpec, planPodNetwork } from "../../components/podPlan";
import type { LabHost, LabSegment, OperationResult, PulumiStack } from "../../provider/testing";
import { rewriteProgram, testingKit, writeProgram } from "../support/harness";
import { type TraceEvent, traceEvents } from "../support/trace";
import { changes, labConfig, netnsList, ok, ping } from "./support";

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

/** The three nodes of the change tests, on one segment (192.0.2.1-.3): node-c comes and goes. */
const NODE_A = { name: "node-a", nodeAddress: "192.0.2.1", pods: [{ name: "web" }] };
const NODE_B = { name: "node-b", nodeAddress: "192.0.2.2", pods: [{ name: "db" }] };
const NODE_C = { name: "node-c", nodeAddress: "192.0.2.3", pods: [{ name: "cache" }] };

/** The program of SPEC's kind for any spec: each node's connection is the config of the lab its name ends in. */
const programOf = (spec: PodNetworkSpec) => `
import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";

const cfg = new pulumi.Config();
const connectionOf = (suffix: string) => ({
  host: cfg.require("host" + suffix),
  port: cfg.requireNumber("port" + suffix),
  user: "root",
  privateKey: cfg.requireSecret("privateKey" + suffix),
});
const spec = ${JSON.stringify(spec)};
const net = new netns.PodNetwork("cluster", {
  ...spec,
  nodes: spec.nodes.map((n) => ({ ...n, connection: connectionOf(n.name.slice(-1).toUpperCase()) })),
});
export const podCidrs = net.podCidrs;
export const addresses = net.addresses;
`;

/** The provider's steps that changed something, as "op name", sorted. */
const changedSteps = (r: OperationResult) =>
  r.steps
    .filter((s) => s.type.startsWith("pulumi-nodejs:dynamic/") && s.op !== "same")
    .map((s) => `${s.op} ${s.urn.split("::").pop()}`)
    .sort();

/** The creation marks a create leaves until the client has read its output (executor.ts markFile): bookkeeping, not the object. */
const MARK_REMOVAL = /^rm -f \/run\/pulumi-netns-made\.[0-9a-f]+$/;

/** The commands sent to a host, without the removal of creation marks. */
const sent = (events: TraceEvent[]) => events.map((e) => e.command ?? "").filter((c) => !MARK_REMOVAL.test(c));

describe("PodNetwork (mode routes): adding or removing a pod or a node touches only what it must; refresh repairs a node route", function () {
  this.timeout(600_000);
  const labs: LabHost[] = [];
  let segment: LabSegment;
  let stack: PulumiStack;
  let dir: string;
  let traceFile: string;
  let pristine: string[];
  const log: string[] = [];

  /** The commands sent to `lab` while `op` ran (from the PULUMI_NETNS_TRACE file). */
  async function commandsOn<T>(op: () => Promise<T>): Promise<{ result: T; on: (lab: LabHost) => TraceEvent[] }> {
    const offset = fs.existsSync(traceFile) ? fs.statSync(traceFile).size : 0;
    const result = await op();
    const events = traceEvents(traceFile, offset).filter((e) => e.event === "command");
    return {
      result,
      on: (lab) => events.filter((e) => e.host === `root@${lab.connection.host}:${lab.connection.port}`),
    };
  }

  /** `pulumi up` of the program for `spec`, with the commands it sent per lab. */
  async function upWith(spec: PodNetworkSpec) {
    rewriteProgram(dir, programOf(spec));
    const { result, on } = await commandsOn(() => stack.up());
    ok(result, log);
    return { up: result, on };
  }

  const addressOf = (spec: PodNetworkSpec, pod: string) =>
    planPodNetwork(spec)
      .nodes.flatMap((n) => n.pods)
      .find((p) => p.name === pod)!.address;

  before(async () => {
    const kit = testingKit();
    labs.push(
      ...(await Promise.all(["a", "b", "c"].map((x) => kit.startLabHost({ name: `it-podsteps-${x}-${process.pid}` })))),
    );
    segment = await kit.linkLabHosts(labs, { subnet: "192.0.2.0/24" });
    assert.deepEqual(
      labs.map((l) => segment.addressOf(l)),
      [NODE_A, NODE_B, NODE_C].map((n) => n.nodeAddress),
    );
    pristine = await Promise.all(labs.map((l) => kit.fingerprint(l)));
    dir = writeProgram("podsteps", programOf({ clusterCidr: "10.244.0.0/16", nodes: [NODE_A, NODE_B] }));
    traceFile = path.join(dir, "commands.jsonl");
    stack = new kit.PulumiStack({
      programDir: dir,
      config: Object.assign({}, ...labs.map((l, i) => labConfig(l, "ABC"[i]))),
      log: (l) => log.push(l),
      env: { PULUMI_NETNS_TRACE: traceFile },
    });
  });

  after(async () => {
    if (stack) await stack.destroy().catch(() => undefined);
    await segment?.remove();
    await Promise.all(labs.map((l) => l.stop()));
  });

  const TWO: PodNetworkSpec = { clusterCidr: "10.244.0.0/16", nodes: [NODE_A, NODE_B] };
  const WITH_API: PodNetworkSpec = {
    clusterCidr: "10.244.0.0/16",
    nodes: [{ ...NODE_A, pods: [...NODE_A.pods, { name: "api" }] }, NODE_B],
  };
  const THREE: PodNetworkSpec = { clusterCidr: "10.244.0.0/16", nodes: [NODE_A, NODE_B, NODE_C] };

  it("a pod added on node-a: exactly its Namespace, VethPair and Route created, no command sent to node-b; removed: exactly those deleted", async () => {
    const [a, b] = labs;
    ok(await stack.up(), log);
    assert.equal((await ping(a, addressOf(TWO, "db"), "web")).code, 0, "web -> db before any change");

    const added = await upWith(WITH_API);
    assert.deepEqual(
      changedSteps(added.up),
      ["create cluster-node-a-api", "create cluster-node-a-api-route", "create cluster-node-a-api-veth"],
      JSON.stringify(added.up.steps),
    );
    // The trace names the hosts as this test does: node-a's got the pod's commands.
    assert.ok(
      sent(added.on(a)).some((c) => c.includes("ip netns add api")),
      JSON.stringify(sent(added.on(a))),
    );
    // Not even a read: node-b's resources are "same", which the engine decides from state alone.
    assert.deepEqual(sent(added.on(b)), [], "commands sent to node-b's host");
    assert.equal((await ping(a, addressOf(WITH_API, "db"), "api")).code, 0, "api (node-a) -> db (node-b)");
    assert.equal((await ping(b, addressOf(WITH_API, "api"), "db")).code, 0, "db (node-b) -> api (node-a)");

    const removed = await upWith(TWO);
    assert.deepEqual(
      changedSteps(removed.up),
      ["delete cluster-node-a-api", "delete cluster-node-a-api-route", "delete cluster-node-a-api-veth"],
      JSON.stringify(removed.up.steps),
    );
    assert.ok(
      sent(removed.on(a)).some((c) => c.includes("ip netns del api")),
      JSON.stringify(sent(removed.on(a))),
    );
    assert.deepEqual(sent(removed.on(b)), [], "commands sent to node-b's host");
    assert.deepEqual(await netnsList(a), ["web"]);
  });

  it("a third node: its own objects created plus exactly one node Route on each other node, nothing replaced; removed: the mirror", async () => {
    const [a, b, c] = labs;
    const nodeC = [
      "create cluster-node-a-to-node-c",
      "create cluster-node-b-to-node-c",
      "create cluster-node-c-bridge",
      "create cluster-node-c-cache",
      "create cluster-node-c-cache-route",
      "create cluster-node-c-cache-veth",
      "create cluster-node-c-forward",
      "create cluster-node-c-to-node-a",
      "create cluster-node-c-to-node-b",
    ];
    const added = await upWith(THREE);
    assert.deepEqual(changedSteps(added.up), nodeC, JSON.stringify(added.up.steps));
    // On each existing node one command: its route to node-c (added with the route's check in one batch).
    const cidrC = planPodNetwork(THREE).nodes[2].podCidr;
    const routeToC = new RegExp(`'route add ${cidrC.replace(/\./g, "\\.")} via 192\\.0\\.2\\.3 `);
    for (const lab of [a, b]) {
      const commands = sent(added.on(lab));
      assert.equal(commands.length, 1, `${lab.name}: ${JSON.stringify(commands)}`);
      assert.match(commands[0], routeToC, `${lab.name}: ${commands[0]}`);
    }
    assert.equal((await ping(c, addressOf(THREE, "web"), "cache")).code, 0, "cache (node-c) -> web (node-a)");
    assert.equal((await ping(c, addressOf(THREE, "db"), "cache")).code, 0, "cache (node-c) -> db (node-b)");
    assert.equal((await ping(a, addressOf(THREE, "cache"), "web")).code, 0, "web (node-a) -> cache (node-c)");

    const removed = await upWith(TWO);
    assert.deepEqual(
      changedSteps(removed.up),
      nodeC.map((s) => s.replace(/^create/, "delete")),
      JSON.stringify(removed.up.steps),
    );
    for (const lab of [a, b]) {
      const commands = sent(removed.on(lab));
      assert.equal(commands.length, 1, `${lab.name}: ${JSON.stringify(commands)}`);
      assert.match(commands[0], new RegExp(`route del ${cidrC.replace(/\./g, "\\.")}`), `${lab.name}: ${commands[0]}`);
      const routes = JSON.parse((await lab.exec(["ip", "-j", "route", "show"])).stdout) as Array<{ dst: string }>;
      assert.equal(
        routes.find((r) => r.dst === cidrC),
        undefined,
        `${lab.name} still routes ${cidrC}`,
      );
    }
  });

  it("a node route deleted by hand: refresh notices it, up puts it back, pods reach each other again, a second up changes nothing", async () => {
    const [a, b] = labs;
    const cidrB = planPodNetwork(TWO).nodes[1].podCidr;
    await a.exec(["ip", "route", "del", cidrB]);
    assert.notEqual((await ping(a, addressOf(TWO, "db"), "web")).code, 0, "web -> db without node-a's route to node-b");

    const refreshed = await stack.refresh();
    ok(refreshed, log);
    assert.deepEqual(changedSteps(refreshed), ["delete cluster-node-a-to-node-b"], JSON.stringify(refreshed.steps));

    const up = await stack.up();
    ok(up, log);
    assert.deepEqual(changedSteps(up), ["create cluster-node-a-to-node-b"], JSON.stringify(up.steps));
    const routes = JSON.parse((await a.exec(["ip", "-j", "route", "show", cidrB])).stdout) as Array<{
      dst: string;
      gateway?: string;
    }>;
    assert.deepEqual(
      routes.map((r) => [r.dst, r.gateway]),
      [[cidrB, NODE_B.nodeAddress]],
    );
    assert.equal((await ping(a, addressOf(TWO, "db"), "web")).code, 0, "web (node-a) -> db (node-b)");
    assert.equal((await ping(b, addressOf(TWO, "web"), "db")).code, 0, "db (node-b) -> web (node-a)");

    const again = await stack.up();
    ok(again, log);
    assert.equal(changes(again), 0, JSON.stringify(again.steps));
  });

  it("destroy leaves all three labs as they were", async () => {
    ok(await stack.destroy(), log);
    const kit = testingKit();
    assert.deepEqual(await Promise.all(labs.map((l) => kit.fingerprint(l))), pristine);
  });
});
