// The SDK's errors module alone (not all of @pulumi/pulumi): the planners stay plain data.
import { ResourceError } from "@pulumi/pulumi/errors";
import type { Resource } from "@pulumi/pulumi/resource";
import { toAddress, toNumber } from "../provider/kernel/cidr";
import {
  interfaceName,
  ipv4Address,
  ipv4Network,
  ipv6Network,
  namespaceName,
  oneOf,
  port,
  show,
  unknownFieldReason,
} from "../provider/validate";
import { planIpv6 } from "./plan6";

/**
 * The topology of an IsolatedNetwork as plain data: addresses and names are
 * decided here, before any resource exists, so they can be tested and shown
 * on their own (Mininet keeps its topology apart from what realizes it).
 */
export interface NetworkSpec {
  /** The bridge's name, e.g. "v-net-0". */
  bridge: string;
  /** e.g. "192.168.15.0/24". */
  subnet: string;
  /** The bridge's address, e.g. "192.168.15.5"; default: the first usable address. */
  gateway?: string;
  /** Namespaces to put on the bridge. An address not given is derived from the name, stable as the list changes. */
  namespaces: Array<{ name: string; address?: string; vethName?: string; address6?: string }>;
  /** MASQUERADE + forwarding + a default route in each namespace (default true). */
  outboundNat?: boolean;
  portForwards?: Array<{ namespace: string; hostPort: number; port?: number; protocol?: "tcp" | "udp" }>;
  /** Add Probes (./verify): every namespace to the gateway and to each other, each port forward from the host (default false). */
  verify?: boolean;
  /** Networks (CIDRs, IPv4 or IPv6) let in from the host's other IsolatedNetworks, which are otherwise kept out. */
  allowFrom?: string[];
  /**
   * Dual stack: an IPv6 subnet besides the IPv4 one, e.g. "fd00:15::/64". Every namespace then also gets
   * an IPv6 address (`address6`, derived from its name when not given) and, with `outboundNat`, a default
   * IPv6 route and IPv6 masquerade; port forwards forward IPv6 too.
   */
  subnet6?: string;
  /** The bridge's IPv6 address; default: the subnet's `::1`. */
  gateway6?: string;
}

export interface NamespacePlan {
  name: string;
  /** Without prefix, e.g. "192.168.15.1". */
  address: string;
  /** With the subnet's prefix, e.g. "192.168.15.1/24". */
  cidr: string;
  /** The veth end inside the namespace. */
  vethName: string;
  /** The veth end on the bridge, in the host namespace. */
  bridgePortName: string;
  /** Dual stack: the IPv6 address without prefix, e.g. "fd00:15::7", and with it. */
  address6?: string;
  cidr6?: string;
}

export interface PortForwardPlan {
  namespace: string;
  hostPort: number;
  port: number;
  protocol: "tcp" | "udp";
  toAddress: string;
  /** Dual stack: the namespace's IPv6 address, forwarded too. */
  toAddress6?: string;
}

export interface NetworkPlan {
  bridge: string;
  subnet: string;
  prefixLength: number;
  gateway: string;
  gatewayCidr: string;
  namespaces: NamespacePlan[];
  outboundNat: boolean;
  portForwards: PortForwardPlan[];
  allowFrom: string[];
  /** Dual stack (`subnet6`): the IPv6 subnet, its prefix length and the bridge's IPv6 address. */
  subnet6?: string;
  prefixLength6?: number;
  gateway6?: string;
  gateway6Cidr?: string;
}

/**
 * A refused spec. A ResourceError with its stack hidden: thrown out of a
 * program, the SDK reports its message alone (an ordinary Error is printed by
 * util.inspect with colours: stack frames, ANSI codes and the `problems`
 * array), on the component it is attached to by `planFor`.
 */
export class PlanError extends ResourceError {
  constructor(readonly problems: string[]) {
    super(`IsolatedNetwork: ${problems.join("; ")}`, undefined, true);
    this.name = "PlanError";
  }
}

/** Runs a component's planning; a refusal (PlanError, PodPlanError) is reported on that component. */
export function planFor<T>(component: Resource, plan: () => T): T {
  try {
    return plan();
  } catch (err) {
    if (ResourceError.isInstance(err) && err.resource === undefined) err.resource = component;
    throw err;
  }
}

/**
 * The options a component's resources get from the component's own: its parent,
 * and `retainOnDelete`, which the SDK does not pass from a parent to its
 * children. A retained network keeps everything it made, as the user asked.
 */
export function childOptions(parent: Resource, opts: { retainOnDelete?: boolean } | undefined) {
  return { parent, ...(opts?.retainOnDelete !== undefined && { retainOnDelete: opts.retainOnDelete }) };
}

/** FNV-1a: a small stable hash, so derived names and addresses do not depend on list order. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (const ch of Buffer.from(text)) {
    h ^= ch;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** A name that fits IFNAMSIZ: the readable form when it fits, else a stable hash of the namespace name. */
export function fitName(readable: string, prefix: string, namespace: string): string {
  return readable.length <= 15 ? readable : `${prefix}${fnv1a(namespace).toString(16).padStart(8, "0")}`;
}

// The fields of a spec and of its entries, checked complete against the types by the compiler.
const SPEC_FIELDS: Record<keyof NetworkSpec, true> = {
  bridge: true,
  subnet: true,
  gateway: true,
  namespaces: true,
  outboundNat: true,
  portForwards: true,
  verify: true,
  allowFrom: true,
  subnet6: true,
  gateway6: true,
};
const NAMESPACE_FIELDS: Record<keyof NetworkSpec["namespaces"][number], true> = {
  name: true,
  address: true,
  vethName: true,
  address6: true,
};
const FORWARD_FIELDS: Record<keyof NonNullable<NetworkSpec["portForwards"]>[number], true> = {
  namespace: true,
  hostPort: true,
  port: true,
  protocol: true,
};

/**
 * The keys of a spec object (or an entry of it, at path `at`) that are not
 * among `fields`, each with the closest valid name. `connection` at the top is
 * the component's own, beside the spec. A key that is not a plain identifier
 * is shown quoted. Not an object: nothing (the field's own check says so).
 */
export function unknownKeys(value: unknown, fields: object, at: string): string[] {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return [];
  return Object.keys(value)
    .filter((key) => !Object.hasOwn(fields, key) && !(at === "" && key === "connection"))
    .map((key) => {
      const name = /^[A-Za-z_$][\w$]{0,63}$/.test(key) ? key : show(key);
      return `${at}${name}: ${unknownFieldReason(key, Object.keys(fields))}`;
    });
}

/** A field the spec does not have, e.g. a misspelt one, which would otherwise be ignored. */
function unknownFields(spec: NetworkSpec): string[] {
  const problems: string[] = [];
  const scan = (value: unknown, fields: object, at: string) => problems.push(...unknownKeys(value, fields, at));
  scan(spec, SPEC_FIELDS, "");
  const list = (value: unknown) => (Array.isArray(value) ? value : []);
  for (const [i, ns] of list(spec.namespaces).entries()) scan(ns, NAMESPACE_FIELDS, `namespaces[${i}].`);
  for (const [i, pf] of list(spec.portForwards).entries()) scan(pf, FORWARD_FIELDS, `portForwards[${i}].`);
  return problems;
}

/** A list field's entries, or a problem: anything but a list (absent: none) is refused, as is an entry that is not an object. */
function entriesOf<T>(value: T[] | undefined, field: string, what: string, problems: string[]): Array<[number, T]> {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    problems.push(`${field}: ${show(value)} is not a list`);
    return [];
  }
  return [...value.entries()].filter(([i, v]) => {
    const ok = typeof v === "object" && v !== null && !Array.isArray(v);
    if (!ok) problems.push(`${field}[${i}]: ${show(v)} is not ${what}`);
    return ok;
  });
}

export function planNetwork(spec: NetworkSpec): NetworkPlan {
  if (typeof spec !== "object" || spec === null)
    throw new PlanError([`the arguments: ${show(spec)} is not an object like { bridge, subnet, namespaces }`]);
  const problems: string[] = unknownFields(spec);
  const reason = (field: string, r: string | undefined) => r && problems.push(`${field}: ${r}`);
  reason("bridge", interfaceName(spec.bridge));
  // A subnet needs room for a gateway and a namespace: any prefix over 30 (a /33 too) is told so, not "1-32".
  const prefixText = typeof spec.subnet === "string" ? spec.subnet.split("/")[1] : undefined;
  if (prefixText !== undefined && /^\d+$/.test(prefixText) && Number(prefixText) > 30)
    problems.push(`subnet: ${show(spec.subnet)} has no room for a gateway and a namespace (use /30 or larger)`);
  else reason("subnet", ipv4Network(spec.subnet));
  if (problems.length) throw new PlanError(problems);

  const [networkText] = spec.subnet.split("/");
  const prefixLength = Number(prefixText);
  const network = toNumber(networkText);
  const size = 2 ** (32 - prefixLength);
  const first = network + 1;
  const last = network + size - 2;
  const inside = (n: number) => n >= first && n <= last;

  let gateway = first;
  if (spec.gateway !== undefined) {
    reason("gateway", ipv4Address(spec.gateway));
    if (!ipv4Address(spec.gateway)) {
      gateway = toNumber(spec.gateway);
      if (!inside(gateway)) problems.push(`gateway: ${show(spec.gateway)} is not a usable address of ${spec.subnet}`);
    }
  }

  const taken = new Map<number, string>([[gateway, "the gateway"]]);
  const names = new Set<string>();
  const vethNames = new Map<string, string>();
  const planned = new Map<string, Partial<NamespacePlan>>();
  const entries6: Array<{ field: string; name: string; address6?: unknown }> = [];
  const names6 = new Set<string>();
  if (Array.isArray(spec.namespaces) && spec.namespaces.length === 0)
    problems.push("namespaces: at least one namespace is needed");
  if (spec.namespaces === undefined) problems.push("namespaces: at least one namespace is needed");
  for (const [i, ns] of entriesOf(
    spec.namespaces,
    "namespaces",
    'a namespace (an object like { name: "red" })',
    problems,
  )) {
    const field = `namespaces[${i}]`;
    if (reason(`${field}.name`, namespaceName(ns.name))) continue;
    if (names.has(ns.name)) problems.push(`${field}.name: ${show(ns.name)} is listed twice`);
    names.add(ns.name);
    const vethName = ns.vethName ?? fitName(`veth-${ns.name}`, "veth-", ns.name);
    reason(`${field}.vethName`, interfaceName(vethName));
    const bridgePortName = fitName(`${vethName}-br`, "vbr-", ns.name);
    for (const n of [vethName, bridgePortName]) {
      const owner = vethNames.get(n);
      if (owner && owner !== ns.name)
        problems.push(`${field}: interface name ${show(n)} is also used by namespace ${show(owner)}`);
      vethNames.set(n, ns.name);
    }
    if (bridgePortName === spec.bridge)
      problems.push(`${field}: interface name ${show(bridgePortName)} is the bridge's name`);
    const entry: Partial<NamespacePlan> = { name: ns.name, vethName, bridgePortName };
    if (ns.address !== undefined) {
      if (!reason(`${field}.address`, ipv4Address(ns.address))) {
        const n = toNumber(ns.address);
        if (!inside(n))
          problems.push(`${field}.address: ${show(ns.address)} is not a usable address of ${spec.subnet}`);
        else if (taken.has(n)) problems.push(`${field}.address: ${show(ns.address)} is already ${taken.get(n)}`);
        else {
          taken.set(n, `namespace ${show(ns.name)}'s address`);
          entry.address = ns.address;
        }
      }
    }
    planned.set(ns.name, entry);
    if (!names6.has(ns.name)) entries6.push({ field, name: ns.name, address6: ns.address6 });
    names6.add(ns.name);
  }

  // Addresses nobody chose: start from a hash of the name and probe upward, in
  // name order, so adding or removing a namespace leaves the others' addresses alone.
  const free = last - first + 1 - taken.size;
  // Code-unit order, not localeCompare: the order must not depend on the user's locale (da_DK sorts "aa" after "z").
  const wanting = [...planned.values()]
    .filter((p) => !p.address)
    .sort((a, b) => (a.name! < b.name! ? -1 : a.name! > b.name! ? 1 : 0));
  if (wanting.length > free)
    problems.push(`namespaces: ${spec.subnet} has ${free} free addresses for ${wanting.length} namespaces without one`);
  else
    for (const p of wanting) {
      let n = first + (fnv1a(p.name!) % (last - first + 1));
      while (taken.has(n)) n = n === last ? first : n + 1;
      taken.set(n, `namespace ${show(p.name)}'s address`);
      p.address = toAddress(n);
    }

  const ipv6 = planIpv6(spec, entries6, fnv1a, problems);

  const portForwards: PortForwardPlan[] = [];
  const hostPorts = new Set<string>();
  const forwards = entriesOf(
    spec.portForwards,
    "portForwards",
    'a port forward (an object like { namespace: "blue", hostPort: 8080 })',
    problems,
  );
  for (const [i, pf] of forwards) {
    const field = `portForwards[${i}]`;
    const target = planned.get(pf.namespace);
    if (!target) problems.push(`${field}.namespace: ${show(pf.namespace)} is not one of this network's namespaces`);
    reason(`${field}.hostPort`, port(pf.hostPort));
    if (pf.port !== undefined) reason(`${field}.port`, port(pf.port));
    const protocol = pf.protocol ?? "tcp";
    reason(`${field}.protocol`, oneOf("tcp", "udp")(protocol));
    const key = `${protocol}/${pf.hostPort}`;
    if (hostPorts.has(key)) problems.push(`${field}.hostPort: ${protocol} port ${pf.hostPort} is forwarded twice`);
    hostPorts.add(key);
    if (target)
      portForwards.push({
        namespace: pf.namespace,
        hostPort: pf.hostPort,
        port: pf.port ?? pf.hostPort,
        protocol,
        toAddress: target.address ?? "",
      });
  }
  const allowFrom = spec.allowFrom ?? [];
  if (!Array.isArray(allowFrom)) problems.push(`allowFrom: ${show(allowFrom)} is not a list of CIDRs`);
  else
    for (const [i, cidr] of allowFrom.entries())
      reason(`allowFrom[${i}]`, typeof cidr === "string" && cidr.includes(":") ? ipv6Network(cidr) : ipv4Network(cidr));
  if (problems.length) throw new PlanError(problems);

  const gatewayText = toAddress(gateway);
  const address6 = (name: string) => ipv6?.addresses.get(name);
  return {
    bridge: spec.bridge,
    subnet: spec.subnet,
    prefixLength,
    gateway: gatewayText,
    gatewayCidr: `${gatewayText}/${prefixLength}`,
    namespaces: [...planned.values()].map((p) => ({
      ...(p as NamespacePlan),
      cidr: `${p.address}/${prefixLength}`,
      ...(ipv6 && { address6: address6(p.name!), cidr6: `${address6(p.name!)}/${ipv6.prefixLength}` }),
    })),
    outboundNat: spec.outboundNat ?? true,
    portForwards: portForwards.map((pf) => ({
      ...pf,
      toAddress: planned.get(pf.namespace)?.address ?? pf.toAddress,
      ...(ipv6 && { toAddress6: address6(pf.namespace) }),
    })),
    allowFrom: [...allowFrom],
    ...(ipv6 && {
      subnet6: ipv6.subnet,
      prefixLength6: ipv6.prefixLength,
      gateway6: ipv6.gateway,
      gateway6Cidr: `${ipv6.gateway}/${ipv6.prefixLength}`,
    }),
  };
}
