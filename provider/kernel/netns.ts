import { command } from "../shell";
import type { Remote } from "../transport";
import { ip, NETNS_RUN_DIR, namespaceExists, SECTION } from "./exec";
import { parseIpJson } from "./json";

export interface NamespaceState {
  exists: boolean;
  loopbackUp: boolean;
}

interface IpLink {
  ifname: string;
  flags?: string[];
}

/** Reads a namespace's existence and loopback state in one round trip. */
export async function readNamespace(remote: Remote, name: string): Promise<NamespaceState> {
  const result = await remote.run(
    `if ${namespaceExists(name)}; then echo present; echo ${SECTION}; ${ip(name, "-j", "link", "show", "dev", "lo")}; else echo absent; fi`,
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
  return `${add} || exit $?; ${setLoopbackScript(name, true)} || { rc=$?; ${command("ip", "netns", "del", name)}; exit $rc; }`;
}

export function setLoopbackScript(name: string, up: boolean): string {
  return ip(name, "link", "set", "lo", up ? "up" : "down");
}

/** Deletes a namespace; one already gone is not an error. */
export function deleteNamespaceScript(name: string): string {
  return `if ${namespaceExists(name)}; then ${command("ip", "netns", "del", name)}; fi`;
}

export { NETNS_RUN_DIR };
