import { command, quote } from "../shell";
import type { Remote } from "../transport";
import { parseIpJson } from "./json";

/** Where iproute2 keeps named namespaces (a compile-time constant). */
const NETNS_RUN_DIR = "/var/run/netns";

export interface NamespaceState {
  exists: boolean;
  loopbackUp: boolean;
}

interface IpLink {
  ifname: string;
  flags?: string[];
}

/** The separator between the parts of a multi-part read; never valid JSON. */
export const SECTION = "--pulumi-netns-section--";

/** Reads a namespace's existence and loopback state in one round trip. */
export async function readNamespace(remote: Remote, name: string): Promise<NamespaceState> {
  const path = quote(`${NETNS_RUN_DIR}/${name}`);
  const result = await remote.run(
    `if [ -e ${path} ]; then echo present; echo ${SECTION}; ${command("ip", "-n", name, "-j", "link", "show", "dev", "lo")}; else echo absent; fi`,
  );
  const [presence, links = ""] = result.stdout.split(`${SECTION}\n`);
  if (presence.trim() !== "present") return { exists: false, loopbackUp: false };
  const lo = parseIpJson<IpLink>(links, `ip -n ${name} link show lo`)[0];
  return { exists: true, loopbackUp: lo?.flags?.includes("UP") ?? false };
}

/**
 * Adds a namespace and (optionally) brings its loopback up, as one step: if
 * the loopback cannot come up, the namespace is deleted again.
 */
export function addNamespaceScript(name: string, loopbackUp: boolean): string {
  const add = command("ip", "netns", "add", name);
  if (!loopbackUp) return add;
  return `${add} || exit $?; ${command("ip", "-n", name, "link", "set", "lo", "up")} || { rc=$?; ${command("ip", "netns", "del", name)}; exit $rc; }`;
}

export function setLoopbackScript(name: string, up: boolean): string {
  return command("ip", "-n", name, "link", "set", "lo", up ? "up" : "down");
}

/** Deletes a namespace; one already gone is not an error. */
export function deleteNamespaceScript(name: string): string {
  return `if [ -e ${quote(`${NETNS_RUN_DIR}/${name}`)} ]; then ${command("ip", "netns", "del", name)}; fi`;
}
