import * as ipaddr from "ipaddr.js";
import { fromBig, toBig } from "../provider/kernel/cidr";
import { integerIn, ipv6Address, ipv6Network, isIpv6, show } from "../provider/validate";

/**
 * The IPv6 half of a dual-stack PodNetwork (`clusterCidr6`), as plain data,
 * laid over the IPv4 plan so that the two read alike: a node's IPv6 pod CIDR
 * is the block with the same index as its IPv4 one (10.244.147.0/24 ->
 * fd00:10:244:93::/64 in fd00:10:244::/56), and a pod's IPv6 address has its
 * IPv4 address's offset in the block (10.244.147.33 -> fd00:10:244:93::21).
 * Both are then as stable as the IPv4 side (a node's name, a pod's name) and
 * unique where it is. Where clusterCidr6 has fewer blocks than clusterCidr,
 * the index wraps; two nodes that then meet are refused, naming podCidr6 to
 * pin one of them (as the IPv4 side names podCidr).
 *
 * Addresses are BigInts here; text is the kernel's spelling (RFC 5952).
 */

/** The IPv6 fields of a dual-stack PodNetwork's spec (see PodNetworkSpec). */
export interface PodIpv6Spec {
  clusterCidr6?: unknown;
  podCidrPrefix6?: unknown;
  nodes: Array<{
    name: string;
    nodeAddress6?: unknown;
    podCidr6?: unknown;
    pods: Array<{ name: string; address6?: unknown }>;
  }>;
}

/** What the IPv6 half needs of the IPv4 plan: each node's block index, each pod's offset in its block. */
export interface PodIpv4Layout {
  /** The number of addresses in an IPv4 pod CIDR (2 ** (32 - podCidrPrefix)). */
  blockSize4: number;
  nodes: Array<{ slot: number; pods: Array<{ name: string; offset: number }> }>;
}

export interface PodIpv6Plan {
  clusterCidr6: string;
  podCidrPrefix6: number;
  nodes: Array<{
    podCidr6: string;
    bridgeAddress6: string;
    nodeAddress6?: string;
    /** Pod name -> IPv6 address (without prefix). */
    addresses6: Map<string, string>;
  }>;
}

const DEFAULT_PREFIX6 = 64;

/** Why an IPv6 address cannot be a node's next hop for the other nodes (ipaddr.js range names). */
const UNUSABLE_NODE6: Record<string, string> = {
  unspecified: "is the unspecified address",
  loopback: "is the loopback address: each host has it for itself",
  multicast: "is a multicast address (ff00::/8): it names a group, not a node",
  linkLocal:
    "is link-local (fe80::/10): a route via it would need the device too; give the node's global or ULA (fd00::/8) address",
  ipv4Mapped: "is an IPv4-mapped address: give the node's IPv6 address",
};

/** The problem when an IPv6 field holds IPv4 or an IPv4 field holds IPv6: the other field is named. */
export function wrongFamily(field: string, value: unknown, ipv6Field: boolean): string | undefined {
  if (typeof value !== "string" || value === "") return undefined;
  if (ipv6Field && !isIpv6(value) && /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(value))
    return `${field}: ${show(value)} is IPv4; ${field} is IPv6 (its IPv4 twin is ${field.replace(/6$/, "")})`;
  if (!ipv6Field && isIpv6(value))
    return `${field}: ${show(value)} is IPv6; ${field} is IPv4: give it as ${field}6 (a PodNetwork is IPv4, or dual stack with clusterCidr6)`;
  return undefined;
}

/**
 * Plans the IPv6 side over the IPv4 layout; pushes problems named by field.
 * Undefined without clusterCidr6 (then any IPv6 field given is a problem) or when any problem was found.
 */
export function planPodIpv6(
  spec: PodIpv6Spec,
  mode: "routes" | "vxlan",
  layout: PodIpv4Layout,
  problems: string[],
): PodIpv6Plan | undefined {
  const before = problems.length;
  const reason = (field: string, r: string | undefined) => r && problems.push(`${field}: ${r}`);
  if (spec.clusterCidr6 === undefined) {
    const stray = (field: string, v: unknown, what: string) =>
      v !== undefined && problems.push(`${field}: ${show(v)} needs clusterCidr6 (${what})`);
    stray("podCidrPrefix6", spec.podCidrPrefix6, "the cluster's IPv6 network");
    for (const [i, node] of spec.nodes.entries()) {
      stray(`nodes[${i}].nodeAddress6`, node.nodeAddress6, "the cluster's IPv6 network");
      stray(`nodes[${i}].podCidr6`, node.podCidr6, "the cluster's IPv6 network it is a block of");
      for (const [j, pod] of node.pods.entries())
        stray(`nodes[${i}].pods[${j}].address6`, pod.address6, "the cluster's IPv6 network");
    }
    return undefined;
  }
  const family = (field: string, v: unknown) => {
    const r = wrongFamily(field, v, true);
    if (r) problems.push(r);
    return Boolean(r);
  };

  if (family("clusterCidr6", spec.clusterCidr6) || reason("clusterCidr6", ipv6Network(spec.clusterCidr6)))
    return undefined;
  const cluster = spec.clusterCidr6 as string;
  const [clusterText, clusterPrefixText] = cluster.split("/");
  const clusterPrefix = Number(clusterPrefixText);
  const range = ipaddr.IPv6.parse(clusterText).range();
  if (range !== "uniqueLocal" && range !== "unicast") {
    problems.push(
      `clusterCidr6: ${show(cluster)} is not a unique local (fd00::/8) or global unicast network (it is ${range}); use e.g. fd00:10:244::/56`,
    );
    return undefined;
  }
  const prefix6 = spec.podCidrPrefix6 ?? DEFAULT_PREFIX6;
  // Each IPv4 pod offset must fit a block: a /24 of IPv4 needs 8 bits of IPv6 host part at least.
  if (reason("podCidrPrefix6", integerIn(Math.max(clusterPrefix, 1), 120)(prefix6))) {
    problems[problems.length - 1] +=
      spec.podCidrPrefix6 === undefined
        ? ` (the default /${DEFAULT_PREFIX6} does not fit clusterCidr6 ${cluster}: give podCidrPrefix6, or a shorter clusterCidr6)`
        : ` (it must be at least clusterCidr6's /${clusterPrefix}, and /120 at most)`;
    return undefined;
  }
  const podCidrPrefix6 = prefix6 as number;
  const clusterBase = toBig(clusterText);
  const blockSize = 1n << BigInt(128 - podCidrPrefix6);
  const blocks = 1n << BigInt(podCidrPrefix6 - clusterPrefix);
  const blockCidr = (slot: bigint) => `${fromBig(clusterBase + slot * blockSize)}/${podCidrPrefix6}`;
  // Every IPv4 offset must fit, not only today's pods': a pod added later must not be refused for it.
  if (blockSize < BigInt(layout.blockSize4)) {
    problems.push(
      `podCidrPrefix6: a /${podCidrPrefix6} is smaller than the IPv4 pod CIDRs (${layout.blockSize4} addresses), whose pod addresses it mirrors; use a shorter podCidrPrefix6`,
    );
    return undefined;
  }
  const inCluster = (n: bigint) => n >= clusterBase && n < clusterBase + blocks * blockSize;

  // Blocks: pinned first, then the IPv4 block's index (wrapped).
  const slotOwner = new Map<bigint, string>();
  const slots = new Map<number, bigint>();
  for (const [i, node] of spec.nodes.entries()) {
    const field = `nodes[${i}].podCidr6`;
    if (node.podCidr6 === undefined || family(field, node.podCidr6) || reason(field, ipv6Network(node.podCidr6)))
      continue;
    const [base, prefix] = (node.podCidr6 as string).split("/");
    if (Number(prefix) !== podCidrPrefix6 || !inCluster(toBig(base))) {
      problems.push(`${field}: ${show(node.podCidr6)} is not a /${podCidrPrefix6} block of clusterCidr6 ${cluster}`);
      continue;
    }
    const slot = (toBig(base) - clusterBase) / blockSize;
    if (slotOwner.has(slot)) problems.push(`${field}: ${show(node.podCidr6)} is also ${slotOwner.get(slot)}'s`);
    else slotOwner.set(slot, `nodes[${i}] (${show(node.name)})`);
    slots.set(i, slot);
  }
  for (const [i, node] of spec.nodes.entries()) {
    if (slots.has(i) || node.podCidr6 !== undefined) continue;
    const slot = BigInt(layout.nodes[i].slot) % blocks;
    const owner = slotOwner.get(slot);
    if (owner) {
      let free: bigint | undefined;
      for (let s = 0n; s < blocks && s < 1n << 20n && free === undefined; s++) if (!slotOwner.has(s)) free = s;
      problems.push(
        `nodes[${i}].podCidr6: node ${show(node.name)}'s IPv6 pod CIDR would be ${blockCidr(slot)}, which is ${owner}'s; pin one of them with podCidr6${free !== undefined ? ` (${blockCidr(free)} is free)` : ""}, or use a larger clusterCidr6`,
      );
      continue;
    }
    slotOwner.set(slot, `nodes[${i}] (${show(node.name)})`);
    slots.set(i, slot);
  }

  // Node addresses: the next hop of the other nodes' routes to this node's pods (mode routes).
  const nodeAddresses = new Map<string, string>();
  for (const [i, node] of spec.nodes.entries()) {
    const field = `nodes[${i}].nodeAddress6`;
    if (node.nodeAddress6 === undefined) {
      if (mode === "routes")
        problems.push(
          `${field}: mode "routes" with clusterCidr6 needs each node's IPv6 address on the network the nodes share (the other nodes route its IPv6 pods via it); or use mode "vxlan", whose overlay carries IPv6 over nodeAddress`,
        );
      continue;
    }
    if (family(field, node.nodeAddress6) || reason(field, ipv6Address(node.nodeAddress6))) continue;
    const address = node.nodeAddress6 as string;
    const why = UNUSABLE_NODE6[ipaddr.IPv6.parse(address).range()];
    if (why) problems.push(`${field}: ${show(address)} ${why}`);
    else if (inCluster(toBig(address)))
      problems.push(
        `${field}: ${show(address)} is inside clusterCidr6 ${cluster}: the network the nodes share must not overlap the pods'; use another clusterCidr6`,
      );
    else if (nodeAddresses.has(address))
      problems.push(`${field}: ${show(address)} is also ${nodeAddresses.get(address)}'s`);
    else nodeAddresses.set(address, `nodes[${i}]`);
  }
  if (problems.length > before) return undefined;

  const nodes = spec.nodes.map((node, i) => {
    const base = clusterBase + (slots.get(i) as bigint) * blockSize;
    const bridge = base + 1n;
    const last = base + blockSize - 1n;
    const taken = new Map<bigint, string>([
      [base, "the block's subnet-router anycast address"],
      [bridge, "the bridge's address"],
    ]);
    const chosen = new Map<string, bigint>();
    for (const [j, pod] of node.pods.entries()) {
      const field = `nodes[${i}].pods[${j}].address6`;
      if (pod.address6 === undefined || family(field, pod.address6) || reason(field, ipv6Address(pod.address6)))
        continue;
      const n = toBig(pod.address6 as string);
      if (n < base || n > last)
        problems.push(
          `${field}: ${show(pod.address6)} is not in node ${show(node.name)}'s IPv6 pod CIDR ${blockCidr(slots.get(i) as bigint)}`,
        );
      else if (taken.has(n)) problems.push(`${field}: ${show(pod.address6)} is already ${taken.get(n)}`);
      else {
        taken.set(n, `pod ${show(pod.name)}'s address6`);
        chosen.set(pod.name, n);
      }
    }
    // The others mirror their IPv4 offset, probing upward past a pinned address6 (in name order, as IPv4).
    const offsets = new Map(layout.nodes[i].pods.map((p) => [p.name, p.offset]));
    const wanting = node.pods
      .filter((p) => p.address6 === undefined)
      .map((p) => p.name)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const name of wanting) {
      let n = base + BigInt(offsets.get(name) ?? 2);
      while (taken.has(n)) n = n === last ? base + 2n : n + 1n;
      taken.set(n, `pod ${show(name)}'s address6`);
      chosen.set(name, n);
    }
    return {
      podCidr6: blockCidr(slots.get(i) as bigint),
      bridgeAddress6: fromBig(bridge),
      ...(node.nodeAddress6 !== undefined ? { nodeAddress6: node.nodeAddress6 as string } : {}),
      addresses6: new Map([...chosen].map(([name, n]) => [name, fromBig(n)])),
    };
  });
  if (problems.length > before) return undefined;
  return { clusterCidr6: cluster, podCidrPrefix6, nodes };
}
