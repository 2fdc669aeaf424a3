import type { NetworkPlan } from "../../components/plan";

/**
 * The hand-written equivalent of an IsolatedNetwork: what someone following
 * the lesson would type, one `ip`/`iptables` command per line, `set -e` so a
 * failure stops it. Names and addresses come from the same plan the component
 * uses, so both build exactly the same network.
 */
export function upScript(plan: NetworkPlan): string {
  const br = plan.bridge;
  const lines = [
    "set -e",
    `ip link add ${br} type bridge`,
    `ip addr add ${plan.gatewayCidr} dev ${br}`,
    `ip link set ${br} up`,
  ];
  for (const ns of plan.namespaces) {
    lines.push(
      `ip netns add ${ns.name}`,
      `ip -n ${ns.name} link set lo up`,
      `ip link add ${ns.vethName} type veth peer name ${ns.bridgePortName}`,
      `ip link set ${ns.vethName} netns ${ns.name}`,
      `ip link set ${ns.bridgePortName} master ${br}`,
      `ip -n ${ns.name} addr add ${ns.cidr} dev ${ns.vethName}`,
      `ip -n ${ns.name} link set ${ns.vethName} up`,
      `ip link set ${ns.bridgePortName} up`,
      `ip -n ${ns.name} route add default via ${plan.gateway}`,
    );
  }
  lines.push(
    `iptables -t nat -A POSTROUTING -s ${plan.subnet} ! -o ${br} -j MASQUERADE`,
    "sysctl -qw net.ipv4.ip_forward=1",
  );
  return `${lines.join("\n")}\n`;
}

/**
 * The teardown: deleting a namespace deletes the veth end in it, and with it
 * the peer on the bridge. `ipForwardBefore` is what the host had before the
 * up script (the component also puts back the value it found).
 */
export function downScript(plan: NetworkPlan, ipForwardBefore: string): string {
  const lines = ["set -e"];
  for (const ns of plan.namespaces) lines.push(`ip netns del ${ns.name}`);
  lines.push(
    `ip link del ${plan.bridge}`,
    `iptables -t nat -D POSTROUTING -s ${plan.subnet} ! -o ${plan.bridge} -j MASQUERADE`,
    `sysctl -qw net.ipv4.ip_forward=${Number(ipForwardBefore)}`,
    // iptables-nft leaves an empty nat table behind; the component removes it too.
    "nft delete table ip nat 2>/dev/null || true",
  );
  return `${lines.join("\n")}\n`;
}

/** Lines that run a command (what a per-line transport would send). */
export function commandCount(script: string): number {
  return script.split("\n").filter((l) => l.trim() && l !== "set -e").length;
}
