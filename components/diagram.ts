import type { NetworkPlan } from "./plan";

/**
 * Mermaid node ids: letters, digits and underscores only. Other characters are
 * escaped (`-` -> `_2d`), so "a-b", "a.b" and "a_b" stay three nodes.
 */
const id = (prefix: string, name: string) =>
  `${prefix}_${name.replace(/[^A-Za-z0-9]/g, (c) => `_${c.charCodeAt(0).toString(16).padStart(2, "0")}`)}`;
/** Mermaid labels in double quotes: no double quotes inside. */
const label = (text: string) => `"${text.replace(/"/g, "'")}"`;

/** A Mermaid flowchart of the plan: host, bridge, namespaces with addresses, NAT and port forwards. */
export function diagramOf(plan: NetworkPlan, hostLabel = "host"): string {
  const lines = ["flowchart LR"];
  const bridge = id("br", plan.bridge);
  lines.push(`  subgraph ${id("host", "main")}[${label(hostLabel)}]`);
  const v6 = (text: string | undefined) => (text ? `<br/>${text}` : "");
  lines.push(`    ${bridge}[${label(`bridge ${plan.bridge}<br/>${plan.gatewayCidr}${v6(plan.gateway6Cidr)}`)}]`);
  if (plan.outboundNat)
    lines.push(
      `    nat{{${label(`MASQUERADE ${plan.subnet}${v6(plan.subnet6)}<br/>ip_forward=1${plan.subnet6 ? ", IPv6 forwarding=1" : ""}`)}}}`,
    );
  lines.push("  end");
  for (const ns of plan.namespaces) {
    const node = id("ns", ns.name);
    lines.push(`  ${node}([${label(`netns ${ns.name}<br/>${ns.vethName} ${ns.cidr}${v6(ns.cidr6)}`)}])`);
    lines.push(`  ${node} ---|${label(ns.bridgePortName)}| ${bridge}`);
  }
  if (plan.outboundNat || plan.portForwards.length) lines.push(`  lan((${label("LAN / internet")}))`);
  if (plan.outboundNat) lines.push(`  ${bridge} --> nat --> lan`);
  for (const pf of plan.portForwards)
    lines.push(
      `  lan -.->|${label(`${pf.protocol} :${pf.hostPort} to ${pf.toAddress}:${pf.port}${pf.toAddress6 ? ` and [${pf.toAddress6}]:${pf.port}` : ""}`)}| ${id("ns", pf.namespace)}`,
    );
  return `${lines.join("\n")}\n`;
}
