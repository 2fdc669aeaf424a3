import type * as pulumi from "@pulumi/pulumi";
import * as ipaddr from "ipaddr.js";
import { sameAddresses } from "./kernel/link";
import {
  type ArgsOf,
  type CheckedOf,
  checkedBy,
  field,
  objectField,
  optionalInState,
  output,
  type StoredOf,
  schema,
  stateOnly,
} from "./schema";
import {
  boolean,
  type Checker,
  integerIn,
  interfaceName,
  ipInterface,
  ipNetwork,
  ipv4Address,
  ipv4Network,
  ipv4OrIpv6Address,
  ipv6Address,
  ipv6Network,
  isIpv6,
  isUnknown,
  mtu,
  namespaceName,
  oneOf,
  port,
  show,
} from "./validate";

/**
 * Each resource's schema (besides `connection`, which every resource has):
 * the one place its fields, their rules, defaults and change behaviour are
 * declared. The doc comments here are the ones users see on the args and on
 * the classes' properties.
 */

/** Checks a list of interface addresses in CIDR form, with no duplicates. */
function checkAddresses(checker: Checker, property: string, value: unknown): void {
  checker.field(property, value, (v) => (Array.isArray(v) ? undefined : `${show(v)} is not a list of addresses`));
  if (!Array.isArray(value)) return;
  const seen = new Set<string>();
  value.forEach((a, i) => {
    checker.field(`${property}[${i}]`, a, ipInterface, true);
    if (typeof a === "string" && !isUnknown(a)) {
      if (seen.has(a)) checker.fail(`${property}[${i}]`, `${show(a)} is listed twice`);
      seen.add(a);
    }
  });
}

/** Interface addresses: none when absent; the same set in another order is no change. */
const addresses = () =>
  checkedBy<string[], pulumi.Input<pulumi.Input<string>[]>>(checkAddresses).default([]).comparedBy(sameAddresses);

/** A list field: absent is none; the same items in the same order are no change. */
const list = (rule: (v: unknown) => string | undefined) =>
  checkedBy<string[], pulumi.Input<pulumi.Input<string>[]>>(listOf(rule))
    .default([])
    .comparedBy((a, b) => JSON.stringify(a ?? []) === JSON.stringify(b ?? []));

/**
 * The `retainOnDelete` resource option, which the class passes in (not an arg): destroy never calls
 * delete for a retained object, so it carries no owner mark (which would only refuse a later adopt),
 * and an adopted Bridge gets no FORWARD accepts. A change updates in place; state from before it
 * lacks it (not retained).
 */
const retainOnDelete = () =>
  field<boolean>(boolean)
    .default(false)
    .fromOption()
    .comparedBy((a, b) => (a ?? false) === (b ?? false));

export const NAMESPACE = schema(
  {
    /** The namespace's name on the host; defaults to the resource name. */
    name: field<string>(namespaceName).orResourceName().replaceOnChange(),
    /** Bring `lo` up inside the namespace (default true). */
    loopbackUp: field<boolean>(boolean).default(true),
    /** Take over a namespace that already exists instead of failing (default false). */
    adopt: field<boolean>(boolean).default(false),
    retainOnDelete: retainOnDelete(),
  },
  {
    /** True when the namespace existed already and was adopted. */
    adopted: output<boolean>(),
    /** The owner mark on its `lo` (kernel/mark): delete removes only the namespace carrying it. None when retained. */
    mark: stateOnly<string | undefined>(),
  },
);

export const VETH_END = schema(
  {
    /** Interface name, 1-15 characters. */
    name: field<string>(interfaceName).required().replaceOnChange(),
    /** Move this end into that named namespace (absent: the host's own). */
    namespace: field<string>(namespaceName).replaceOnChange(),
    /** Attach this end to that bridge (in the same namespace as the end). */
    bridge: field<string>(interfaceName),
    /** Addresses in CIDR form, e.g. "192.168.15.1/24" or "fd00:15::1/64". */
    addresses: addresses(),
    /** Bring the end up (default true). */
    up: field<boolean>(boolean).default(true),
  },
  { mac: output<string>(), ifindex: output<number>() },
);

/** One end of a veth pair. */
export interface VethEnd extends ArgsOf<typeof VETH_END.fields> {}

/** A veth end as the provider receives it, its defaults filled in. */
export type InterfaceEnd = CheckedOf<typeof VETH_END.fields>;

/** A veth end as observed on the host. */
export interface VethEndOutput extends StoredOf<typeof VETH_END> {}

const vethEnd = () => objectField<InterfaceEnd, pulumi.Input<VethEnd>, VethEndOutput>(VETH_END).required();

export const VETH_PAIR = schema(
  {
    a: vethEnd(),
    b: vethEnd(),
    /** MTU of both ends. */
    mtu: field<number>(mtu),
    /** Take over a pair that already exists instead of failing (default false). */
    adopt: field<boolean>(boolean).default(false),
    retainOnDelete: retainOnDelete(),
  },
  {
    adopted: output<boolean>(),
    /** The owner mark, the alias of both ends (kernel/mark): delete removes only ends carrying it. None when retained. */
    mark: stateOnly<string | undefined>(),
  },
);

/** The outputs of a resource made of owner-tagged iptables rules (impl/ruleSet.ts). */
const ruleSetOutputs = {
  ruleId: stateOnly<string>(),
  /** The owner tag in every rule's comment. */
  comment: output<string>(),
  /** The rules as `iptables -S` prints them. */
  rules: output<string[]>(),
  /** Rules refresh found missing on the host; the next update puts them back. */
  missingRules: output<string[]>(),
};

export const BRIDGE = schema(
  {
    /** The bridge's interface name; defaults to the resource name. */
    name: field<string>(interfaceName).orResourceName().replaceOnChange(),
    /** Create it in that named namespace (absent: the host's own). */
    namespace: field<string>(namespaceName).replaceOnChange(),
    /** Addresses in CIDR form, e.g. "192.168.15.5/24" or "fd00:15::5/64". */
    addresses: addresses(),
    mtu: field<number>(mtu),
    /** Bring the bridge up (default true). */
    up: field<boolean>(boolean).default(true),
    /** Take over a bridge that already exists instead of failing (default false). */
    adopt: field<boolean>(boolean).default(false),
    retainOnDelete: retainOnDelete(),
    /** Interface group (`ip link set dev X group N`); IsolatedNetwork's bridges share one, see kernel/isolation.ts. */
    group: field<number>(integerIn(0, 2 ** 31 - 1)),
    /**
     * Networks (CIDR form, IPv4 or IPv6, e.g. "fd00:10::/64") whose new forwarded traffic may come into the
     * bridge where the FORWARD policy is DROP (`-s CIDR -o NAME -j ACCEPT`, in ip6tables for IPv6 ones): a
     * PodNetwork's other nodes' pods. Default: none.
     */
    forwardFrom: list(ipNetwork),
  },
  {
    mac: output<string>(),
    ifindex: output<number>(),
    adopted: output<boolean>(),
    // Its one rule (impl/bridge.ts) is its own business: the class declares none of them.
    ruleId: stateOnly<string>(),
    comment: stateOnly<string>(),
    rules: stateOnly<string[]>(),
    missingRules: stateOnly<string[]>(),
  },
);

/** "default" (IPv4), "default6" (IPv6), or an IPv4 or IPv6 network. */
export const routeDestination = (v: unknown) => {
  if (v === "default" || v === "0.0.0.0/0" || v === "default6" || v === "::/0") return undefined;
  const reason = typeof v === "string" && isIpv6(v) ? ipv6Network(v) : ipv4Network(v);
  return reason && `${reason} (or "default" for IPv4, "default6" for IPv6)`;
};

/** A gateway: an IPv4 or IPv6 unicast address. */
export const gateway = (v: unknown) => (typeof v === "string" && isIpv6(v) ? ipv6Address(v) : ipv4Address(v));

export const ROUTE = schema(
  {
    /** A network in CIDR form (IPv4 or IPv6), "default" (IPv4) or "default6" (IPv6). */
    destination: field<string>(routeDestination)
      .required()
      .normalizedBy((v) => (v === "0.0.0.0/0" ? "default" : v === "::/0" ? "default6" : v))
      .replaceOnChange(),
    /** Gateway address, of the destination's family. */
    via: field<string>(gateway),
    /** Output interface. */
    device: field<string>(interfaceName),
    /** Add it in that named namespace (absent: the host's own). */
    namespace: field<string>(namespaceName).replaceOnChange(),
    /** Route metric (default 0). Part of the route's identity: changing it adds the new route before removing the old. */
    metric: field<number>(integerIn(0, 4294967295)).comparedBy((a, b) => (a ?? 0) === (b ?? 0)),
  },
  {
    /** The interface the kernel uses for this route (the one it chose when `device` was not given). */
    observedDevice: optionalInState<string>(),
    /** The owner mark the route carries, its protocol number (kernel/mark ROUTE_PROTOCOL); state from before marks lacks it. */
    protocol: stateOnly<number>(),
  },
);

export const MASQUERADE_RULE = schema(
  {
    /**
     * The private network to masquerade, in CIDR form, e.g. "192.168.15.0/24", or IPv6, e.g. "fd00:10::/64"
     * (then every rule is made with ip6tables; IPv6 text as the kernel prints it, e.g. "fd00:10::/64").
     */
    source: field<string>(ipNetwork).required().replaceOnChange(),
    /** Only for traffic leaving through this interface (`-o eth0`). */
    outInterface: field<string>(interfaceName).replaceOnChange(),
    /** For traffic leaving through any interface but this one (`! -o v-net-0`). */
    excludeOutInterface: field<string>(interfaceName).replaceOnChange(),
    /**
     * Not for traffic to this network (`! -d 10.244.0.0/16`): pod to pod across nodes keeps its address.
     * Of the same family as `source`.
     */
    excludeDestination: field<string>(ipNetwork).replaceOnChange(),
    /**
     * The interface the private network's traffic comes in on (its bridge, e.g. "v-net-0"): the FORWARD
     * accepts then take only what comes from it (and replies going to it), so a LAN host forging a source
     * in `source` is not forwarded where the policy is DROP. Absent: from any interface.
     */
    inInterface: field<string>(interfaceName).replaceOnChange(),
    /** In that named namespace (absent: the host's own). */
    namespace: field<string>(namespaceName).replaceOnChange(),
    /**
     * Set net.ipv4.ip_forward=1 (an IPv6 `source`: net.ipv6.conf.all.forwarding=1) while needed, and put
     * back the old value after (default true). IPv6 forwarding on also makes the host ignore router
     * advertisements (accept_ra) on all its interfaces while it is on.
     */
    enableIpForward: field<boolean>(boolean).default(true).replaceOnChange(),
  },
  {
    ...ruleSetOutputs,
    /** False when refresh found forwarding switched off behind the program's back. */
    ipForwardOn: stateOnly<boolean>(),
  },
);

/**
 * A forward's target. Not IPv6 loopback: the kernel never routes a packet to
 * ::1 from outside (IPv6 has no route_localnet); not IPv6 link-local: DNAT
 * cannot name the interface such an address needs.
 */
function forwardTarget(v: unknown): string | undefined {
  if (v === "::1")
    return `${show(v)} is the host's IPv6 loopback, which the kernel never forwards to: give the namespace's own address`;
  const reason = ipv4OrIpv6Address(v);
  if (reason || !(v as string).includes(":")) return reason;
  if (ipaddr.IPv6.parse(v as string).range() === "linkLocal")
    return `${show(v)} is link-local, which DNAT cannot reach without an interface: give the namespace a global or ULA (fd00::/8) address`;
  return undefined;
}

export const PORT_FORWARD = schema(
  {
    /** The port on the host's own addresses. */
    hostPort: field<number>(port).required().replaceOnChange(),
    /**
     * Where to send it, e.g. the address of a namespace on the bridge; IPv4, or IPv6 as the kernel prints
     * it (e.g. "fd00:10::2": then the forward is made with ip6tables, for the host's IPv6 addresses).
     */
    toAddress: field<string>(forwardTarget).required().replaceOnChange(),
    /** Defaults to hostPort. */
    toPort: field<number>(port)
      .default((news) => news.hostPort)
      .replaceOnChange(),
    /** "tcp" (default) or "udp". */
    protocol: field<"tcp" | "udp">(oneOf("tcp", "udp")).default("tcp").replaceOnChange(),
    /** Only for traffic arriving on this interface. */
    inInterface: field<string>(interfaceName).replaceOnChange(),
    /** In that named namespace (absent: the host's own). */
    namespace: field<string>(namespaceName).replaceOnChange(),
    /**
     * Also forward connections the host opens to itself, including to localhost (default true). For an
     * IPv6 `toAddress`, not to localhost: the kernel never routes a packet from ::1 off the host (IPv6 has
     * no route_localnet), so [::1]:hostPort is left alone; the host's other addresses are forwarded.
     */
    fromHost: field<boolean>(boolean).default(true).replaceOnChange(),
  },
  {
    ...ruleSetOutputs,
    /** False when refresh found a sysctl the forward needs switched off. */
    sysctlsOn: stateOnly<boolean>(),
  },
);

/** An IPv4 address (four decimal parts) or an IPv6 address, without prefix. */
function ipAddress(v: unknown): string | undefined {
  if (typeof v === "string" && (ipaddr.IPv4.isValidFourPartDecimal(v) || (v.includes(":") && ipaddr.IPv6.isValid(v))))
    return undefined;
  return `${show(v)} is not an IPv4 or IPv6 address (like 192.168.15.2 or fd00::2)`;
}

export const PROBE = schema(
  {
    /** Run the check inside that named namespace (absent: on the host itself). */
    namespace: field<string>(namespaceName),
    /** The address to reach (IPv4 or IPv6). */
    target: field<string>(ipAddress).required(),
    /** Absent: an ICMP echo (ping); present: a TCP connect to this port. */
    port: field<number>(port),
    /** "reachable" (default) or "unreachable": what create, update and the next up after a refresh insist on. */
    expect: field<"reachable" | "unreachable">(oneOf("reachable", "unreachable")).default("reachable"),
    /** How long the check waits for an answer, in milliseconds (default 2000; ICMP waits whole seconds). */
    timeoutMs: field<number>(integerIn(100, 60000)).default(2000),
  },
  {
    /** Whether the target answered when the check last ran (create, update, refresh). */
    reachable: output<boolean>(),
    /** The round trip (ICMP) or connect time (TCP) in milliseconds, where reachable (absent where not); refresh keeps it while reachability holds. */
    rttMs: optionalInState<number>(),
    /** What the check saw, in words. */
    seen: stateOnly<string>(),
    /** Set when the last refresh could not run the check (what was missing): the next up checks again. */
    couldNotCheck: stateOnly<string | undefined>(),
  },
);

/** A list of the given rule's values (absent: none). */
function listOf(rule: (v: unknown) => string | undefined) {
  return (checker: Checker, property: string, value: unknown) => {
    checker.field(property, value, (v) => (Array.isArray(v) ? undefined : `${show(v)} is not a list`));
    if (!Array.isArray(value)) return;
    const seen = new Set<unknown>();
    for (const [i, v] of value.entries()) {
      checker.field(`${property}[${i}]`, v, rule, true);
      // Each item is one rule or one check: a second copy would be made twice and removed once.
      if (typeof v === "string" && !isUnknown(v)) {
        if (seen.has(v)) checker.fail(`${property}[${i}]`, `${show(v)} is listed twice`);
        seen.add(v);
      }
    }
  };
}

const hostPortKey = (v: unknown) =>
  typeof v === "string" && /^(tcp|udp)\/[0-9]{1,5}$/.test(v) && !port(Number(v.split("/")[1]))
    ? undefined
    : `${show(v)} is not "tcp/<port>" or "udp/<port>"`;

/**
 * IsolatedNetwork's first resource (not exported): checks the host for
 * collisions before anything of the network is made, then keeps the network
 * apart from the host's other IsolatedNetworks (kernel/isolation.ts).
 */
export const NETWORK_ISOLATION = schema(
  {
    /** The network's bridge (it need not exist yet). */
    bridge: field<string>(interfaceName).required().replaceOnChange(),
    /** Sources (CIDRs, IPv4 or IPv6) let in from other networks. */
    allowFrom: list(ipNetwork),
    /** Addresses the bridge will carry, checked at create and update against the host's interfaces and routes. */
    bridgeAddresses: list(ipInterface),
    /** Host ports the network will forward ("tcp/8080"), checked at create and update against the host's DNAT and REDIRECT rules. */
    hostPorts: list(hostPortKey),
  },
  { ...ruleSetOutputs },
);

/** Checks a list of unicast peers: IPv4 addresses, none twice. */
/**
 * A VXLAN underlay address: IPv4, or IPv6 as the kernel writes it. Not
 * link-local: an fe80:: peer needs a scope (an interface) an FDB entry's dst
 * does not carry.
 */
export function underlayAddress(v: unknown): string | undefined {
  const reason = ipv4OrIpv6Address(v);
  if (reason || typeof v !== "string" || !isIpv6(v)) return reason;
  if (ipaddr.IPv6.parse(v).range() === "linkLocal")
    return `${show(v)} is a link-local (fe80::/10) address, which has no meaning off its link's scope; give a global or ULA (fd00::/8) address of the underlay`;
  return undefined;
}

function checkRemotes(checker: Checker, property: string, value: unknown, required: boolean): void {
  checker.field(property, value, (v) => (Array.isArray(v) ? undefined : `${show(v)} is not a list`), required);
  if (!Array.isArray(value)) return;
  const seen = new Set<string>();
  value.forEach((a, i) => {
    checker.field(`${property}[${i}]`, a, underlayAddress, true);
    if (typeof a === "string" && !isUnknown(a)) {
      if (seen.has(a)) checker.fail(`${property}[${i}]`, `${show(a)} is listed twice`);
      else if (!isIpv6(a) && ipv4Address(a) === undefined) {
        // A flood entry to these would go nowhere, loop back, or spray every host.
        const range = ipaddr.IPv4.parse(a).range();
        if (["unspecified", "loopback", "multicast", "broadcast"].includes(range))
          checker.fail(`${property}[${i}]`, `${show(a)} is a ${range} address, not a peer's unicast address`);
      }
      seen.add(a);
    }
  });
}

export const VXLAN = schema(
  {
    /** The VXLAN device's interface name. */
    name: field<string>(interfaceName).required().replaceOnChange(),
    /** The VXLAN network identifier, 1-16777215 (24 bits); every peer uses the same. */
    vni: field<number>(integerIn(1, 16777215)).required().replaceOnChange(),
    /** The UDP port of the peers (default 4789, IANA's; the kernel's own default is 8472). */
    dstPort: field<number>(port).default(4789).replaceOnChange(),
    /** This host's underlay address, the source of the encapsulated packets (`local`). */
    local: field<string>(underlayAddress).replaceOnChange(),
    /**
     * The unicast peers' underlay addresses, IPv4 or IPv6 (one family, `local`'s when given): one flood FDB entry each
     * (`bridge fdb append 00:00:00:00:00:00 dst ...`); changes update in place, unless they change the family (a new device).
     */
    remotes: checkedBy<string[], pulumi.Input<pulumi.Input<string>[]>>(checkRemotes)
      .required()
      .comparedBy(sameAddresses),
    /** The underlay interface (`dev`); absent: the route to each peer decides. */
    device: field<string>(interfaceName).replaceOnChange(),
    /** Attach the device to that bridge (master), as a port, in the same namespace. */
    bridge: field<string>(interfaceName),
    /** Addresses in CIDR form on the device itself (without a bridge). */
    addresses: addresses(),
    /** Create it in that named namespace (absent: the host's own). */
    namespace: field<string>(namespaceName).replaceOnChange(),
    /** The device's MTU; absent: the kernel's (with `device`, the underlay's minus 50, 70 over IPv6; without, 1500 on 6.x: set 1450 on a 1500 underlay, 1430 over IPv6). */
    mtu: field<number>(mtu),
    /** Take over a VXLAN device of this name, VNI and port that already exists instead of failing (default false). */
    adopt: field<boolean>(boolean).default(false),
    retainOnDelete: retainOnDelete(),
  },
  {
    mac: output<string>(),
    ifindex: output<number>(),
    adopted: output<boolean>(),
    /** The owner mark, the device's alias (kernel/mark): delete removes only the device carrying it. None when retained. */
    mark: stateOnly<string | undefined>(),
    /** Peers whose FDB entry refresh found missing on the host; the next update puts them back. */
    missingRemotes: stateOnly<string[]>(),
  },
);
