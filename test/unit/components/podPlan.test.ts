import { strict as assert } from "node:assert";
import * as fc from "fast-check";
import { type PodNetworkSpec, PodPlanError, planPodNetwork } from "../../../components/podPlan";

/** The problems a spec is rejected with (fails the test when it is accepted). */
function problemsOf(spec: PodNetworkSpec): string[] {
  try {
    planPodNetwork(spec);
  } catch (err) {
    assert.ok(err instanceof PodPlanError, `not a PodPlanError: ${err}`);
    assert.ok(err.message.startsWith("PodNetwork: "), err.message);
    return err.problems;
  }
  assert.fail(`accepted ${JSON.stringify(spec)}`);
}

const TWO: PodNetworkSpec = {
  clusterCidr: "10.244.0.0/16",
  nodes: [
    { name: "node-a", nodeAddress: "192.0.2.1", pods: [{ name: "web" }, { name: "api", address: "10.244.147.10" }] },
    { name: "node-b", nodeAddress: "192.0.2.2", pods: [{ name: "db" }] },
  ],
};
const cidrsOf = (spec: PodNetworkSpec) =>
  Object.fromEntries(planPodNetwork(spec).nodes.map((n) => [n.name, n.podCidr]));
const node = (name: string, i: number, pods: string[] = []) => ({
  name,
  nodeAddress: `192.0.2.${i + 1}`,
  pods: pods.map((p) => ({ name: p })),
});

describe("planPodNetwork (the PodNetwork planner, pure data)", () => {
  it("plans two nodes: pod CIDRs from the names, bridge on the first host, pods inside, a route to the other node, NAT except to clusterCidr", () => {
    const plan = planPodNetwork(TWO);
    assert.equal(plan.bridge, "v-net-0");
    assert.equal(plan.mode, "routes");
    const [a, b] = plan.nodes;
    assert.equal(a.podCidr, "10.244.147.0/24");
    assert.equal(b.podCidr, "10.244.38.0/24");
    assert.equal(a.bridgeCidr, "10.244.147.1/24");
    assert.deepEqual(
      a.pods.map((p) => [p.name, p.cidr, p.vethName, p.bridgePortName]),
      [
        ["web", `${a.pods[0].address}/24`, "veth-web", "veth-web-br"],
        ["api", "10.244.147.10/24", "veth-api", "veth-api-br"],
      ],
    );
    assert.match(a.pods[0].address, /^10\.244\.147\.\d+$/);
    assert.notEqual(a.pods[0].address, a.bridgeAddress);
    assert.deepEqual(a.routes, [{ destination: "10.244.38.0/24", via: "192.0.2.2", toNode: "node-b" }]);
    assert.deepEqual(b.routes, [{ destination: "10.244.147.0/24", via: "192.0.2.1", toNode: "node-a" }]);
    assert.deepEqual(a.masquerade, { source: "10.244.0.0/16", exceptDestination: "10.244.0.0/16" });
    assert.equal(a.podRouteDestination, "default");
    const noNat = planPodNetwork({ ...TWO, outboundNat: false }).nodes[0];
    assert.equal(noNat.masquerade, undefined);
    assert.equal(noNat.podRouteDestination, "10.244.0.0/16");
  });

  it("a node's pod CIDR depends on its name only: adding, removing or reordering other nodes never moves it (property)", () => {
    const names = fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/), { minLength: 2, maxLength: 8 });
    let checked = 0;
    fc.assert(
      fc.property(names, fc.nat(), (list, drop) => {
        const spec = (ns: string[]) => ({
          clusterCidr: "10.0.0.0/8",
          podCidrPrefix: 24,
          nodes: ns.map((n, i) => node(n, i)),
        });
        let all: Record<string, string>;
        try {
          all = cidrsOf(spec(list));
        } catch (err) {
          assert.ok(err instanceof PodPlanError && /pin one of them with podCidr/.test(err.message), String(err));
          return; // a collision is refused, never resolved by moving a node
        }
        checked++;
        const fewer = list.filter((_, i) => i !== drop % list.length);
        const after = cidrsOf(spec([...fewer].reverse()));
        for (const n of fewer) assert.equal(after[n], all[n], `${n} moved when a node was removed`);
      }),
      { numRuns: 200 },
    );
    assert.ok(checked > 150, `only ${checked} runs planned`);
  });

  it("two names landing on one block are refused naming both and a free block; a pin resolves it and moves nobody else", () => {
    const clash: PodNetworkSpec = { clusterCidr: "10.244.0.0/16", nodes: [node("node-c", 0), node("n2", 1)] };
    const [p] = problemsOf(clash);
    assert.match(
      p,
      /^nodes\[1\]\.podCidr: node "n2"'s name derives pod CIDR 10\.244\.185\.0\/24, which is nodes\[0\] \("node-c"\)'s; pin one of them with podCidr \(10\.244\.0\.0\/24 is free\)/,
    );
    const pinned = cidrsOf({ ...clash, nodes: [clash.nodes[0], { ...clash.nodes[1], podCidr: "10.244.0.0/24" }] });
    assert.deepEqual(pinned, { "node-c": "10.244.185.0/24", n2: "10.244.0.0/24" });
  });

  it("refuses, naming the field and the value: node address inside clusterCidr, a pod name twice, too many pods, too many nodes, an address outside its node's CIDR", () => {
    assert.match(
      problemsOf({ ...TWO, nodes: [{ ...TWO.nodes[0], nodeAddress: "10.244.200.1" }, TWO.nodes[1]] }).join("; "),
      /nodes\[0\]\.nodeAddress: "10\.244\.200\.1" is inside clusterCidr 10\.244\.0\.0\/16/,
    );
    assert.match(
      problemsOf({ ...TWO, nodes: [TWO.nodes[0], { ...TWO.nodes[1], pods: [{ name: "web" }] }] }).join("; "),
      /nodes\[1\]\.pods\[0\]\.name: "web" is also nodes\[0\]\.pods\[0\] \(node "node-a"\); pod names are unique across the cluster/,
    );
    assert.match(
      problemsOf({
        clusterCidr: "10.244.0.0/16",
        podCidrPrefix: 29,
        nodes: [node("a", 0, ["p1", "p2", "p3", "p4", "p5", "p6"])],
      }).join(),
      /podCidrPrefix: a \/29 holds 5 pods .* node "a" has 6; use a shorter podCidrPrefix/,
    );
    assert.match(
      problemsOf({ clusterCidr: "10.244.0.0/23", nodes: [node("a", 0), node("b", 1), node("c", 2)] }).join(),
      /nodes: 10\.244\.0\.0\/23 holds 2 pod CIDRs of \/24 for 3 nodes/,
    );
    assert.match(
      problemsOf({
        ...TWO,
        nodes: [TWO.nodes[0], { ...TWO.nodes[1], pods: [{ name: "db", address: "10.244.147.9" }] }],
      }).join(),
      /nodes\[1\]\.pods\[0\]\.address: "10\.244\.147\.9" is not a pod address of node "node-b"'s pod CIDR 10\.244\.38\.0\/24 \(10\.244\.38\.2-10\.244\.38\.254\)/,
    );
    // The bridge's own address is not a pod's.
    assert.match(
      problemsOf({
        ...TWO,
        nodes: [TWO.nodes[0], { ...TWO.nodes[1], pods: [{ name: "db", address: "10.244.38.1" }] }],
      }).join(),
      /pods\[0\]\.address: "10\.244\.38\.1" is not a pod address/,
    );
  });

  it("refuses bad plain values before planning: clusterCidr, podCidrPrefix, mode, bridge, node names and addresses, pins, misspelt fields", () => {
    const all = (spec: unknown) => problemsOf(spec as PodNetworkSpec).join("; ");
    assert.match(all({ ...TWO, clusterCidr: "10.244.1.0/16" }), /clusterCidr: "10\.244\.1\.0\/16" has host bits set/);
    assert.match(all({ ...TWO, podCidrPrefix: 8 }), /podCidrPrefix: .*at least clusterCidr's \/16/);
    assert.match(all({ ...TWO, mode: "vxlan", bridge: "vxlan0" }), /bridge: "vxlan0" is the VXLAN device's name/);
    assert.match(all({ ...TWO, mode: "bgp" }), /mode: "bgp"/);
    assert.match(all({ ...TWO, bridge: "br; rm -rf /" }), /bridge: "br; rm -rf \/" may contain only/);
    assert.match(
      all({ ...TWO, nodes: [TWO.nodes[0], { ...TWO.nodes[1], name: "node-a" }] }),
      /nodes\[1\]\.name: "node-a" is also nodes\[0\]'s name/,
    );
    assert.match(
      all({ ...TWO, nodes: [TWO.nodes[0], { ...TWO.nodes[1], nodeAddress: "192.0.2.1" }] }),
      /nodes\[1\]\.nodeAddress: "192\.0\.2\.1" is also nodes\[0\]'s/,
    );
    assert.match(
      all({ ...TWO, nodes: [{ ...TWO.nodes[0], nodeAddress: "$(id)" }] }),
      /nodes\[0\]\.nodeAddress: "\$\(id\)" is not an IPv4 address/,
    );
    assert.match(
      all({ ...TWO, nodes: [{ ...TWO.nodes[0], podCidr: "10.245.0.0/24" }] }),
      /nodes\[0\]\.podCidr: "10\.245\.0\.0\/24" is not a \/24 block of clusterCidr/,
    );
    assert.match(
      all({ ...TWO, nodes: [{ ...TWO.nodes[0], pods: [{ name: "../x" }] }] }),
      /nodes\[0\]\.pods\[0\]\.name: "\.\.\/x"/,
    );
    assert.match(
      all({ ...TWO, nodes: [{ ...TWO.nodes[0], podz: [] }] }),
      /nodes\[0\]\.podz: unknown field "podz"; did you mean "pods"\?/,
    );
    assert.match(all({ ...TWO, nodes: [] }), /nodes: at least one node is needed/);
  });

  it("refuses two pods of one node whose bridge ports derive the same name, naming both pods; on different nodes they plan", () => {
    // Both names are longer than fits "veth-<name>-br" in 15 characters, so each port is "vbr-" and
    // the FNV-1a of the pod's name: these two hash alike (found by search), and both ports are on the node.
    const pods = [{ name: "pod-250176" }, { name: "pod-1254140" }];
    assert.match(
      problemsOf({ clusterCidr: "10.244.0.0/16", nodes: [{ name: "n", nodeAddress: "192.0.2.1", pods }] }).join("; "),
      /nodes\[0\]\.pods\[1\]\.name: pod "pod-1254140"'s bridge port "vbr-f9f3b570" \(derived from the name\) is also pod "pod-250176"'s \(nodes\[0\]\.pods\[0\]\): ports share the node's namespace; rename one of them/,
    );
    const plan = planPodNetwork({
      clusterCidr: "10.244.0.0/16",
      nodes: [node("a", 0, ["pod-250176"]), node("b", 1, ["pod-1254140"])],
    });
    assert.deepEqual(
      plan.nodes.map((n) => n.pods[0].bridgePortName),
      ["vbr-f9f3b570", "vbr-f9f3b570"],
    );
  });

  it("refuses null and non-object entries in nodes and pods naming their place, not with a TypeError", () => {
    const all = (spec: unknown) => problemsOf(spec as PodNetworkSpec).join("; ");
    assert.match(all({ ...TWO, nodes: [TWO.nodes[0], null] }), /nodes\[1\]: null is not a node \(an object like/);
    assert.match(all({ ...TWO, nodes: ["node-a"] }), /nodes\[0\]: "node-a" is not a node \(an object like/);
    assert.match(
      all({ ...TWO, nodes: [{ ...TWO.nodes[0], pods: [{ name: "a" }, { name: "b" }, null] }] }),
      /nodes\[0\]\.pods\[2\]: null is not a pod \(an object like \{ name: "web" \}\)/,
    );
    assert.match(
      all({ ...TWO, nodes: [TWO.nodes[0], { ...TWO.nodes[1], pods: [7] }] }),
      /nodes\[1\]\.pods\[0\]: 7 is not a pod/,
    );
  });

  it("refuses a nodeAddress no node can have: unspecified, loopback, broadcast, multicast, saying which", () => {
    const at = (nodeAddress: string) =>
      problemsOf({ ...TWO, nodes: [TWO.nodes[0], { ...TWO.nodes[1], nodeAddress }] }).join("; ");
    assert.match(at("0.0.0.0"), /nodes\[1\]\.nodeAddress: "0\.0\.0\.0" is the unspecified address/);
    assert.match(at("127.0.0.1"), /nodes\[1\]\.nodeAddress: "127\.0\.0\.1" is a loopback address/);
    assert.match(at("255.255.255.255"), /nodes\[1\]\.nodeAddress: "255\.255\.255\.255" is the broadcast address/);
    assert.match(at("224.0.0.1"), /nodes\[1\]\.nodeAddress: "224\.0\.0\.1" is a multicast address/);
    // Documentation and benchmark ranges (ipaddr.js's "reserved") are what labs use: accepted.
    planPodNetwork({ ...TWO, nodes: [TWO.nodes[0], { ...TWO.nodes[1], nodeAddress: "198.18.0.9" }] });
  });
});

describe("planPodNetwork: no arguments", () => {
  it("is a PodPlanError naming the arguments, not a TypeError", () => {
    assert.throws(
      () => planPodNetwork(undefined as never),
      (e: unknown) => e instanceof PodPlanError && /the arguments: undefined is not an object/.test(e.message),
    );
  });
});
