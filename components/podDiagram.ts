import type { PodNetworkPlan } from "./podPlan";

// The same escaping as diagram.ts: ids of letters, digits and underscores; labels without double quotes.
const id = (prefix: string, name: string) =>
  `${prefix}_${name.replace(/[^A-Za-z0-9]/g, (c) => `_${c.charCodeAt(0).toString(16).padStart(2, "0")}`)}`;
const label = (text: string) => `"${text.replace(/"/g, "'")}"`;

/** A Mermaid flowchart of a pod network: per node its bridge and pods, and the routes (or the VXLAN overlay) between the nodes. */
export function podDiagramOf(plan: PodNetworkPlan): string {
  const lines = ["flowchart LR"];
  // Dual stack: each label gains its IPv6 line.
  const and6 = (v6: string | undefined) => (v6 ? `<br/>${v6}` : "");
  for (const node of plan.nodes) {
    const bridge = id("br", node.name);
    lines.push(
      `  subgraph ${id("node", node.name)}[${label(`node ${node.name} ${node.nodeAddress}${node.nodeAddress6 ? ` ${node.nodeAddress6}` : ""}<br/>pods ${node.podCidr}${node.podCidr6 ? ` ${node.podCidr6}` : ""}`)}]`,
    );
    lines.push(`    ${bridge}[${label(`bridge ${plan.bridge}<br/>${node.bridgeCidr}${and6(node.bridgeCidr6)}`)}]`);
    for (const pod of node.pods) {
      const p = id("pod", pod.name);
      lines.push(`    ${p}([${label(`pod ${pod.name}<br/>${pod.cidr}${and6(pod.cidr6)}`)}])`);
      lines.push(`    ${p} --- ${bridge}`);
    }
    if (node.vxlan) {
      lines.push(
        `    ${id("vx", node.name)}[${label(`${node.vxlan.name} VNI ${node.vxlan.vni}<br/>MTU ${node.vxlan.mtu}`)}]`,
      );
      lines.push(`    ${id("vx", node.name)} --- ${bridge}`);
    }
    if (node.masquerade)
      lines.push(
        `    ${id("nat", node.name)}{{${label(`MASQUERADE ${node.masquerade.source}<br/>not to ${node.masquerade.exceptDestination}${node.masquerade6 ? `<br/>${node.masquerade6.source}<br/>not to ${node.masquerade6.exceptDestination}` : ""}`)}}}`,
      );
    lines.push("  end");
  }
  // The overlay: one line per pair of nodes, UDP between their nodeAddresses.
  for (const [i, node] of plan.nodes.entries())
    for (const other of plan.nodes.slice(i + 1))
      if (node.vxlan && other.vxlan)
        lines.push(
          `  ${id("vx", node.name)} <-->|${label(`udp/${node.vxlan.dstPort} ${node.nodeAddress} - ${other.nodeAddress}`)}| ${id("vx", other.name)}`,
        );
  for (const node of plan.nodes)
    for (const r of node.routes)
      lines.push(`  ${id("br", node.name)} -->|${label(`${r.destination} via ${r.via}`)}| ${id("br", r.toNode)}`);
  for (const node of plan.nodes)
    for (const r of node.routes6)
      lines.push(`  ${id("br", node.name)} -->|${label(`${r.destination} via ${r.via}`)}| ${id("br", r.toNode)}`);
  return `${lines.join("\n")}\n`;
}
