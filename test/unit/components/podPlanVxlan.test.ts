import { strict as assert } from "node:assert";
import { podDiagramOf } from "../../../components/podDiagram";
import { type PodNetworkSpec, PodPlanError, planPodNetwork } from "../../../components/podPlan";

const THREE: PodNetworkSpec = {
  clusterCidr: "10.244.0.0/16",
  mode: "vxlan",
  nodes: [
    { name: "node-a", nodeAddress: "192.0.2.1", pods: [{ name: "web" }] },
    { name: "node-b", nodeAddress: "192.0.2.2", pods: [{ name: "db" }] },
    { name: "node-c", nodeAddress: "198.51.100.3", pods: [] },
  ],
};

describe("planPodNetwork mode vxlan (pure data)", () => {
  it("plans a VXLAN port on each node's bridge, unicast to the other nodes; no node routes", () => {
    const plan = planPodNetwork(THREE);
    assert.equal(plan.mode, "vxlan");
    const [a, b, c] = plan.nodes;
    assert.deepEqual(a.routes, []);
    assert.deepEqual(b.routes, []);
    assert.deepEqual(a.vxlan, {
      name: "vxlan0",
      vni: 1,
      dstPort: 4789,
      local: "192.0.2.1",
      remotes: ["192.0.2.2", "198.51.100.3"],
      mtu: 1450,
    });
    assert.deepEqual(c.vxlan?.remotes, ["192.0.2.1", "192.0.2.2"]);
  });

  it("the bridge's address covers clusterCidr (its connected route reaches every pod over the overlay); pods' MTU leaves room for the 50-byte header", () => {
    const [a] = planPodNetwork(THREE).nodes;
    assert.equal(a.bridgeAddress, "10.244.147.1");
    assert.equal(a.bridgeCidr, "10.244.147.1/16");
    assert.equal(a.pods[0].cidr, `${a.pods[0].address}/24`, "a pod keeps its node's /24");
    assert.equal(a.podMtu, 1450);
  });

  it("routes mode is as before: no vxlan, no pod MTU, the bridge on the pod CIDR's prefix", () => {
    const [a] = planPodNetwork({ ...THREE, mode: "routes" }).nodes;
    assert.equal(a.vxlan, undefined);
    assert.equal(a.podMtu, undefined);
    assert.equal(a.bridgeCidr, "10.244.147.1/24");
    assert.equal(a.routes.length, 2);
  });

  it("refuses a bridge named like the VXLAN device, and an unknown mode, naming the field", () => {
    assert.throws(
      () => planPodNetwork({ ...THREE, bridge: "vxlan0" }),
      (e: unknown) =>
        e instanceof PodPlanError && e.problems.some((p) => /^bridge: "vxlan0" is the VXLAN device's name/.test(p)),
    );
    assert.throws(
      () => planPodNetwork({ ...THREE, mode: "geneve" as never }),
      (e: unknown) =>
        e instanceof PodPlanError && e.problems.some((p) => /^mode: "geneve" must be one of routes, vxlan/.test(p)),
    );
  });

  it("the diagram shows the overlay between the nodes instead of routes", () => {
    const text = podDiagramOf(planPodNetwork(THREE));
    assert.match(text, /vxlan0 VNI 1/);
    assert.doesNotMatch(text, / via /);
  });
});
