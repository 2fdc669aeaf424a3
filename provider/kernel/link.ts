import { parseIpJson } from "./json";
import type { Namespace } from "./namespace";
import type { IpArgs } from "./script";

/** What the host says about one interface (from `ip -d -j addr show`). */
export interface LinkState {
  ifname: string;
  ifindex: number;
  mac: string;
  mtu: number;
  up: boolean;
  /** The bridge this interface is a port of. */
  master?: string;
  /** "veth", "bridge", ... */
  kind?: string;
  /** IPv4 and IPv6 addresses in CIDR form, in the kernel's order (IPv6: those `ownAddress` keeps). */
  addresses: string[];
  /** The link's alias: this package's owner mark on what it made (./mark). */
  ifalias?: string;
  /** Interface group; absent: the kernel's default (0). */
  group?: number;
}

interface IpAddrJson {
  ifname: string;
  ifindex: number;
  address?: string;
  mtu: number;
  flags?: string[];
  master?: string;
  ifalias?: string;
  linkinfo?: { info_kind?: string };
  group?: string;
  addr_info?: AddrInfo[];
}

interface AddrInfo {
  family: string;
  local: string;
  prefixlen: number;
  /** "0" with `-N`, else "global"; "253"/"link" for the kernel's fe80:: address. */
  scope?: string;
  tentative?: boolean;
  dadfailed?: boolean;
  /** Given a lifetime: router advertisement (SLAAC) or DHCPv6 made it. */
  dynamic?: boolean;
  /** The base of SLAAC privacy addresses. */
  mngtmpaddr?: boolean;
}

/**
 * The addresses an interface's `addresses` field holds: every IPv4 one, and
 * the IPv6 ones of global scope given by hand: not the kernel's link-local
 * (fe80::), not those the kernel made from router advertisements (`dynamic`,
 * `mngtmpaddr`: they come and go by themselves), not one whose duplicate
 * address detection failed (unusable: the next update adds it again, and
 * fails naming it).
 */
function ownAddress(a: AddrInfo): boolean {
  if (a.family === "inet") return true;
  if (a.family !== "inet6") return false;
  return (a.scope === "0" || a.scope === "global") && !a.dynamic && !a.mngtmpaddr && !a.dadfailed;
}

/**
 * The options of every read `parseLinks` parses: JSON, details (kind, group),
 * and numbers (`-N`): without it `ip` prints a group by the name
 * /etc/iproute2/group gives it ("default" for 0), which the package cannot map
 * back without the host's file. `-N` also turns scopes and link types into
 * numbers; nothing here reads those.
 */
export const LINK_READ_OPTIONS = ["-N", "-d", "-j"];

/** Prints the interface as JSON, or nothing when it (or its namespace) is absent. */
export function printLink(ns: Namespace, name: string): string {
  return ns.ifExists(ns.ip(...LINK_READ_OPTIONS, ...showLink(name)));
}

export function parseLink(text: string, what: string): LinkState | undefined {
  return parseLinks(text, what)[0];
}

/** Every interface of `ip -j addr show` (`-d` for kind and group, `-N` for the group's number: LINK_READ_OPTIONS). */
export function parseLinks(text: string, what: string): LinkState[] {
  return parseIpJson<IpAddrJson>(text, what).map((entry) => linkState(entry, what));
}

/** The group's number; undefined for the default (0). "default" is what a read without `-N` prints for 0. */
function groupOf(entry: IpAddrJson, what: string): number | undefined {
  if (entry.group === undefined || entry.group === "default" || entry.group === "0") return undefined;
  if (/^\d+$/.test(entry.group)) return Number(entry.group);
  throw new Error(
    `${what}: interface ${entry.ifname} has group ${JSON.stringify(entry.group)}, a name from the host's /etc/iproute2/group, not a number: the read must use ip ${LINK_READ_OPTIONS.join(" ")}`,
  );
}

function linkState(entry: IpAddrJson, what: string): LinkState {
  const group = groupOf(entry, what);
  return {
    ifname: entry.ifname,
    ifindex: entry.ifindex,
    mac: entry.address ?? "",
    mtu: entry.mtu,
    up: entry.flags?.includes("UP") ?? false,
    master: entry.master,
    kind: entry.linkinfo?.info_kind,
    ...(group !== undefined ? { group } : {}),
    addresses: (entry.addr_info ?? []).filter(ownAddress).map((a) => `${a.local}/${a.prefixlen}`),
    ...(entry.ifalias !== undefined ? { ifalias: entry.ifalias } : {}),
  };
}

/** The changes that take an interface from `current` addresses to `wanted` ones (CIDR strings, either family: `ip addr` tells them apart itself). */
export function addressChanges(dev: string, current: string[], wanted: string[]): IpArgs[] {
  const changes: IpArgs[] = [];
  for (const a of current) if (!wanted.includes(a)) changes.push(["addr", "del", a, "dev", dev]);
  for (const a of wanted) if (!current.includes(a)) changes.push(["addr", "replace", a, "dev", dev]);
  return changes;
}

export const setUp = (dev: string, up: boolean): IpArgs => ["link", "set", "dev", dev, up ? "up" : "down"];
export const setGroup = (dev: string, group: number): IpArgs => ["link", "set", "dev", dev, "group", group];
export const setMtu = (dev: string, mtu: number): IpArgs => ["link", "set", "dev", dev, "mtu", mtu];
export const setMaster = (dev: string, bridge: string | undefined): IpArgs =>
  bridge ? ["link", "set", "dev", dev, "master", bridge] : ["link", "set", "dev", dev, "nomaster"];
/** Shows the interface as `ip -N -d -j addr show` does (run it with LINK_READ_OPTIONS). */
export const showLink = (dev: string): IpArgs => ["addr", "show", "dev", dev];

/** The commands that make `changes` in one namespace: none when there are none, else one `ip -batch`. */
export function applyChanges(ns: Namespace, changes: IpArgs[]): string[] {
  return changes.length ? [ns.ipBatch(changes)] : [];
}

/** Deletes an interface; one already gone (or whose namespace is gone) is not an error. */
export function deleteLink(ns: Namespace, name: string): string {
  const present = `${ns.ip("link", "show", "dev", name)} >/dev/null 2>&1`;
  return ns.ifExists(`if ${present}; then ${ns.ip("link", "del", "dev", name)}; fi`);
}

/** Same address sets, ignoring order. */
export function sameAddresses(a: string[] | undefined, b: string[] | undefined): boolean {
  const x = [...(a ?? [])].sort();
  const y = [...(b ?? [])].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/**
 * ndisc_notify=1 is arp_notify's IPv6 twin: an unsolicited neighbour
 * advertisement (override set) for each of the interface's IPv6 addresses on
 * link up and on a MAC change. A host with IPv6 disabled (ipv6.disable=1) has
 * no such file: there is nothing to announce, so it is skipped.
 */
const NDISC_NOTIFY_ON = 'n="/proc/sys/net/ipv6/conf/$1/ndisc_notify"; [ ! -e "$n" ] || echo 1 > "$n" || exit 1';

/**
 * The kernel does not advertise an IPv6 address still in duplicate address
 * detection (tentative: ~1-2 s after it is added on a link with carrier), so
 * the announcement waits for them (up to 10 s, as the CNI plugins'
 * SettleAddresses), on a link that is up only: elsewhere DAD has not started.
 * One whose DAD failed stays tentative: not waited for (settleAddresses tells it).
 */
const DAD_WAIT = [
  'if [ "$(cat "/sys/class/net/$1/operstate")" = up ]; then',
  "  j=0",
  '  while [ -n "$(ip -6 -o addr show dev "$1" scope global tentative -dadfailed 2>/dev/null)" ] && [ "$j" -lt 100 ]; do sleep 0.1; j=$((j + 1)); done',
  "fi",
].join("\n");

/**
 * Run in the interface's namespace with the name as $1 (a positional
 * parameter: the name never becomes shell text). arp_notify=1 makes the
 * kernel send a gratuitous ARP for the interface's IPv4 addresses on link up
 * and on a MAC change. The one at link up is lost: the veth's carrier, and the
 * peer's bridge port, come up a moment after (seen on 6.x). So once the link
 * has its carrier (operstate "up"; 1 s at most), the MAC is set to itself,
 * which the kernel takes as a change and announces again, now delivered.
 */
const ANNOUNCE = [
  'echo 1 > "/proc/sys/net/ipv4/conf/$1/arp_notify" || exit 1',
  NDISC_NOTIFY_ON,
  "i=0",
  'while [ "$(cat "/sys/class/net/$1/operstate")" != up ] && [ "$i" -lt 20 ]; do sleep 0.05; i=$((i + 1)); done',
  DAD_WAIT,
  'ip link set dev "$1" address "$(cat "/sys/class/net/$1/address")"',
].join("\n");

/**
 * Has the kernel announce `dev`'s IPv4 addresses (gratuitous ARP), so that a
 * neighbour whose cache still holds an old MAC for one of them (the
 * interface was re-created, or the address moved) reaches it at once instead
 * of after ~20 s of failed probes. As the CNI bridge plugin does.
 */
export function announce(ns: Namespace, dev: string): string {
  return ns.exec("sh", "-c", ANNOUNCE, "announce", dev);
}

/**
 * As ANNOUNCE, for a bridge's own addresses, leaving the bridge as it was
 * (arp_notify put back): the bridge may be the user's. Run with the name as
 * $1. A bridge has a carrier only once a port with one is in it (STP off: at
 * once), so a bridge without a port is skipped (nobody to tell; the VethPair
 * that attaches the first port announces then), as is one that is down after
 * the wait. A bridge whose MAC follows its ports (not set explicitly:
 * addr_assign_type 3 is "set") is skipped too: setting it, even to itself,
 * would pin it. This package's bridges have their MAC set at creation.
 */
const ANNOUNCE_BRIDGE = [
  'd="/sys/class/net/$1"',
  'c="/proc/sys/net/ipv4/conf/$1/arp_notify"',
  'n="/proc/sys/net/ipv6/conf/$1/ndisc_notify"',
  '[ -n "$(ls "$d/brif")" ] && [ "$(cat "$d/addr_assign_type")" = 3 ] || exit 0',
  "i=0",
  'while [ "$(cat "$d/operstate")" != up ] && [ "$i" -lt 20 ]; do sleep 0.05; i=$((i + 1)); done',
  '[ "$(cat "$d/operstate")" = up ] || exit 0',
  DAD_WAIT,
  'old="$(cat "$c")" && echo 1 > "$c" || exit 1',
  // IPv6 disabled: no file, nothing to put back.
  'old6=""; [ ! -e "$n" ] || { old6="$(cat "$n")" && echo 1 > "$n"; }',
  'ip link set dev "$1" address "$(cat "$d/address")"',
  "r=$?",
  'echo "$old" > "$c"',
  '[ -z "$old6" ] || echo "$old6" > "$n"',
  'exit "$r"',
].join("\n");

/**
 * Has the kernel announce bridge `dev`'s IPv4 addresses (gratuitous ARP) if it
 * has a port to send them on: a re-created bridge (a new MAC) is then reached
 * at once by the namespaces whose caches hold the old one, not after ~20 s.
 */
export function announceBridge(ns: Namespace, dev: string): string {
  return ns.exec("sh", "-c", ANNOUNCE_BRIDGE, "announce-bridge", dev);
}

/**
 * Waits (on a link that is up, its carrier at most 1 s away, then up to 10 s)
 * until no IPv6 address of global scope on `dev` is still tentative (in
 * duplicate address detection), then prints the link's IPv6 addresses as
 * JSON for `unsettled`. An address is unusable while tentative: "reachable
 * the moment up returns" needs this wait, as the CNI plugins'
 * SettleAddresses. Run with the name as $1. A link that is down prints
 * nothing: DAD has not started there, nothing to wait for.
 */
const SETTLE = [
  "i=0",
  'while [ "$(cat "/sys/class/net/$1/operstate")" != up ] && [ "$i" -lt 20 ]; do sleep 0.05; i=$((i + 1)); done',
  '[ "$(cat "/sys/class/net/$1/operstate")" = up ] || exit 0',
  DAD_WAIT,
  'ip -6 -j addr show dev "$1"',
].join("\n");

export function settleAddresses(ns: Namespace, dev: string): string {
  return ns.exec("sh", "-c", SETTLE, "settle", dev);
}

/**
 * The addresses among `wanted` (CIDR form) that `settleAddresses` printed as
 * unusable: DAD failed (another host on the segment has the address), or still
 * tentative after the wait. Nothing printed (a link that is down): none.
 */
export function unsettled(text: string, wanted: string[]): { dadFailed: string[]; tentative: string[] } {
  const found = { dadFailed: [] as string[], tentative: [] as string[] };
  if (!text.trim()) return found;
  for (const entry of parseIpJson<IpAddrJson>(text, "ip -6 addr show"))
    for (const a of entry.addr_info ?? []) {
      const cidr = `${a.local}/${a.prefixlen}`;
      if (a.family !== "inet6" || !wanted.includes(cidr)) continue;
      if (a.dadfailed) found.dadFailed.push(cidr);
      else if (a.tentative) found.tentative.push(cidr);
    }
  return found;
}

/**
 * Every IPv6 address of global scope (CIDR form) `settleAddresses` printed:
 * all of a bridge's, whose own resource is another. Not the kernel's
 * link-local one, which settleAddresses does not wait for (it may still be
 * tentative then: the CI run saw every dual-stack up fail on it).
 */
export function settledAddresses(text: string): string[] {
  if (!text.trim()) return [];
  return parseIpJson<IpAddrJson>(text, "ip -6 addr show").flatMap((entry) =>
    (entry.addr_info ?? [])
      .filter((a) => a.family === "inet6" && (a.scope === "global" || a.scope === "0"))
      .map((a) => `${a.local}/${a.prefixlen}`),
  );
}

/** Refuses what `unsettled` found, naming each address, the device and the fix. */
export function refuseUnsettled(text: string, dev: string, wanted: string[], where: string): void {
  const { dadFailed, tentative } = unsettled(text, wanted);
  const problems = [
    ...dadFailed.map(
      (a) =>
        `${a} on ${dev}: duplicate address detection failed (dadfailed): another interface on the segment has it; ` +
        `give ${dev} another address, or remove it from the other one, then run up again`,
    ),
    ...tentative.map(
      (a) =>
        `${a} on ${dev} is still tentative (in duplicate address detection) after 10 s and cannot be used yet; ` +
        "run up again once the link has its carrier",
    ),
  ];
  if (problems.length) throw new Error(`${problems.join("; ")} (${where})`);
}
