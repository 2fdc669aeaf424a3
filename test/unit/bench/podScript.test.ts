import { strict as assert } from "node:assert";
import { planPodNetwork } from "../../../components/podPlan";
import { podBenchSpec, podDownScript, podUpScript } from "../../../test/bench/podScript";
import { commandCount } from "../../../test/bench/script";

// Two nodes of one pod each: small enough to read the whole script.
const plan = planPodNetwork(podBenchSpec(1, ["192.0.2.1", "192.0.2.2"]));

describe("the bench's hand-written PodNetwork scripts (test/bench/podScript)", () => {
  it("names nodes and pods so that pod names are unique across the cluster, one node per address", () => {
    const spec = podBenchSpec(2, ["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
    assert.equal(spec.mode, "routes");
    assert.deepEqual(
      spec.nodes.map((n) => [n.name, n.nodeAddress, n.pods.map((p) => p.name)]),
      [
        ["node-1", "192.0.2.1", ["pod-1-01", "pod-1-02"]],
        ["node-2", "192.0.2.2", ["pod-2-01", "pod-2-02"]],
        ["node-3", "192.0.2.3", ["pod-3-01", "pod-3-02"]],
      ],
    );
  });

  it("builds node 1 of a 1-pod plan as the component does: bridge, its FORWARD accepts, the pod, the route to node 2, NAT", () => {
    const [a, b] = plan.nodes;
    const [pod] = a.pods;
    assert.equal(
      podUpScript(plan, 0),
      [
        "set -e",
        "ip link add v-net-0 type bridge",
        `ip addr add ${a.bridgeCidr} dev v-net-0`,
        "ip link set v-net-0 up",
        "iptables -w -I FORWARD -i v-net-0 -o v-net-0 -j ACCEPT",
        "iptables -w -I FORWARD -s 10.244.0.0/16 -o v-net-0 -j ACCEPT",
        "ip netns add pod-1-01",
        "ip -n pod-1-01 link set lo up",
        `ip link add ${pod.vethName} type veth peer name ${pod.bridgePortName}`,
        `ip link set ${pod.vethName} netns pod-1-01`,
        `ip link set ${pod.bridgePortName} master v-net-0`,
        `ip -n pod-1-01 addr add ${pod.cidr} dev ${pod.vethName}`,
        `ip -n pod-1-01 link set ${pod.vethName} up`,
        `ip link set ${pod.bridgePortName} up`,
        `ip -n pod-1-01 route add default via ${a.bridgeAddress}`,
        `ip route add ${b.podCidr} via 192.0.2.2`,
        "iptables -w -t nat -A POSTROUTING -s 10.244.0.0/16 ! -d 10.244.0.0/16 -j MASQUERADE",
        "iptables -w -I FORWARD -i v-net-0 -s 10.244.0.0/16 -j ACCEPT",
        "iptables -w -I FORWARD -o v-net-0 -d 10.244.0.0/16 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "sysctl -qw net.ipv4.ip_forward=1",
        "",
      ].join("\n"),
    );
    assert.equal(commandCount(podUpScript(plan, 0)), 19);
  });

  it("tears node 2 down: pods, bridge, the route to node 1, every rule, ip_forward as it was, the empty nat table", () => {
    const [a] = plan.nodes;
    assert.equal(
      podDownScript(plan, 1, "0"),
      [
        "set -e",
        "ip netns del pod-2-01",
        "ip link del v-net-0",
        `ip route del ${a.podCidr} via 192.0.2.1`,
        "iptables -w -D FORWARD -i v-net-0 -o v-net-0 -j ACCEPT",
        "iptables -w -D FORWARD -s 10.244.0.0/16 -o v-net-0 -j ACCEPT",
        "iptables -w -t nat -D POSTROUTING -s 10.244.0.0/16 ! -d 10.244.0.0/16 -j MASQUERADE",
        "iptables -w -D FORWARD -i v-net-0 -s 10.244.0.0/16 -j ACCEPT",
        "iptables -w -D FORWARD -o v-net-0 -d 10.244.0.0/16 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "sysctl -qw net.ipv4.ip_forward=0",
        "nft delete table ip nat 2>/dev/null || true",
        "",
      ].join("\n"),
    );
  });

  it("has 9 commands per pod and 11 more per node (two node routes) at 50 pods on 3 nodes (the figure BENCHMARKS.md gives)", () => {
    const big = planPodNetwork(podBenchSpec(50, ["192.0.2.1", "192.0.2.2", "192.0.2.3"]));
    assert.deepEqual(
      big.nodes.map((_, i) => commandCount(podUpScript(big, i))),
      [461, 461, 461],
    );
  });
});
