import { type IpArgs, ip, namespaceExists } from "./exec";
import { parseIpJson } from "./json";

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
}

interface IpAddrJson {
  ifname: string;
  ifindex: number;
  address?: string;
  mtu: number;
  flags?: string[];
  master?: string;
  linkinfo?: { info_kind?: string };
  addr_info?: Array<{ family: string; local: string; prefixlen: number }>;
}

/** Prints the interface as JSON, or nothing when it (or its namespace) is absent. */
export function showLinkScript(namespace: string | undefined, name: string): string {
  return `if ${namespaceExists(namespace)}; then ${ip(namespace, "-d", "-j", "addr", "show", "dev", name)}; fi`;
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
    addresses: (entry.addr_info ?? []).filter((a) => a.family === "inet").map((a) => `${a.local}/${a.prefixlen}`),
  };
}

/** `ip` arguments (after `ip [-n NS]`) that take an interface from `current` addresses to `wanted` ones (IPv4 CIDR strings). */
export function addressOps(dev: string, current: string[], wanted: string[]): IpArgs[] {
  const ops: IpArgs[] = [];
  for (const a of current) if (!wanted.includes(a)) ops.push(["addr", "del", a, "dev", dev]);
  for (const a of wanted) if (!current.includes(a)) ops.push(["addr", "replace", a, "dev", dev]);
  return ops;
}

export const upOp = (dev: string, up: boolean): IpArgs => ["link", "set", "dev", dev, up ? "up" : "down"];
export const mtuOp = (dev: string, mtu: number): IpArgs => ["link", "set", "dev", dev, "mtu", mtu];
export const masterOp = (dev: string, bridge: string | undefined): IpArgs =>
  bridge ? ["link", "set", "dev", dev, "master", bridge] : ["link", "set", "dev", dev, "nomaster"];
/** Prints the interface as `ip -d -j addr show` does (run it with those options, e.g. in `ipBatch`). */
export const showLinkOp = (dev: string): IpArgs => ["addr", "show", "dev", dev];

/** Commands that take an interface from `current` addresses to `wanted` ones (IPv4 CIDR strings). */
export function addressSteps(
  namespace: string | undefined,
  dev: string,
  current: string[],
  wanted: string[],
): string[] {
  return addressOps(dev, current, wanted).map((op) => ip(namespace, ...op));
}

export function setUpStep(namespace: string | undefined, dev: string, up: boolean): string {
  return ip(namespace, ...upOp(dev, up));
}

export function setMtuStep(namespace: string | undefined, dev: string, mtu: number): string {
  return ip(namespace, ...mtuOp(dev, mtu));
}

/** Deletes an interface; one already gone (or whose namespace is gone) is not an error. */
export function deleteLinkScript(namespace: string | undefined, name: string): string {
  return `if ${namespaceExists(namespace)} && ${ip(namespace, "link", "show", "dev", name)} >/dev/null 2>&1; then ${ip(namespace, "link", "del", "dev", name)}; fi`;
}

/** Same address sets, ignoring order. */
export function sameAddresses(a: string[] | undefined, b: string[] | undefined): boolean {
  const x = [...(a ?? [])].sort();
  const y = [...(b ?? [])].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}
