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
  /** IPv4 addresses in CIDR form, in the kernel's order. */
  addresses: string[];
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
  linkinfo?: { info_kind?: string };
  group?: string;
  addr_info?: Array<{ family: string; local: string; prefixlen: number }>;
}

/** Prints the interface as JSON, or nothing when it (or its namespace) is absent. */
export function printLink(ns: Namespace, name: string): string {
  return ns.ifExists(ns.ip("-d", "-j", ...showLink(name)));
}

export function parseLink(text: string, what: string): LinkState | undefined {
  const entry = parseIpJson<IpAddrJson>(text, what)[0];
  if (!entry) return undefined;
  return {
    ifname: entry.ifname,
    ifindex: entry.ifindex,
    mac: entry.address ?? "",
    mtu: entry.mtu,
    up: entry.flags?.includes("UP") ?? false,
    master: entry.master,
    kind: entry.linkinfo?.info_kind,
    ...(entry.group !== undefined && entry.group !== "default" ? { group: Number(entry.group) } : {}),
    addresses: (entry.addr_info ?? []).filter((a) => a.family === "inet").map((a) => `${a.local}/${a.prefixlen}`),
  };
}

/** The changes that take an interface from `current` addresses to `wanted` ones (IPv4 CIDR strings). */
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
/** Shows the interface as `ip -d -j addr show` does (run it with those options). */
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
