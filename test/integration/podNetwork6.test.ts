import { strict as assert } from "node:assert";
import { podDiagramOf } from "../../components/podDiagram";
import { type PodNetworkSpec, planPodNetwork } from "../../components/podPlan";
import type { LabHost, LabSegment, OperationResult, PulumiStack } from "../../provider/testing";
import { rewriteProgram, testingKit, writeProgram } from "../support/harness";
import { CLIENT, WHO_SERVER, waitListening } from "../support/tcp";
import { changes, labConfig, ok, ping } from "./support";

/** Two dual-stack nodes on a segment with both families (192.0.2.1/.2 and 2001:db8:2::1/::2), two pods on node-a. */
const NODES = [
  {
    name: "node-a",
    nodeAddress: "192.0.2.1",
    nodeAddress6: "2001:db8:2::1",
    pods: [{ name: "web" }, { name: "api" }],
  },
  { name: "node-b", nodeAddress: "192.0.2.2", nodeAddress6: "2001:db8:2::2", pods: [{ name: "db" }] },
];
const ROUTES: PodNetworkSpec = { clusterCidr: "10.244.0.0/16", clusterCidr6: "fd00:10:244::/56", nodes: NODES };
// Mode vxlan: the overlay carries IPv6 over the IPv4 nodeAddresses; nodeAddress6 is not needed.
const VXLAN: PodNetworkSpec = {
  ...ROUTES,
  mode: "vxlan",
  nodes: NODES.map(({ nodeAddress6: _, ...n }) => n),
};

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
  nodes: spec.nodes.map((n, i) => ({ ...n, connection: connectionOf(i === 0 ? "" : "B") })),
});
export const podCidrs = net.podCidrs;
export const podCidrs6 = net.podCidrs6;
export const addresses = net.addresses;
export const addresses6 = net.addresses6;
export const diagram = net.diagram;
`;

/** The provider's steps that changed something, as "op name", sorted. */
const changedSteps = (r: OperationResult) =>
  r.steps
    .filter((s) => s.type.startsWith("pulumi-nodejs:dynamic/") && s.op !== "same")
    .map((s) => `${s.op} ${s.urn.split("::").pop()}`)
    .sort();

type Route6 = { dst: string; gateway?: string; dev?: string };
const routes6 = async (lab: LabHost, namespace?: string): Promise<Route6[]> =>
  JSON.parse((await lab.exec(["ip", "-6", "-j", "route", "show"], { namespace })).stdout);

describe("PodNetwork dual stack (clusterCidr6) on two linked lab hosts, through the real Pulumi engine", function () {
  this.timeout(600_000);
  let a: LabHost;
  let b: LabHost;
  let segment: LabSegment;
  const stacks: PulumiStack[] = [];
  let pristine: string[];
  const log: string[] = [];
  const fingerprints = () => Promise.all([testingKit().fingerprint(a), testingKit().fingerprint(b)]);
  const stackOf = (name: string, spec: PodNetworkSpec) => {
    const stack = new (testingKit().PulumiStack)({
      programDir: writeProgram(name, programOf(spec)),
      config: { ...labConfig(a), ...labConfig(b, "B") },
      log: (l) => log.push(l),
    });
    stacks.push(stack);
    return stack;
  };
  const podOf = (spec: PodNetworkSpec, pod: string) =>
    planPodNetwork(spec)
      .nodes.flatMap((n) => n.pods)
      .find((p) => p.name === pod)!;

  before(async () => {
    const kit = testingKit();
    // FORWARD policy DROP on both nodes (Docker's): pod traffic of both families must pass by the stack's rules.
    [a, b] = await Promise.all(
      ["a", "b"].map((x) => kit.startLabHost({ name: `it-pods6-${x}-${process.pid}`, forwardPolicyDrop: true })),
    );
    segment = await kit.linkLabHosts([a, b], { subnet: "192.0.2.0/24", subnet6: "2001:db8:2::/64" });
    assert.deepEqual(
      segment.members.map((m) => m.address6),
      ["2001:db8:2::1", "2001:db8:2::2"],
    );
    pristine = await fingerprints();
    assert.match(pristine[0], /2001:db8:2::1/, "the fingerprint shows the segment's IPv6 address");
  });

  after(async () => {
    for (const s of stacks) await s.destroy().catch(() => undefined);
    await segment?.remove();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  describe("mode routes", () => {
    let stack: PulumiStack;
    before(() => {
      stack = stackOf("pods6", ROUTES);
    });

    it("pods reach each other over IPv6 and IPv4 across nodes without NAT, and the IPv6 outside through NAT; a second up changes nothing", async () => {
      const up = await stack.up();
      ok(up, log);
      const plan = planPodNetwork(ROUTES);
      assert.deepEqual(up.outputs.podCidrs6, { "node-a": "fd00:10:244:93::/64", "node-b": "fd00:10:244:26::/64" });
      assert.deepEqual(up.outputs.addresses6, {
        web: podOf(ROUTES, "web").address6,
        api: podOf(ROUTES, "api").address6,
        db: podOf(ROUTES, "db").address6,
      });
      assert.equal(up.outputs.diagram, podDiagramOf(plan));

      const web6 = podOf(ROUTES, "web").address6!;
      const db6 = podOf(ROUTES, "db").address6!;
      // The addresses are in place, not tentative (DAD), on the pods' veths and the bridges.
      const addrs = JSON.parse((await a.exec(["ip", "-6", "-j", "addr", "show"], { namespace: "web" })).stdout);
      const mine = addrs.flatMap((l: { addr_info: Array<{ local: string; tentative?: boolean }> }) => l.addr_info);
      assert.deepEqual(
        mine.filter((x: { local: string }) => x.local === web6).map((x: { tentative?: boolean }) => !!x.tentative),
        [false],
        JSON.stringify(addrs),
      );
      assert.equal((await ping(a, db6, "web")).code, 0, "web (node a) -> db (node b) over IPv6");
      assert.equal((await ping(b, web6, "db")).code, 0, "db (node b) -> web (node a) over IPv6");
      assert.equal((await ping(b, podOf(ROUTES, "api").address6!, "db")).code, 0, "db -> api over IPv6");
      assert.equal((await ping(a, podOf(ROUTES, "db").address, "web")).code, 0, "web -> db over IPv4 still");
      // Each node routes the other's IPv6 pod CIDR via its nodeAddress6.
      assert.deepEqual(
        (await routes6(a)).filter((r) => r.dst === "fd00:10:244:26::/64").map((r) => r.gateway),
        ["2001:db8:2::2"],
      );

      const server = a.spawn(WHO_SERVER(8080), { namespace: "web" });
      try {
        await waitListening(server);
        const seen = await b.exec(CLIENT(web6, 8080), { namespace: "db", allowFailure: true });
        assert.equal(seen.stdout.trim(), db6, `the server on node a saw another address than db's: ${seen.stderr}`);
      } finally {
        await server.kill();
      }
      // The LAN peer has no route to the pods' ULA: only the IPv6 MASQUERADE brings the reply back.
      assert.equal((await ping(a, a.lan.internetAddress6, "web")).code, 0, "web -> the lab's IPv6 internet (NAT)");

      const again = await stack.up();
      ok(again, log);
      assert.equal(changes(again), 0, JSON.stringify(again.steps));
    });

    it("an IPv6 node route deleted by hand: refresh notices it, up puts it back, a second up changes nothing", async () => {
      await a.exec(["ip", "-6", "route", "del", "fd00:10:244:26::/64"]);
      assert.notEqual((await ping(a, podOf(ROUTES, "db").address6!, "web")).code, 0, "web -> db without the route");
      const refreshed = await stack.refresh();
      ok(refreshed, log);
      assert.deepEqual(
        changedSteps(refreshed),
        ["delete cluster-node-a-to-node-b-ipv6"],
        JSON.stringify(refreshed.steps),
      );
      const up = await stack.up();
      ok(up, log);
      assert.deepEqual(changedSteps(up), ["create cluster-node-a-to-node-b-ipv6"], JSON.stringify(up.steps));
      assert.equal((await ping(a, podOf(ROUTES, "db").address6!, "web")).code, 0, "web -> db over IPv6 again");
      const again = await stack.up();
      ok(again, log);
      assert.equal(changes(again), 0, JSON.stringify(again.steps));
    });

    it("a pod removed whose IPv4 address another pod had probed past: one up converges, the other keeps its IPv6 address and answers on both", async () => {
      // Attacker trial: app12 and app20 derive one IPv4 address; app20 took the next. IPv6 mirrored the IPv4
      // offset, so removing app12 moved app20's IPv6 address onto the one app12 still held (its delete comes
      // after the update): DAD failed, and no later up could converge.
      const withApps: PodNetworkSpec = {
        ...ROUTES,
        nodes: [{ ...NODES[0], pods: [...NODES[0].pods, { name: "app12" }, { name: "app20" }] }, NODES[1]],
      };
      const withoutApp12: PodNetworkSpec = {
        ...ROUTES,
        nodes: [{ ...NODES[0], pods: [...NODES[0].pods, { name: "app20" }] }, NODES[1]],
      };
      assert.notEqual(
        podOf(withApps, "app20").address,
        podOf(withoutApp12, "app20").address,
        "the IPv4 side moves app20",
      );
      rewriteProgram(stack.programDir, programOf(withApps));
      const first = await stack.up();
      ok(first, log);
      const app20 = (first.outputs.addresses6 as Record<string, string>).app20;
      rewriteProgram(stack.programDir, programOf(withoutApp12));
      const removed = await stack.up();
      ok(removed, log);
      assert.equal((removed.outputs.addresses6 as Record<string, string>).app20, app20, "app20's IPv6 address moved");
      assert.equal((await ping(b, app20, "db")).code, 0, "db -> app20 over IPv6");
      assert.equal((await ping(b, podOf(withoutApp12, "app20").address, "db")).code, 0, "db -> app20 over IPv4");
      const addrs = JSON.parse((await a.exec(["ip", "-6", "-j", "addr", "show"], { namespace: "app20" })).stdout);
      const flags = addrs.flatMap((l: { addr_info: Array<{ dadfailed?: boolean; tentative?: boolean }> }) =>
        l.addr_info.filter((x) => x.dadfailed || x.tentative),
      );
      assert.deepEqual(flags, [], "an address of app20 failed DAD or is still tentative");
      rewriteProgram(stack.programDir, programOf(ROUTES));
      ok(await stack.up(), log);
    });

    it("destroy leaves both labs as they were (IPv6 routes and forwarding included)", async () => {
      ok(await stack.destroy(), log);
      assert.deepEqual(await fingerprints(), pristine);
    });
  });

  describe("mode vxlan", () => {
    let stack: PulumiStack;
    before(() => {
      stack = stackOf("pods6vx", VXLAN);
    });

    it("pods reach each other over IPv6 through the overlay, with no IPv6 pod route on the segment; a second up changes nothing; destroy leaves both labs as they were", async () => {
      const up = await stack.up();
      ok(up, log);
      const web6 = podOf(VXLAN, "web").address6!;
      const db6 = podOf(VXLAN, "db").address6!;
      assert.equal((await ping(a, db6, "web")).code, 0, "web (node a) -> db (node b) over IPv6");
      assert.equal((await ping(b, web6, "db")).code, 0, "db (node b) -> web (node a) over IPv6");
      for (const lab of [a, b]) {
        const cluster = (await routes6(lab)).filter((r) => r.dst.startsWith("fd00:10:244:"));
        assert.deepEqual(
          cluster.map((r) => [r.dst, r.gateway, r.dev]),
          [["fd00:10:244::/56", undefined, "v-net-0"]],
          `${lab.name}: ${JSON.stringify(cluster)}`,
        );
      }
      const server = b.spawn(WHO_SERVER(8081), { namespace: "db" });
      try {
        await waitListening(server);
        const seen = await a.exec(CLIENT(db6, 8081), { namespace: "web", allowFailure: true });
        assert.equal(seen.stdout.trim(), web6, `the server on node b saw another address than web's: ${seen.stderr}`);
      } finally {
        await server.kill();
      }
      const again = await stack.up();
      ok(again, log);
      assert.equal(changes(again), 0, JSON.stringify(again.steps));
      ok(await stack.destroy(), log);
      assert.deepEqual(await fingerprints(), pristine);
    });
  });
});
