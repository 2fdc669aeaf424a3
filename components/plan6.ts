import * as ipaddr from "ipaddr.js";
import { fromBig, toBig } from "../provider/kernel/cidr";
import { ipv6Address, ipv6Network, show } from "../provider/validate";

/**
 * The IPv6 half of a dual-stack IsolatedNetwork's plan (`subnet6`,
 * `gateway6`, each namespace's `address6`), as plain data. Addresses are
 * BigInts here; text is always the kernel's spelling (RFC 5952: lower case,
 * the longest run of zeros compressed), so what the plan says, what state
 * holds and what `ip -j addr` prints are the same strings.
 */

/**
 * A dual-stack network's IPv6 subnet: a unique local or global unicast network
 * in CIDR form, host bits zero, prefix /48 to /126 (room for a gateway and a
 * namespace), e.g. "fd00:15::/64".
 */
export function ipv6Subnet(v: unknown): string | undefined {
  const reason = ipv6Network(v);
  if (reason) return reason;
  const prefix = (v as string).split("/")[1];
  if (Number(prefix) < 48 || Number(prefix) > 126)
    return `${show(v)} has prefix length ${show(prefix)}; it must be 48-126`;
  return notUnicastNetwork(v as string);
}

/**
 * Why an IPv6 network (checked text) is not wholly unique local or global
 * unicast: outside 2000::/3 and fc00::/7, or by the range its first or last
 * address falls in (ipaddr.js's names); undefined when it is.
 */
export function notUnicastNetwork(cidr: string): string | undefined {
  const [address, prefix] = cidr.split("/");
  const last = fromBig(toBig(address) + (1n << BigInt(128 - Number(prefix))) - 1n);
  const within = (space: string, bits: number) =>
    Number(prefix) >= bits && ipaddr.IPv6.parse(address).match(ipaddr.IPv6.parse(space), bits);
  if (!within("2000::", 3) && !within("fc00::", 7) && !within("fe80::", 10) && !within("ff00::", 8))
    return `${show(cidr)} is not inside the global unicast (2000::/3) or unique local (fc00::/7) space, not a unique local (fd00::/8) or global unicast one`;
  for (const a of [address, last]) {
    const range = ipaddr.IPv6.parse(a).range();
    if (range !== "uniqueLocal" && range !== "unicast")
      return `${show(cidr)} is ${a === address ? "" : `not all unicast (its last address ${a} is) `}${RANGE_WORDS[range] ?? `a ${range}`} network, not a unique local (fd00::/8) or global unicast one`;
  }
  return undefined;
}

const RANGE_WORDS: Record<string, string> = {
  linkLocal: "a link-local",
  ipv4Mapped: "an IPv4-mapped",
  multicast: "a multicast",
  reserved: "a reserved",
  teredo: "a Teredo",
  rfc6052: "an IPv4-translated (64:ff9b::/96)",
  "6to4": "a 6to4",
  deprecatedSiteLocal: "a site-local (fec0::/10, deprecated)",
  unspecified: "the unspecified (::/128)",
};

export interface Ipv6Plan {
  subnet: string;
  prefixLength: number;
  gateway: string;
  /** Namespace name -> address, without prefix. */
  addresses: Map<string, string>;
}

/**
 * Plans the IPv6 side: the gateway (default: the subnet's first address after
 * the subnet-router anycast one, `::1`) and an address per namespace: the one
 * given, else one derived from `hash(name)` alone (the next one when that is
 * the gateway's). Two namespaces that meet are refused, naming address6 to
 * pin one of them, never moved: a moved address is one the namespace that
 * keeps it must take over from a namespace still there, which the same `up`
 * deletes only afterwards, and IPv6 duplicate address detection then fails it
 * for good (as an attacker's trial of PodNetwork found; see podPlan6). So
 * adding or removing a namespace never moves another's IPv6 address.
 * Problems are pushed, named by field; undefined when any.
 */
export function planIpv6(
  spec: { subnet6?: unknown; gateway6?: unknown },
  namespaces: Array<{ field: string; name: string; address6?: unknown }>,
  hash: (name: string) => number,
  problems: string[],
): Ipv6Plan | undefined {
  const before = problems.length;
  const reason = (field: string, r: string | undefined) => r && problems.push(`${field}: ${r}`);
  if (spec.subnet6 === undefined) {
    if (spec.gateway6 !== undefined)
      problems.push(`gateway6: ${show(spec.gateway6)} needs subnet6 (the IPv6 network it is in)`);
    for (const ns of namespaces)
      if (ns.address6 !== undefined)
        problems.push(`${ns.field}.address6: ${show(ns.address6)} needs subnet6 (the network's IPv6 subnet)`);
    return undefined;
  }
  if (reason("subnet6", ipv6Subnet(spec.subnet6))) return undefined;
  const subnet = spec.subnet6 as string;
  const prefixLength = Number(subnet.split("/")[1]);
  const network = toBig(subnet.split("/")[0]);
  const first = network + 1n;
  const last = network + (1n << BigInt(128 - prefixLength)) - 1n;
  const inside = (n: bigint) => n >= first && n <= last;
  const usable = (field: string, value: unknown): bigint | undefined => {
    if (reason(field, ipv6Address(value))) return undefined;
    const n = toBig(value as string);
    if (!inside(n)) problems.push(`${field}: ${show(value)} is not a usable address of ${subnet}`);
    return inside(n) ? n : undefined;
  };

  const gateway = spec.gateway6 === undefined ? first : usable("gateway6", spec.gateway6);
  const taken = new Map<bigint, string>();
  if (gateway !== undefined) taken.set(gateway, "the gateway's (gateway6)");
  const chosen = new Map<string, bigint>();
  for (const ns of namespaces) {
    if (ns.address6 === undefined) continue;
    const n = usable(`${ns.field}.address6`, ns.address6);
    if (n === undefined) continue;
    if (taken.has(n)) problems.push(`${ns.field}.address6: ${show(ns.address6)} is already ${taken.get(n)}`);
    else {
      taken.set(n, `namespace ${show(ns.name)}'s address6`);
      chosen.set(ns.name, n);
    }
  }
  // Derived addresses come from the low 32 bits' worth of the subnet (all of it when smaller).
  const span = last - first + 1n < 1n << 32n ? last - first + 1n : 1n << 32n;
  for (const ns of namespaces) {
    if (ns.address6 !== undefined) continue;
    let n = first + (BigInt(hash(ns.name)) % span);
    // The gateway is fixed by the network, not by other namespaces: stepping past it moves nobody later.
    if (n === gateway) n = n === first + span - 1n ? first : n + 1n;
    const other = taken.get(n);
    if (other) {
      problems.push(
        `${ns.field}.address6: namespace ${show(ns.name)}'s IPv6 address derived from its name, ${fromBig(n)}, is already ${other}; pin one of them with address6 (any other usable address of ${subnet})`,
      );
      continue;
    }
    taken.set(n, `namespace ${show(ns.name)}'s address6 (derived from its name)`);
    chosen.set(ns.name, n);
  }
  if (problems.length > before || gateway === undefined) return undefined;
  return {
    subnet,
    prefixLength,
    gateway: fromBig(gateway),
    addresses: new Map([...chosen].map(([name, n]) => [name, fromBig(n)])),
  };
}
