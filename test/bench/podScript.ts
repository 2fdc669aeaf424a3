import type { PodNetworkPlan, PodNetworkSpec } from "../../components/podPlan";

/**
 * The bench's PodNetwork (mode "routes", the default): `podsPerNode` pods on
 * each node, node i+1 at nodeAddresses[i]. Names are unique across the cluster
 * ("pod-<node>-<nn>"), as the planner requires.
 */
export function podBenchSpec(podsPerNode: number, nodeAddresses: string[]): PodNetworkSpec {
  return {
    clusterCidr: "10.244.0.0/16",
    mode: "routes",
    nodes: nodeAddresses.map((nodeAddress, i) => ({
      name: `node-${i + 1}`,
      nodeAddress,
      pods: Array.from({ length: podsPerNode }, (_, j) => ({ name: `pod-${i + 1}-${String(j + 1).padStart(2, "0")}` })),
    })),
  };
}

/**
 * The iptables rules PodNetwork makes on a node, without the owner comments:
 * the Bridge's (bridge to bridge, and new traffic from the cluster into the
 * bridge) and the MasqueradeRule's (NAT out of the cluster, FORWARD accepts for
 * the pods' traffic and its replies). Same specs as provider/impl/bridge.ts
 * and masqueradeRule.ts, so the script does what the component does.
 */
function rulesOf(plan: PodNetworkPlan): Array<{ table?: "nat"; chain: string; insert: boolean; spec: string }> {
  const br = plan.bridge;
  const cluster = plan.clusterCidr;
  return [
    { chain: "FORWARD", insert: true, spec: `-i ${br} -o ${br} -j ACCEPT` },
    { chain: "FORWARD", insert: true, spec: `-s ${cluster} -o ${br} -j ACCEPT` },
    { table: "nat", chain: "POSTROUTING", insert: false, spec: `-s ${cluster} ! -d ${cluster} -j MASQUERADE` },
    { chain: "FORWARD", insert: true, spec: `-i ${br} -s ${cluster} -j ACCEPT` },
    {
      chain: "FORWARD",
      insert: true,
      spec: `-o ${br} -d ${cluster} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    },
  ];
}

const iptables = (r: ReturnType<typeof rulesOf>[number], verb: string) =>
  `iptables -w ${r.table ? `-t ${r.table} ` : ""}${verb} ${r.chain} ${r.spec}`;

/**
 * The hand-written equivalent of node `i` of a PodNetwork (mode "routes",
 * outboundNat): what one would type on that node, one command per line, sent
 * over one SSH session. Names and addresses come from the component's plan.
 */
export function podUpScript(plan: PodNetworkPlan, i: number): string {
  if (plan.mode !== "routes" || !plan.outboundNat) throw new Error("podUpScript: only mode routes with outboundNat");
  const node = plan.nodes[i];
  const br = plan.bridge;
  const [bridgeRules, natRules] = [rulesOf(plan).slice(0, 2), rulesOf(plan).slice(2)];
  const lines = [
    "set -e",
    `ip link add ${br} type bridge`,
    `ip addr add ${node.bridgeCidr} dev ${br}`,
    `ip link set ${br} up`,
    ...bridgeRules.map((r) => iptables(r, r.insert ? "-I" : "-A")),
  ];
  for (const pod of node.pods)
    lines.push(
      `ip netns add ${pod.name}`,
      `ip -n ${pod.name} link set lo up`,
      `ip link add ${pod.vethName} type veth peer name ${pod.bridgePortName}`,
      `ip link set ${pod.vethName} netns ${pod.name}`,
      `ip link set ${pod.bridgePortName} master ${br}`,
      `ip -n ${pod.name} addr add ${pod.cidr} dev ${pod.vethName}`,
      `ip -n ${pod.name} link set ${pod.vethName} up`,
      `ip link set ${pod.bridgePortName} up`,
      `ip -n ${pod.name} route add ${node.podRouteDestination} via ${node.bridgeAddress}`,
    );
  for (const r of node.routes) lines.push(`ip route add ${r.destination} via ${r.via}`);
  lines.push(...natRules.map((r) => iptables(r, r.insert ? "-I" : "-A")), "sysctl -qw net.ipv4.ip_forward=1");
  return `${lines.join("\n")}\n`;
}

/**
 * Node `i`'s teardown: deleting a pod's namespace deletes its veth, and with it
 * the peer on the bridge; the node routes and the rules go one by one.
 * `ipForwardBefore` is what the node had before the up script.
 */
export function podDownScript(plan: PodNetworkPlan, i: number, ipForwardBefore: string): string {
  const node = plan.nodes[i];
  const lines = ["set -e", ...node.pods.map((pod) => `ip netns del ${pod.name}`), `ip link del ${plan.bridge}`];
  for (const r of node.routes) lines.push(`ip route del ${r.destination} via ${r.via}`);
  lines.push(
    ...rulesOf(plan).map((r) => iptables(r, "-D")),
    `sysctl -qw net.ipv4.ip_forward=${Number(ipForwardBefore)}`,
    // iptables-nft leaves an empty nat table behind; the component removes it too.
    "nft delete table ip nat 2>/dev/null || true",
  );
  return `${lines.join("\n")}\n`;
}
