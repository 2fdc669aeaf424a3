import { ip, namespaceExists } from "./exec";
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

/** Commands that take an interface from `current` addresses to `wanted` ones (IPv4 CIDR strings). */
export function addressSteps(
  namespace: string | undefined,
  dev: string,
  current: string[],
  wanted: string[],
): string[] {
  const steps: string[] = [];
  for (const a of current) if (!wanted.includes(a)) steps.push(ip(namespace, "addr", "del", a, "dev", dev));
  for (const a of wanted) if (!current.includes(a)) steps.push(ip(namespace, "addr", "replace", a, "dev", dev));
  return steps;
}

export function setUpStep(namespace: string | undefined, dev: string, up: boolean): string {
  return ip(namespace, "link", "set", "dev", dev, up ? "up" : "down");
}

export function setMtuStep(namespace: string | undefined, dev: string, mtu: number): string {
  return ip(namespace, "link", "set", "dev", dev, "mtu", mtu);
}

export function setMasterStep(namespace: string | undefined, dev: string, bridge: string | undefined): string {
  return bridge
    ? ip(namespace, "link", "set", "dev", dev, "master", bridge)
    : ip(namespace, "link", "set", "dev", dev, "nomaster");
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
