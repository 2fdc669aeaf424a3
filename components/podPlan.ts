import { ResourceError } from "@pulumi/pulumi/errors";
import * as ipaddr from "ipaddr.js";
import { toAddress, toNumber } from "../provider/kernel/cidr";
import { VXLAN_OVERHEAD, VXLAN_PORT } from "../provider/kernel/vxlan";
import { integerIn, interfaceName, ipv4Address, ipv4Network, namespaceName, oneOf, show } from "../provider/validate";
import { fitName, fnv1a, unknownKeys } from "./plan";
import { planPodIpv6, wrongFamily } from "./podPlan6";

/**
 * A PodNetwork as plain data: which pod CIDR each node gets, each pod's
 * address, the routes between the nodes and the NAT for traffic leaving the
 * cluster, decided before any resource exists (as containerlab resolves its
 * raw spec into concrete links first).
 *
 * Pod CIDRs are derived from the node's name alone (FNV-1a of the name, modulo
 * the number of /podCidrPrefix blocks in clusterCidr), never from its place in
 * the list or from the other nodes: adding or removing a node never moves
 * another node's CIDR (moving it would replace every pod on that node). Two
 * names that land on one block are refused, naming both and a free block to
 * pin one of them to with `podCidr`, rather than probing to the next block,
 * which would move a node when the one it collided with goes away.
 *
 * Pod addresses not given are derived like IsolatedNetwork's: a hash of the
 * pod's name inside its node's pod CIDR, probing upward in name order.
 */
export interface PodNetworkSpec {
  /** e.g. "10.244.0.0/16": every node's pod CIDR is a block of it. */
  clusterCidr: string;
  /** The size of each node's block (default 24). */
  podCidrPrefix?: number;
  /**
   * "routes" (default): each node routes the others' pod CIDRs via their nodeAddress (the nodes share a link).
   * "vxlan": an overlay instead, a VXLAN port on every node's bridge with the other nodes as unicast peers.
   */
  mode?: "routes" | "vxlan";
  /** The bridge on every node (default "v-net-0"). */
  bridge?: string;
  /** MASQUERADE for pod traffic leaving clusterCidr, and a default route in each pod (default true). */
  outboundNat?: boolean;
  /**
   * Dual stack: the cluster's IPv6 network besides clusterCidr, e.g. "fd00:10:244::/56" (unique local or
   * global). Every node then gets an IPv6 pod CIDR (a /podCidrPrefix6 block, the one with its IPv4 block's
   * index), every pod an IPv6 address (derived from its name alone: see podPlan6), and everything IPv4 has
   * gets its IPv6 twin: bridge address, pod routes, node routes (mode "routes": via nodeAddress6),
   * forwarding and, with outboundNat, IPv6 masquerade.
   */
  clusterCidr6?: string;
  /** The size of each node's IPv6 block (default 64). */
  podCidrPrefix6?: number;
  nodes: Array<{
    name: string;
    /** The node's address on the network the nodes share. */
    nodeAddress: string;
    /** Dual stack, mode "routes": the node's IPv6 address on that network, the next hop to its IPv6 pods. */
    nodeAddress6?: string;
    /** Pins the node's pod CIDR (a /podCidrPrefix block of clusterCidr) instead of deriving it from the name. */
    podCidr?: string;
    /** Dual stack: pins the node's IPv6 pod CIDR (a /podCidrPrefix6 block of clusterCidr6). */
    podCidr6?: string;
    /** Each pod is a namespace on that node; names are unique across the cluster. */
    pods: Array<{ name: string; address?: string; address6?: string }>;
  }>;
}

export interface PodPlan {
  name: string;
  /** e.g. "10.244.3.17". */
  address: string;
  /** With the pod CIDR's prefix, e.g. "10.244.3.17/24". */
  cidr: string;
  /** Dual stack: the IPv6 address, and with the IPv6 pod CIDR's prefix. */
  address6?: string;
  cidr6?: string;
  /** The veth end inside the pod. */
  vethName: string;
  /** Its peer on the node's bridge. */
  bridgePortName: string;
}

export interface NodeRoutePlan {
  /** Another node's pod CIDR. */
  destination: string;
  /** That node's nodeAddress. */
  via: string;
  /** That node's name. */
  toNode: string;
}

/**
 * A node's end of the overlay (mode "vxlan"). The node's bridge holds it as a
 * port, so every node's bridge is one layer-2 segment, and the bridge's
 * address has clusterCidr's prefix: the kernel's connected route for it sends
 * traffic to another node's pods out of the bridge, where the overlay carries
 * the ARP and the packets. The network the nodes share carries only UDP
 * between nodeAddresses, and no route for a pod CIDR.
 */
export interface NodeVxlanPlan {
  /** The device's name, on every node. */
  name: string;
  vni: number;
  dstPort: number;
  /** This node's nodeAddress. */
  local: string;
  /** The other nodes' nodeAddresses, in the nodes' order. */
  remotes: string[];
  mtu: number;
}

export interface NodePlan {
  name: string;
  nodeAddress: string;
  podCidr: string;
  /** The bridge's address: the pod CIDR's first host, each pod's gateway. */
  bridgeAddress: string;
  bridgeCidr: string;
  pods: PodPlan[];
  /** Host routes on this node, one per other node (mode "routes"; none in mode "vxlan"). */
  routes: NodeRoutePlan[];
  /** Dual stack: the node's IPv6 pod CIDR, the bridge's IPv6 address (`::1` of it), with its prefix, and nodeAddress6. */
  podCidr6?: string;
  bridgeAddress6?: string;
  bridgeCidr6?: string;
  nodeAddress6?: string;
  /** Dual stack, mode "routes": host routes to the other nodes' IPv6 pod CIDRs via their nodeAddress6. */
  routes6: NodeRoutePlan[];
  /** Mode "vxlan": this node's VXLAN device, a port of its bridge. */
  vxlan?: NodeVxlanPlan;
  /** Mode "vxlan": the MTU of the pods' veths, leaving room for the encapsulation. */
  podMtu?: number;
  /** Where pods send what is not on their bridge: "default" with outboundNat, else clusterCidr. */
  podRouteDestination: string;
  /** With outboundNat: MASQUERADE traffic from `source` (the cluster) unless it goes to `exceptDestination` (pod to pod keeps its address). */
  masquerade?: { source: string; exceptDestination: string };
  /** Dual stack: "default6" with outboundNat, else clusterCidr6. */
  podRouteDestination6?: string;
  /** Dual stack with outboundNat: the IPv6 masquerade (clusterCidr6, not to clusterCidr6). */
  masquerade6?: { source: string; exceptDestination: string };
}

export interface PodNetworkPlan {
  clusterCidr: string;
  podCidrPrefix: number;
  mode: "routes" | "vxlan";
  bridge: string;
  outboundNat: boolean;
  /** Dual stack: clusterCidr6 and podCidrPrefix6. */
  clusterCidr6?: string;
  podCidrPrefix6?: number;
  nodes: NodePlan[];
}

/** Mode "vxlan": the device on every node, its VNI (as flannel's) and port (IANA's). */
const VXLAN_DEVICE = "vxlan0";
const VXLAN_VNI = 1;
/**
 * The overlay's MTU: a 1500-byte underlay less the 50 bytes VXLAN adds
 * (kernel/vxlan VXLAN_OVERHEAD). It is the pods' MTU too, set on their veths:
 * a bridge drops a frame too big for the port it leaves by, without telling
 * anyone (no ICMP), so the limit must be known where packets are made, where
 * the pods' TCP then sizes its segments to fit (as flannel sets the pods' MTU
 * to its VXLAN device's).
 */
const VXLAN_MTU = 1500 - VXLAN_OVERHEAD;

/** A refused spec; a ResourceError with its stack hidden, as PlanError (see there). */
export class PodPlanError extends ResourceError {
  constructor(readonly problems: string[]) {
    super(`PodNetwork: ${problems.join("; ")}`, undefined, true);
    this.name = "PodPlanError";
  }
}

// Code-unit order, not localeCompare: the order must not depend on the user's locale.
const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

const SPEC_FIELDS: Record<keyof PodNetworkSpec, true> = {
  clusterCidr: true,
  podCidrPrefix: true,
  mode: true,
  bridge: true,
  outboundNat: true,
  clusterCidr6: true,
  podCidrPrefix6: true,
  nodes: true,
};
// `connection` is PodNetwork's own, beside the plain data.
const NODE_FIELDS: Record<keyof PodNetworkSpec["nodes"][number] | "connection", true> = {
  name: true,
  nodeAddress: true,
  nodeAddress6: true,
  podCidr: true,
  podCidr6: true,
  pods: true,
  connection: true,
};
const POD_FIELDS: Record<keyof PodNetworkSpec["nodes"][number]["pods"][number], true> = {
  name: true,
  address: true,
  address6: true,
};

function unknownFields(spec: PodNetworkSpec): string[] {
  const problems: string[] = [];
  const scan = (value: unknown, fields: object, at: string) => problems.push(...unknownKeys(value, fields, at));
  scan(spec, SPEC_FIELDS, "");
  const list = (value: unknown) => (Array.isArray(value) ? value : []);
  for (const [i, node] of list(spec.nodes).entries()) {
    scan(node, NODE_FIELDS, `nodes[${i}].`);
    for (const [j, pod] of list(node?.pods).entries()) scan(pod, POD_FIELDS, `nodes[${i}].pods[${j}].`);
  }
  return problems;
}

const isEntry = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v);

/** Entries of nodes and pods that are not objects, named by their place (reading their fields would throw a TypeError). */
function entryProblems(spec: PodNetworkSpec): string[] {
  const problems: string[] = [];
  if (!Array.isArray(spec.nodes)) return problems;
  for (const [i, node] of (spec.nodes as unknown[]).entries()) {
    if (!isEntry(node)) {
      problems.push(
        `nodes[${i}]: ${show(node)} is not a node (an object like { name: "node-a", nodeAddress: "192.0.2.1", pods: [] })`,
      );
      continue;
    }
    const pods = (node as { pods?: unknown }).pods;
    if (!Array.isArray(pods)) continue;
    for (const [j, pod] of (pods as unknown[]).entries())
      if (!isEntry(pod))
        problems.push(`nodes[${i}].pods[${j}]: ${show(pod)} is not a pod (an object like { name: "web" })`);
  }
  return problems;
}

/**
 * Why a node cannot be reached at this address by the other nodes, for the
 * special ranges that name no single host (ipaddr.js's range names).
 */
function unusableNodeAddress(address: string): string | undefined {
  const why: Record<string, string> = {
    unspecified:
      address === "0.0.0.0" ? "is the unspecified address" : 'is in 0.0.0.0/8 ("this network"), which no host has',
    loopback:
      "is a loopback address (127.0.0.0/8): each host has it for itself, so the other nodes would reach themselves",
    broadcast: "is the broadcast address: it names every host on the link, not one node",
    multicast: "is a multicast address (224.0.0.0/4): it names a group, not a node",
  };
  const reason = why[ipaddr.IPv4.parse(address).range()];
  return reason && `${show(address)} ${reason}; give the node's address on the network the nodes share`;
}

export function planPodNetwork(spec: PodNetworkSpec): PodNetworkPlan {
  if (typeof spec !== "object" || spec === null)
    throw new PodPlanError([`the arguments: ${show(spec)} is not an object like { clusterCidr, nodes }`]);
  const problems = unknownFields(spec);
  const reason = (field: string, r: string | undefined) => r && problems.push(`${field}: ${r}`);
  const family = (field: string, v: unknown) => {
    const r = wrongFamily(field, v, false);
    if (r) problems.push(r);
    return Boolean(r);
  };
  if (!family("clusterCidr", spec.clusterCidr)) reason("clusterCidr", ipv4Network(spec.clusterCidr));
  const mode = spec.mode ?? "routes";
  reason("mode", oneOf("routes", "vxlan")(mode));
  const bridge = spec.bridge ?? "v-net-0";
  if (!reason("bridge", interfaceName(bridge)) && mode === "vxlan" && bridge === VXLAN_DEVICE)
    problems.push(`bridge: ${show(bridge)} is the VXLAN device's name in mode "vxlan"; choose another bridge name`);
  if (!Array.isArray(spec.nodes) || spec.nodes.length === 0) problems.push("nodes: at least one node is needed");
  problems.push(...entryProblems(spec));
  if (problems.length) throw new PodPlanError(problems);

  const clusterPrefix = Number(spec.clusterCidr.split("/")[1]);
  const podCidrPrefix = spec.podCidrPrefix ?? 24;
  if (reason("podCidrPrefix", integerIn(Math.max(clusterPrefix, 1), 30)(podCidrPrefix))) {
    problems[problems.length - 1] += ` (it must be at least clusterCidr's /${clusterPrefix}, and /30 at most)`;
    throw new PodPlanError(problems);
  }
  const clusterBase = toNumber(spec.clusterCidr.split("/")[0]);
  const clusterSize = 2 ** (32 - clusterPrefix);
  const inCluster = (n: number) => n >= clusterBase && n < clusterBase + clusterSize;
  const blockSize = 2 ** (32 - podCidrPrefix);
  const blocks = clusterSize / blockSize;
  const blockCidr = (slot: number) => `${toAddress(clusterBase + slot * blockSize)}/${podCidrPrefix}`;
  // Network, broadcast and the bridge's address are not pods'.
  const podRoom = blockSize - 3;
  if (spec.nodes.length > blocks)
    problems.push(
      `nodes: ${spec.clusterCidr} holds ${blocks} pod CIDRs of /${podCidrPrefix} for ${spec.nodes.length} nodes; use a larger clusterCidr or a longer podCidrPrefix`,
    );

  // Nodes: names, addresses, and their blocks (pinned first, then derived from the name).
  const nodeNames = new Map<string, number>();
  const nodeAddresses = new Map<string, string>();
  const slotOwner = new Map<number, string>();
  const slots = new Map<number, number>(); // node index -> slot
  for (const [i, node] of spec.nodes.entries()) {
    const field = `nodes[${i}]`;
    if (!reason(`${field}.name`, namespaceName(node.name))) {
      if (nodeNames.has(node.name))
        problems.push(`${field}.name: ${show(node.name)} is also nodes[${nodeNames.get(node.name)}]'s name`);
      else nodeNames.set(node.name, i);
    }
    if (
      !family(`${field}.nodeAddress`, node.nodeAddress) &&
      !reason(`${field}.nodeAddress`, ipv4Address(node.nodeAddress)) &&
      !reason(`${field}.nodeAddress`, unusableNodeAddress(node.nodeAddress))
    ) {
      if (inCluster(toNumber(node.nodeAddress)))
        problems.push(
          `${field}.nodeAddress: ${show(node.nodeAddress)} is inside clusterCidr ${spec.clusterCidr}: the network the nodes share must not overlap the pods'; use another clusterCidr`,
        );
      const other = nodeAddresses.get(node.nodeAddress);
      if (other) problems.push(`${field}.nodeAddress: ${show(node.nodeAddress)} is also ${other}'s`);
      else nodeAddresses.set(node.nodeAddress, `${field}`);
    }
    if (!Array.isArray(node.pods)) problems.push(`${field}.pods: ${show(node.pods)} is not a list`);
    else if (node.pods.length > podRoom)
      problems.push(
        `podCidrPrefix: a /${podCidrPrefix} holds ${podRoom} pods (network, broadcast and bridge address taken); node ${show(node.name)} has ${node.pods.length}; use a shorter podCidrPrefix`,
      );
    if (
      node.podCidr === undefined ||
      family(`${field}.podCidr`, node.podCidr) ||
      reason(`${field}.podCidr`, ipv4Network(node.podCidr))
    )
      continue;
    const [base, prefix] = node.podCidr.split("/");
    const n = toNumber(base);
    if (Number(prefix) !== podCidrPrefix || !inCluster(n))
      problems.push(
        `${field}.podCidr: ${show(node.podCidr)} is not a /${podCidrPrefix} block of clusterCidr ${spec.clusterCidr}`,
      );
    else {
      const slot = (n - clusterBase) / blockSize;
      if (slotOwner.has(slot))
        problems.push(`${field}.podCidr: ${show(node.podCidr)} is also ${slotOwner.get(slot)}'s`);
      slotOwner.set(slot, `${field} (${show(node.name)})`);
      slots.set(i, slot);
    }
  }
  if (problems.length) throw new PodPlanError(problems);
  const freeSlot = () => {
    for (let s = 0; s < blocks; s++) if (!slotOwner.has(s)) return blockCidr(s);
    return undefined;
  };
  const derived: Array<{ i: number; slot: number }> = [];
  for (const [i, node] of spec.nodes.entries()) {
    if (slots.has(i)) continue;
    const slot = fnv1a(node.name) % blocks;
    derived.push({ i, slot });
    if (!slotOwner.has(slot)) {
      slotOwner.set(slot, `nodes[${i}] (${show(node.name)})`);
      slots.set(i, slot);
    }
  }
  for (const { i, slot } of derived)
    if (slots.get(i) !== slot || slotOwner.get(slot) !== `nodes[${i}] (${show(spec.nodes[i].name)})`) {
      const free = freeSlot();
      problems.push(
        `nodes[${i}].podCidr: node ${show(spec.nodes[i].name)}'s name derives pod CIDR ${blockCidr(slot)}, which is ${slotOwner.get(slot)}'s; pin one of them with podCidr${free ? ` (${free} is free)` : ""}`,
      );
    }
  if (problems.length) throw new PodPlanError(problems);

  // Pods: unique names across the cluster, addresses inside their node's block.
  const podOwner = new Map<string, string>();
  const nodes: NodePlan[] = spec.nodes.map((node, i) => {
    const base = clusterBase + (slots.get(i) as number) * blockSize;
    const bridgeN = base + 1;
    const first = base + 2;
    const last = base + blockSize - 2;
    const podCidr = blockCidr(slots.get(i) as number);
    const taken = new Map<number, string>([[bridgeN, "the bridge's address"]]);
    // Every pod's bridge port is in the node's own namespace (each veth end in its pod's),
    // so two ports whose derived names meet would be one interface name twice.
    const ports = new Map<string, string>();
    const pods: Array<Partial<PodPlan> & { name: string }> = [];
    for (const [j, pod] of node.pods.entries()) {
      const field = `nodes[${i}].pods[${j}]`;
      if (reason(`${field}.name`, namespaceName(pod.name))) continue;
      const other = podOwner.get(pod.name);
      if (other)
        problems.push(`${field}.name: ${show(pod.name)} is also ${other}; pod names are unique across the cluster`);
      podOwner.set(pod.name, `${field} (node ${show(node.name)})`);
      const vethName = fitName(`veth-${pod.name}`, "veth-", pod.name);
      const entry: Partial<PodPlan> & { name: string } = {
        name: pod.name,
        vethName,
        bridgePortName: fitName(`${vethName}-br`, "vbr-", pod.name),
      };
      if (entry.bridgePortName === bridge)
        problems.push(`${field}.name: its bridge port ${show(bridge)} would be the bridge's name`);
      const port = entry.bridgePortName as string;
      const portOwner = ports.get(port);
      if (portOwner)
        problems.push(
          `${field}.name: pod ${show(pod.name)}'s bridge port ${show(port)} (derived from the name) is also ${portOwner}: ports share the node's namespace; rename one of them`,
        );
      else ports.set(port, `pod ${show(pod.name)}'s (${field})`);
      if (
        pod.address !== undefined &&
        !family(`${field}.address`, pod.address) &&
        !reason(`${field}.address`, ipv4Address(pod.address))
      ) {
        const n = toNumber(pod.address);
        if (n < first || n > last)
          problems.push(
            `${field}.address: ${show(pod.address)} is not a pod address of node ${show(node.name)}'s pod CIDR ${podCidr} (${toAddress(first)}-${toAddress(last)})`,
          );
        else if (taken.has(n)) problems.push(`${field}.address: ${show(pod.address)} is already ${taken.get(n)}`);
        else {
          taken.set(n, `pod ${show(pod.name)}'s address`);
          entry.address = pod.address;
        }
      }
      pods.push(entry);
    }
    for (const p of pods.filter((x) => !x.address).sort(byName)) {
      let n = first + (fnv1a(p.name) % (last - first + 1));
      while (taken.has(n)) n = n === last ? first : n + 1;
      taken.set(n, `pod ${show(p.name)}'s address`);
      p.address = toAddress(n);
    }
    const bridgeAddress = toAddress(bridgeN);
    return {
      name: node.name,
      nodeAddress: node.nodeAddress,
      podCidr,
      bridgeAddress,
      bridgeCidr: `${bridgeAddress}/${podCidrPrefix}`,
      pods: pods.map((p) => ({ ...(p as PodPlan), cidr: `${p.address}/${podCidrPrefix}` })),
      routes: [],
      routes6: [],
      podRouteDestination: "",
    };
  });
  if (problems.length) throw new PodPlanError(problems);

  const ipv6 = planPodIpv6(
    spec,
    mode as "routes" | "vxlan",
    { nodes: nodes.map((_, i) => ({ slot: slots.get(i) as number })) },
    problems,
  );
  if (problems.length) throw new PodPlanError(problems);
  if (ipv6)
    for (const [i, node] of nodes.entries()) {
      const six = ipv6.nodes[i];
      node.podCidr6 = six.podCidr6;
      node.bridgeAddress6 = six.bridgeAddress6;
      node.bridgeCidr6 = `${six.bridgeAddress6}/${mode === "vxlan" ? ipv6.clusterCidr6.split("/")[1] : ipv6.podCidrPrefix6}`;
      if (six.nodeAddress6) node.nodeAddress6 = six.nodeAddress6;
      for (const pod of node.pods) {
        pod.address6 = six.addresses6.get(pod.name) as string;
        pod.cidr6 = `${pod.address6}/${ipv6.podCidrPrefix6}`;
      }
    }

  const outboundNat = spec.outboundNat ?? true;
  for (const node of nodes) {
    const others = nodes.filter((o) => o !== node);
    if (mode === "vxlan") {
      node.bridgeCidr = `${node.bridgeAddress}/${clusterPrefix}`;
      const remotes = others.map((o) => o.nodeAddress);
      node.vxlan = {
        name: VXLAN_DEVICE,
        vni: VXLAN_VNI,
        dstPort: VXLAN_PORT,
        local: node.nodeAddress,
        remotes,
        mtu: VXLAN_MTU,
      };
      node.podMtu = VXLAN_MTU;
    } else {
      node.routes = others.map((o) => ({ destination: o.podCidr, via: o.nodeAddress, toNode: o.name }));
      if (ipv6)
        node.routes6 = others.map((o) => ({
          destination: o.podCidr6 as string,
          via: o.nodeAddress6 as string,
          toNode: o.name,
        }));
    }
    node.podRouteDestination = outboundNat ? "default" : spec.clusterCidr;
    // The whole cluster as source: the rule's FORWARD accepts then also take other nodes' pods' new
    // connections into this node's pods, on hosts whose FORWARD policy is DROP (Docker's).
    if (outboundNat) node.masquerade = { source: spec.clusterCidr, exceptDestination: spec.clusterCidr };
    if (ipv6) {
      node.podRouteDestination6 = outboundNat ? "default6" : ipv6.clusterCidr6;
      if (outboundNat) node.masquerade6 = { source: ipv6.clusterCidr6, exceptDestination: ipv6.clusterCidr6 };
    }
  }
  return {
    clusterCidr: spec.clusterCidr,
    podCidrPrefix,
    mode: mode as "routes" | "vxlan",
    bridge,
    outboundNat,
    ...(ipv6 ? { clusterCidr6: ipv6.clusterCidr6, podCidrPrefix6: ipv6.podCidrPrefix6 } : {}),
    nodes,
  };
}
