import { strict as assert } from "node:assert";
import { fnv1a } from "../../../components/plan";
import { type PodNetworkSpec, PodPlanError, planPodNetwork } from "../../../components/podPlan";
import { fromBig, toBig } from "../../../provider/kernel/cidr";

/** Two nodes, dual stack, mode routes: the IPv6 side mirrors the IPv4 one. */
const DUAL: PodNetworkSpec = {
  clusterCidr: "10.244.0.0/16",
  clusterCidr6: "fd00:10:244::/56",
  nodes: [
    {
      name: "node-a",
      nodeAddress: "192.0.2.1",
      nodeAddress6: "2001:db8:2::1",
      pods: [{ name: "web" }, { name: "api" }],
    },
    { name: "node-b", nodeAddress: "192.0.2.2", nodeAddress6: "2001:db8:2::2", pods: [{ name: "db" }] },
  ],
};

const refused = (spec: unknown, ...patterns: RegExp[]) => {
  try {
    planPodNetwork(spec as PodNetworkSpec);
  } catch (e) {
    assert.ok(e instanceof PodPlanError, String(e));
    for (const p of patterns) assert.match(e.message, p);
    return e.message;
  }
  assert.fail(`planned: ${JSON.stringify(spec)}`);
};

const withNode = (i: number, change: object): PodNetworkSpec => ({
  ...DUAL,
  nodes: DUAL.nodes.map((n, j) => (j === i ? { ...n, ...change } : n)),
});

describe("planPodNetwork dual stack (clusterCidr6, pure data)", () => {
  it("gives each node the IPv6 block with its IPv4 block's index, each pod ::2 plus its name's FNV-1a; the bridge ::1", () => {
    const plan = planPodNetwork(DUAL);
    assert.equal(plan.clusterCidr6, "fd00:10:244::/56");
    assert.equal(plan.podCidrPrefix6, 64);
    const [a, b] = plan.nodes;
    assert.equal(a.podCidr, "10.244.147.0/24");
    assert.equal(a.podCidr6, "fd00:10:244:93::/64"); // 147 = 0x93
    assert.equal(b.podCidr, "10.244.38.0/24");
    assert.equal(b.podCidr6, "fd00:10:244:26::/64"); // 38 = 0x26
    assert.equal(a.bridgeAddress6, "fd00:10:244:93::1");
    assert.equal(a.bridgeCidr6, "fd00:10:244:93::1/64");
    for (const node of plan.nodes)
      for (const pod of node.pods) {
        const base = toBig(node.podCidr6!.split("/")[0]);
        assert.equal(pod.address6, fromBig(base + 2n + BigInt(fnv1a(pod.name))), pod.name);
        assert.equal(pod.cidr6, `${pod.address6}/64`);
      }
    assert.deepEqual(a.routes6, [{ destination: "fd00:10:244:26::/64", via: "2001:db8:2::2", toNode: "node-b" }]);
    assert.deepEqual(b.routes6, [{ destination: "fd00:10:244:93::/64", via: "2001:db8:2::1", toNode: "node-a" }]);
    assert.equal(a.podRouteDestination6, "default6");
    assert.deepEqual(a.masquerade6, { source: "fd00:10:244::/56", exceptDestination: "fd00:10:244::/56" });
    // The IPv4 side is exactly what it is without clusterCidr6.
    const v4 = planPodNetwork({
      ...DUAL,
      clusterCidr6: undefined,
      nodes: DUAL.nodes.map(({ nodeAddress6: _, ...n }) => n),
    });
    assert.deepEqual(
      plan.nodes.map((n) => [n.podCidr, n.bridgeCidr, n.routes, n.pods.map((p) => p.cidr)]),
      v4.nodes.map((n) => [n.podCidr, n.bridgeCidr, n.routes, n.pods.map((p) => p.cidr)]),
    );
    assert.equal(v4.clusterCidr6, undefined);
    assert.deepEqual(v4.nodes[0].routes6, []);
    assert.equal(v4.nodes[0].pods[0].address6, undefined);
  });

  it("without outboundNat the pods route clusterCidr6 only; mode vxlan has no IPv6 node routes, needs no nodeAddress6, and the bridge covers clusterCidr6", () => {
    const noNat = planPodNetwork({ ...DUAL, outboundNat: false });
    assert.equal(noNat.nodes[0].podRouteDestination6, "fd00:10:244::/56");
    assert.equal(noNat.nodes[0].masquerade6, undefined);
    const vx = planPodNetwork({
      ...DUAL,
      mode: "vxlan",
      nodes: DUAL.nodes.map(({ nodeAddress6: _, ...n }) => n),
    });
    assert.deepEqual(vx.nodes[0].routes6, []);
    assert.equal(vx.nodes[0].bridgeCidr6, "fd00:10:244:93::1/56");
    assert.equal(vx.nodes[0].nodeAddress6, undefined);
  });

  it("a pinned address6 and podCidr6 are kept; a derived address a pin would take is refused, naming both and the fix, never moved", () => {
    const a = planPodNetwork(DUAL).nodes[0];
    const web6 = a.pods.find((p) => p.name === "web")!.address6!;
    const plan = planPodNetwork(
      withNode(0, {
        podCidr6: "fd00:10:244:ff::/64",
        pods: [{ name: "web" }, { name: "api", address6: "fd00:10:244:ff::a" }],
      }),
    );
    const [web, api] = plan.nodes[0].pods;
    assert.equal(plan.nodes[0].podCidr6, "fd00:10:244:ff::/64");
    assert.equal(api.address6, "fd00:10:244:ff::a");
    assert.equal(web.address6, web6.replace(":93::", ":ff::"), "web's derived address, in the pinned block");
    refused(
      withNode(0, { pods: [{ name: "web" }, { name: "api", address6: web6 }] }),
      new RegExp(
        `nodes\\[0\\]\\.pods\\[0\\]\\.address6: pod "web"'s IPv6 address derived from its name, ${web6}, is already pod "api"'s address6 \\(nodes\\[0\\]\\.pods\\[1\\]\\); pin one of them with address6`,
      ),
    );
  });

  it("removing or adding pods never moves another pod's IPv6 address (what an IPv6 update could not take over: DAD)", () => {
    // app12 and app20 meet on IPv4 (the IPv4 side moves app20 when app12 goes); IPv6 must not.
    const pods = ["web", "api", "app12", "app20", "x1", "x2", "x3", "cache", "queue"];
    const six = (names: string[]) =>
      new Map(
        planPodNetwork(withNode(0, { pods: names.map((name) => ({ name })) })).nodes[0].pods.map((p) => [
          p.name,
          p.address6,
        ]),
      );
    const all = six(pods);
    for (const gone of pods) {
      const without = six(pods.filter((p) => p !== gone));
      for (const [name, address6] of without) assert.equal(address6, all.get(name), `${name} moved when ${gone} went`);
    }
    const v4 = (names: string[]) =>
      planPodNetwork(withNode(0, { pods: names.map((name) => ({ name })) })).nodes[0].pods.find(
        (p) => p.name === "app20",
      )!.address;
    assert.notEqual(
      v4(pods),
      v4(pods.filter((p) => p !== "app12")),
      "the IPv4 side does move app20 (the case is real)",
    );
  });

  it("an address of the wrong family is refused at its field, naming the field it belongs in", () => {
    refused({ ...DUAL, clusterCidr: "fd00:10:244::/56" }, /clusterCidr: "fd00:10:244::\/56" is IPv6; .*clusterCidr6/);
    refused({ ...DUAL, clusterCidr6: "10.245.0.0/16" }, /clusterCidr6: "10.245.0.0\/16" is IPv4; .*clusterCidr\b/);
    refused(
      withNode(1, { nodeAddress: "2001:db8:2::2" }),
      /nodes\[1\]\.nodeAddress: "2001:db8:2::2" is IPv6; .*nodeAddress6/,
    );
    refused(withNode(1, { nodeAddress6: "192.0.2.2" }), /nodes\[1\]\.nodeAddress6: "192.0.2.2" is IPv4/);
    refused(
      withNode(0, { pods: [{ name: "web", address: "fd00:10:244:93::9" }] }),
      /nodes\[0\]\.pods\[0\]\.address: "fd00:10:244:93::9" is IPv6; .*address6/,
    );
    refused(withNode(0, { podCidr: "fd00:10:244:93::/64" }), /nodes\[0\]\.podCidr: .* is IPv6; .*podCidr6/);
  });

  it("refuses, naming field and value: IPv6 fields without clusterCidr6, a node address inside clusterCidr6 or twice, a missing nodeAddress6 in mode routes, bad pins", () => {
    refused(
      {
        clusterCidr: "10.244.0.0/16",
        nodes: [
          {
            name: "n",
            nodeAddress: "192.0.2.1",
            nodeAddress6: "2001:db8::1",
            pods: [{ name: "p", address6: "fd00::5" }],
          },
        ],
      },
      /nodes\[0\]\.nodeAddress6: "2001:db8::1" needs clusterCidr6/,
      /nodes\[0\]\.pods\[0\]\.address6: "fd00::5" needs clusterCidr6/,
    );
    refused({ ...DUAL, podCidrPrefix6: 64, clusterCidr6: undefined }, /podCidrPrefix6: 64 needs clusterCidr6/);
    refused(
      withNode(1, { nodeAddress6: "fd00:10:244:5::2" }),
      /nodes\[1\]\.nodeAddress6: "fd00:10:244:5::2" is inside clusterCidr6/,
    );
    refused(
      withNode(1, { nodeAddress6: "2001:db8:2::1" }),
      /nodes\[1\]\.nodeAddress6: "2001:db8:2::1" is also nodes\[0\]'s/,
    );
    refused(withNode(1, { nodeAddress6: "fe80::2" }), /nodes\[1\]\.nodeAddress6: "fe80::2" is link-local/);
    refused(
      withNode(1, { nodeAddress6: undefined }),
      /nodes\[1\]\.nodeAddress6: mode "routes" with clusterCidr6 needs/,
    );
    refused(
      withNode(0, { podCidr6: "fd00:10:245::/64" }),
      /nodes\[0\]\.podCidr6: "fd00:10:245::\/64" is not a \/64 block of clusterCidr6/,
    );
    refused(
      withNode(0, { podCidr6: "fd00:10:244:26::/64" }),
      /nodes\[1\]\.podCidr6: .*fd00:10:244:26::\/64, which is nodes\[0\] \("node-a"\)'s; pin one of them with podCidr6/,
    );
    refused(
      withNode(0, { pods: [{ name: "web", address6: "fd00:10:244:26::9" }] }),
      /nodes\[0\]\.pods\[0\]\.address6: .* is not in node "node-a"'s IPv6 pod CIDR fd00:10:244:93::\/64/,
    );
    refused(
      withNode(0, { pods: [{ name: "web", address6: "fd00:10:244:93::1" }] }),
      /address6: "fd00:10:244:93::1" is already the bridge's address/,
    );
    refused(
      { ...DUAL, clusterCidr6: "fe80::/56" },
      /clusterCidr6: "fe80::\/56" is a link-local network, not a unique local/,
    );
    refused(
      { ...DUAL, clusterCidr6: "fd00:10:244::/56", podCidrPrefix6: 48 },
      /podCidrPrefix6: 48 .*at least clusterCidr6's \/56/,
    );
    refused(
      { ...DUAL, clusterCidr6: "fd00:10:244::/96" },
      /podCidrPrefix6: 64 .*the default \/64 does not fit clusterCidr6/,
    );
    refused(
      { ...DUAL, clusterCidr6: "fd00:10:244::/64", podCidrPrefix6: 64 },
      /nodes: clusterCidr6 fd00:10:244::\/64 holds 1 IPv6 pod CIDRs of \/64 for 2 nodes; use a larger clusterCidr6 or a longer podCidrPrefix6/,
    );
    for (const wide of ["8000::/1", "e000::/3", "4000::/2", "fec0::/64", "::/0"])
      refused(
        { ...DUAL, clusterCidr6: wide },
        new RegExp(
          `clusterCidr6: "${wide.replace(/[/]/g, "\\/")}" (is|starts at) .*not a unique local \\(fd00::/8\\) or global unicast`,
        ),
      );
    for (const [address, why] of [
      ["64:ff9b::c000:201", /NAT64/],
      ["2002::1", /6to4/],
      ["2001::1", /Teredo/],
      ["fec0::1", /site-local/],
    ] as const)
      refused(withNode(1, { nodeAddress6: address }), why);
    refused(
      withNode(0, { pods: [{ name: "web", address6: "fd00:10:244:26::9" }] }),
      /give one of fd00:10:244:93::2-fd00:10:244:93:ffff:ffff:ffff:ffff, or leave address6 out/,
    );
  });

  it("with fewer IPv6 blocks than IPv4 ones the index wraps; nodes that meet are refused naming a free block, and a pin resolves it", () => {
    // /62 in /64s: 4 blocks; node-a's IPv4 index 147 % 4 = 3, node-b's 38 % 4 = 2.
    const small = planPodNetwork({ ...DUAL, clusterCidr6: "fd00:10:244::/62" });
    assert.deepEqual(
      small.nodes.map((n) => n.podCidr6),
      ["fd00:10:244:3::/64", "fd00:10:244:2::/64"],
    );
    // A third node whose IPv4 index is 3 mod 4 meets node-a.
    const third = (name: string) => ({ name, nodeAddress: "192.0.2.3", nodeAddress6: "2001:db8:2::3", pods: [] });
    const plan = planPodNetwork({ ...DUAL, nodes: [...DUAL.nodes, third("node-c")] });
    const slot = Number(plan.nodes[2].podCidr.split(".")[2]);
    const names = ["node-c", "node-d", "node-e", "node-f", "node-g", "node-h", "node-i", "node-j"];
    const meeting = names.find((n) => {
      const p = planPodNetwork({ ...DUAL, nodes: [...DUAL.nodes, third(n)] });
      return Number(p.nodes[2].podCidr.split(".")[2]) % 4 === 3;
    });
    assert.ok(meeting, `no name of ${names} meets node-a (slot ${slot})`);
    const spec = { ...DUAL, clusterCidr6: "fd00:10:244::/62", nodes: [...DUAL.nodes, third(meeting)] };
    refused(
      spec,
      /nodes\[2\]\.podCidr6: .*fd00:10:244:3::\/64, which is nodes\[0\] \("node-a"\)'s; pin one of them with podCidr6 \(fd00:10:244::\/64 is free\)/,
    );
    const pinned = planPodNetwork({
      ...spec,
      nodes: spec.nodes.map((n, i) => (i === 2 ? { ...n, podCidr6: "fd00:10:244::/64" } : n)),
    });
    assert.deepEqual(
      pinned.nodes.map((n) => n.podCidr6),
      ["fd00:10:244:3::/64", "fd00:10:244:2::/64", "fd00:10:244::/64"],
    );
  });
});
