import { parseIpJson } from "./json";
import type { Namespace } from "./namespace";

/**
 * A VXLAN device (RFC 7348) with unicast peers, as flannel's and the CNI
 * docs' head-end replication: one all-zeros FDB entry per peer makes the
 * device send every broadcast and unknown unicast frame (ARP included) to
 * each peer over UDP; replies teach it the rest (learning stays on).
 */

/** The MAC of a flood entry: every frame the FDB has no better entry for goes to its dst. */
export const FLOOD_MAC = "00:00:00:00:00:00";

/**
 * What the encapsulation adds in front of each frame over IPv4: outer IPv4
 * (20) + UDP (8) + VXLAN (8) + the inner Ethernet header (14). The kernel
 * gives a device with an underlay `dev` that device's MTU minus this.
 */
export const VXLAN_OVERHEAD = 50;

/** The IANA port of VXLAN (the kernel's default is Linux's old 8472). */
export const VXLAN_PORT = 4789;

export interface VxlanSpec {
  name: string;
  vni: number;
  dstPort: number;
  local?: string;
  /** The underlay device (`dev`). */
  device?: string;
  /** The peers: IPv6 ones without `local` make the device IPv6 (underlayIsIpv6). */
  remotes?: readonly string[];
}

/**
 * Whether the device's socket is IPv6, which is fixed when it is made: by
 * `local` when given, else by the peers (any IPv6 one). A device of the other
 * family refuses a peer's FDB entry ("Address family not supported by protocol").
 */
export const underlayIsIpv6 = (local: string | undefined, remotes: readonly string[] = []): boolean =>
  local !== undefined ? local.includes(":") : remotes.some((r) => r.includes(":"));

/**
 * `ip link add ... type vxlan`: the VNI and port always, `local` and the
 * underlay when given. IPv6 peers without `local`: `local ::`, which only
 * makes the socket IPv6 (the source is still chosen by route; `ip -d` then
 * shows no local).
 */
export function addVxlan(ns: Namespace, v: VxlanSpec): string {
  const local = v.local ?? (underlayIsIpv6(undefined, v.remotes) ? "::" : undefined);
  return ns.ip(
    "link",
    "add",
    "name",
    v.name,
    "type",
    "vxlan",
    "id",
    v.vni,
    "dstport",
    v.dstPort,
    ...(local !== undefined ? ["local", local] : []),
    ...(v.device !== undefined ? ["dev", v.device] : []),
  );
}

/** Adds the flood entry for one peer (`append`: a device holds several entries for the one MAC). */
export const appendFdb = (ns: Namespace, dev: string, remote: string): string =>
  ns.exec("bridge", "fdb", "append", FLOOD_MAC, "dst", remote, "dev", dev);

/** Removes the flood entry for one peer; the other peers' entries stay. */
export const deleteFdb = (ns: Namespace, dev: string, remote: string): string =>
  ns.exec("bridge", "fdb", "del", FLOOD_MAC, "dst", remote, "dev", dev);

/** The device's FDB as JSON (its namespace gone: nothing). */
export const printFdb = (ns: Namespace, dev: string): string =>
  ns.ifExists(ns.exec("bridge", "-j", "fdb", "show", "dev", dev));

/** The peers of `bridge -j fdb show dev X`: the dst of each flood entry (not learned entries, not the bridge's). */
export function parseFdbRemotes(text: string, what: string): string[] {
  return parseIpJson<{ mac?: string; dst?: string }>(text, what)
    .filter((e) => e.mac === FLOOD_MAC && typeof e.dst === "string")
    .map((e) => e.dst as string);
}

interface VxlanInfoJson {
  linkinfo?: {
    info_kind?: string;
    info_data?: { id?: number; port?: number; local?: string; local6?: string; link?: string };
  };
}

/** What `ip -d -j link/addr show` says of a VXLAN device: undefined for no device or another kind. */
export function parseVxlanInfo(text: string): Omit<VxlanSpec, "name"> | undefined {
  const [entry] = parseIpJson<VxlanInfoJson>(text, "a VXLAN device");
  const data = entry?.linkinfo?.info_kind === "vxlan" ? entry.linkinfo.info_data : undefined;
  if (!data || typeof data.id !== "number") return undefined;
  const local = data.local ?? data.local6;
  return {
    vni: data.id,
    dstPort: data.port ?? 8472,
    ...(local !== undefined ? { local } : {}),
    ...(data.link !== undefined ? { device: data.link } : {}),
  };
}
