import { command } from "../shell";
import type { Remote } from "../transport";
import { ip, ipBatch, NETNS_RUN_DIR, namespaceExists, SECTION } from "./exec";
import { parseIpJson } from "./json";
import { deleteLinkScript } from "./link";

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

interface IpVeth {
  ifname: string;
  /** The peer's ifindex in its own namespace. */
  link_index?: number;
  /** The peer's namespace, as an id of this namespace's `ip netns list-id`. */
  link_netnsid?: number;
}

interface IpNsId {
  nsid: number;
  /** Absent for a namespace without a name in /var/run/netns (the host's own, from a named one). */
  name?: string;
}

// The kernel takes a deleted namespace's interfaces down within milliseconds;
// the bound only matters if an unrelated interface happens to hold a peer's index.
const PEER_WAIT_POLLS = 100;
const PEER_WAIT_SLEEP = "0.01";
const DELETED = "deleted";

/**
 * Deletes a namespace (one already gone is not an error) and returns once the
 * veth peers of its interfaces are gone from the other namespaces too. The
 * kernel destroys a deleted namespace's interfaces, and with them their peers,
 * asynchronously, so without the wait a peer could outlive the delete for a few
 * milliseconds, and a new pair with the same name could fail to be made. Peers
 * are identified by index (`ip link show dev ifN`, iproute2's spelling of an
 * interface known only by its index).
 *
 * A namespace that a process still runs in outlives `ip netns del`, and so
 * would its links: there, the veths are deleted one by one first.
 */
export async function deleteNamespace(remote: Remote, name: string): Promise<void> {
  // One `ip -j -batch` prints one line of JSON per command. A read that fails (an entry
  // in /var/run/netns that is no namespace any more) does not stop the delete.
  const read = ipBatch(
    name,
    [
      ["link", "show", "type", "veth"],
      ["netns", "list-id"],
    ],
    ["-j"],
  );
  const idle = `[ -z "$(${command("ip", "netns", "pids", name)} 2>/dev/null)" ]`;
  const result = await remote.run(
    `if ${namespaceExists(name)}; then { ${read} ; } 2>/dev/null; echo ${SECTION}; if ${idle}; then ${command("ip", "netns", "del", name)} && echo ${DELETED}; fi; fi`,
  );
  const [json, rest] = result.stdout.split(`${SECTION}\n`);
  if (rest === undefined) return; // it was already gone
  const [vethText = "", idText = ""] = json.trim().split("\n");
  let veths: IpVeth[] = [];
  let nsNames = new Map<number, string | undefined>();
  try {
    veths = parseIpJson<IpVeth>(vethText, `ip -n ${name} link show type veth`);
    nsNames = new Map(parseIpJson<IpNsId>(idText, `ip -n ${name} netns list-id`).map((n) => [n.nsid, n.name]));
  } catch {
    // Unreadable: nothing to wait for.
  }
  if (rest.trim() !== DELETED) {
    const unlink = veths.map((v) => deleteLinkScript(name, v.ifname));
    await remote.run([...unlink, command("ip", "netns", "del", name)].join(" && "));
    return;
  }
  const peers = veths
    .filter((v) => v.link_index !== undefined && v.link_netnsid !== undefined)
    .map((v) => {
      const peerNs = nsNames.get(v.link_netnsid as number);
      const probe = ip(peerNs, "link", "show", "dev", `if${v.link_index}`);
      return peerNs ? `{ ${namespaceExists(peerNs)} && ${probe}; }` : probe;
    });
  if (peers.length === 0) return;
  const present = peers.map((p) => `${p} >/dev/null 2>&1`).join(" || ");
  await remote.run(
    `i=0; while [ $i -lt ${PEER_WAIT_POLLS} ] && { ${present}; }; do sleep ${PEER_WAIT_SLEEP}; i=$((i+1)); done`,
  );
}

export { NETNS_RUN_DIR };
