import * as ipaddr from "ipaddr.js";
import { fromBig, toBig } from "../provider/kernel/cidr";
import { integerIn, ipv6Address, ipv6Network, isIpv6, show } from "../provider/validate";
import { fnv1a } from "./plan";
import { notUnicastNetwork } from "./plan6";

/**
 * The IPv6 half of a dual-stack PodNetwork (`clusterCidr6`), as plain data,
 * laid over the IPv4 plan so that the two read alike: a node's IPv6 pod CIDR
 * is the block with the same index as its IPv4 one (10.244.147.0/24 ->
 * fd00:10:244:93::/64 in fd00:10:244::/56). Where clusterCidr6 has fewer
 * blocks than clusterCidr, the index wraps; two nodes that then meet are
 * refused, naming podCidr6 to pin one of them (as the IPv4 side names podCidr).
 *
 * A pod's IPv6 address is derived from its name alone: the block's `::2` plus
 * the name's 32-bit FNV-1a (modulo the block's room). Two pods that meet are
 * refused, naming address6 to pin one of them, never moved: a moved address
 * is one the pod that keeps it must take over from a pod still there, which
 * the same `up` deletes only afterwards, and IPv6 duplicate address detection
 * then fails it for good (an attacker's trial: removing a pod left the stack
 * unable to converge). The IPv4 side probes past a meeting instead (its /24
 * has too little room to refuse; IPv4 has no duplicate address detection).
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

/** What the IPv6 half needs of the IPv4 plan: each node's block index. */
export interface PodIpv4Layout {
  nodes: Array<{ slot: number }>;
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

/**
 * Why an IPv6 address cannot be a node's next hop for the other nodes (ipaddr.js range names); the
 * unspecified, loopback, multicast and IPv4-mapped ones ipv6Address refuses first.
 */
const UNUSABLE_NODE6: Record<string, string> = {
  linkLocal:
    "is link-local (fe80::/10): a route via it would need the device too; give the node's global or ULA (fd00::/8) address",
  rfc6052: "is a NAT64 address (64:ff9b::/96), an IPv4 host's: give the node's own IPv6 address",
  "6to4": "is a 6to4 address (2002::/16), a tunnel's: give the node's address on the network the nodes share",
  teredo: "is a Teredo address (2001::/32), a tunnel's: give the node's address on the network the nodes share",
  deprecatedSiteLocal: "is a site-local address (fec0::/10, deprecated): give a global or ULA (fd00::/8) address",
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

  if (family("clusterCidr6", spec.clusterCidr6)) return undefined;
  // "::/0" and the like: ipv6Network would speak of an interface's address.
  const fromUnspecified = typeof spec.clusterCidr6 === "string" && /^::\/\d+$/.test(spec.clusterCidr6);
  if (
    reason(
      "clusterCidr6",
      fromUnspecified
        ? `${show(spec.clusterCidr6)} starts at the unspecified address ::, not a unique local (fd00::/8) or global unicast network; use e.g. fd00:10:244::/56`
        : ipv6Network(spec.clusterCidr6),
    )
  )
    return undefined;
  const cluster = spec.clusterCidr6 as string;
  const [clusterText, clusterPrefixText] = cluster.split("/");
  const clusterPrefix = Number(clusterPrefixText);
  const problem = notUnicastNetwork(cluster);
  if (problem) {
    problems.push(`clusterCidr6: ${problem}; use e.g. fd00:10:244::/56`);
    return undefined;
  }
  if (clusterPrefix > 120) {
    problems.push(
      `clusterCidr6: ${show(cluster)} is smaller than one pod CIDR can be (/120 at most, room for a bridge and 254 pods); use /120 or a shorter prefix`,
    );
    return undefined;
  }
  const prefix6 = spec.podCidrPrefix6 ?? DEFAULT_PREFIX6;
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
  if (BigInt(spec.nodes.length) > blocks) {
    problems.push(
      `nodes: clusterCidr6 ${cluster} holds ${blocks} IPv6 pod CIDRs of /${podCidrPrefix6} for ${spec.nodes.length} nodes; use a larger clusterCidr6 or a longer podCidrPrefix6`,
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
      problems.push(
        `${field}: ${show(address)} is also ${nodeAddresses.get(address)}'s; each node has its own address`,
      );
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
    const cidr = blockCidr(slots.get(i) as bigint);
    // Derived addresses: ::2 on, 32 bits' worth of the block at most (all of it when smaller).
    const room = blockSize - 2n < 1n << 32n ? blockSize - 2n : 1n << 32n;
    for (const [j, pod] of node.pods.entries()) {
      const field = `nodes[${i}].pods[${j}].address6`;
      if (pod.address6 === undefined || family(field, pod.address6) || reason(field, ipv6Address(pod.address6)))
        continue;
      const n = toBig(pod.address6 as string);
      if (n < base || n > last)
        problems.push(
          `${field}: ${show(pod.address6)} is not in node ${show(node.name)}'s IPv6 pod CIDR ${cidr}; give one of ${fromBig(base + 2n)}-${fromBig(last)}, or leave address6 out to derive it from the pod's name`,
        );
      else if (taken.has(n))
        problems.push(
          `${field}: ${show(pod.address6)} is already ${taken.get(n)}; give another, or leave address6 out to derive it from the pod's name`,
        );
      else {
        taken.set(n, `pod ${show(pod.name)}'s address6 (nodes[${i}].pods[${j}])`);
        chosen.set(pod.name, n);
      }
    }
    for (const [j, pod] of node.pods.entries()) {
      if (pod.address6 !== undefined) continue;
      const n = base + 2n + (BigInt(fnv1a(pod.name)) % room);
      const other = taken.get(n);
      if (other) {
        problems.push(
          `nodes[${i}].pods[${j}].address6: pod ${show(pod.name)}'s IPv6 address derived from its name, ${fromBig(n)}, is already ${other}; pin one of them with address6 (any other of ${fromBig(base + 2n)}-${fromBig(last)})`,
        );
        continue;
      }
      taken.set(n, `pod ${show(pod.name)}'s address6 (derived from its name, nodes[${i}].pods[${j}])`);
      chosen.set(pod.name, n);
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
