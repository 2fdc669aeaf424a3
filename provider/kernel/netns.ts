import { command } from "../shell";
import { parseIpJson } from "./json";
import { deleteLink } from "./link";
import { markNamespace } from "./mark";
import { at, isPresent } from "./namespace";
import { bestEffort, creation, type IpArgs, type Script, script, sequence, step } from "./script";
import { forgetRecordsStep } from "./sysctl";

export interface NamespaceState {
  exists: boolean;
  loopbackUp: boolean;
  /** The alias of its `lo`: this package's owner mark on a namespace it made (./mark). */
  mark?: string;
}

interface IpLink {
  ifname: string;
  flags?: string[];
  ifalias?: string;
}

/** Reads whether a namespace exists and the state of its loopback (run them with `readAll`). */
export function readNamespace(name: string): string[] {
  return [at(name).printPresence(), at(name).ip("-j", "link", "show", "dev", "lo")];
}

/** The outputs of `readNamespace`. */
export function parseNamespace([presence, links = ""]: string[], name: string): NamespaceState {
  if (!isPresent(presence)) return { exists: false, loopbackUp: false };
  const lo = parseIpJson<IpLink>(links, `ip -n ${name} link show lo`)[0];
  return { exists: true, loopbackUp: lo?.flags?.includes("UP") ?? false, mark: lo?.ifalias };
}

export const setLoopback = (up: boolean): IpArgs => ["link", "set", "lo", up ? "up" : "down"];

/**
 * Adds a namespace and (optionally) brings its loopback up, as one change: if
 * the loopback cannot come up, the namespace is deleted again.
 */
export function addNamespace(name: string, loopbackUp: boolean, mark?: string): Script {
  const up = loopbackUp ? [at(name).ip(...setLoopback(true))] : [];
  return creation(
    command("ip", "netns", "add", name),
    [...(mark ? [markNamespace(at(name), mark)] : []), ...up],
    [deleteNamespace(name)],
  );
}

/** Deletes a namespace; one already gone is not an error. */
export function deleteNamespace(name: string): string {
  return at(name).ifExists(command("ip", "netns", "del", name));
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

/** What the first part of a delete found (see `deleteIfIdle`). */
export interface Deletion {
  /** The namespace was there to delete. */
  existed: boolean;
  /** It is gone now; false when a process still runs in it, so `ip netns del` was not tried. */
  deleted: boolean;
  /** Its veths, as they were before the delete. */
  veths: IpVeth[];
  /** The names of the namespaces its veths' peers are in, by its ids for them. */
  peerNamespaces: Map<number, string | undefined>;
  /** Its interfaces' global addresses (without prefix), as they were before the delete. */
  addresses: string[];
}

/**
 * Reads a namespace's veths and where their peers are, then deletes it unless
 * a process still runs in it (a namespace in use outlives `ip netns del`, and
 * so would its links). One `ip -j -batch` prints one line of JSON per command;
 * a read that fails (an entry in /var/run/netns that is no namespace any more)
 * does not stop the delete. Parse the outputs with `parseDeletion`.
 */
export function deleteIfIdle(name: string): Script {
  const ns = at(name);
  const veths = ns.ipBatch(
    [
      ["link", "show", "type", "veth"],
      ["netns", "list-id"],
      ["addr", "show", "scope", "global"],
    ],
    ["-j"],
  );
  const idle = `[ -z "$(${command("ip", "netns", "pids", name)} 2>/dev/null)" ]`;
  // Its sysctl records go with it (the inode they are named by is the next namespace's).
  const del = ns.ifExists(`if ${idle}; then ${forgetRecordsStep(ns)}; ${command("ip", "netns", "del", name)}; fi`);
  return script([
    bestEffort(ns.printPresence()),
    bestEffort(ns.ifExists(veths)),
    step(del),
    bestEffort(ns.printPresence()),
  ]);
}

export function parseDeletion([before, json = "", , after = ""]: string[], name: string): Deletion {
  const deletion: Deletion = {
    existed: isPresent(before),
    deleted: false,
    veths: [],
    peerNamespaces: new Map(),
    addresses: [],
  };
  if (!deletion.existed) return deletion;
  deletion.deleted = !isPresent(after);
  const [vethText = "", idText = "", addrText = ""] = json.trim().split("\n");
  try {
    deletion.veths = parseIpJson<IpVeth>(vethText, `ip -n ${name} link show type veth`);
    const ids = parseIpJson<IpNsId>(idText, `ip -n ${name} netns list-id`);
    deletion.peerNamespaces = new Map(ids.map((n) => [n.nsid, n.name]));
    deletion.addresses = parseIpJson<{ addr_info?: Array<{ local?: string }> }>(addrText, `ip -n ${name} addr show`)
      .flatMap((l) => l.addr_info ?? [])
      .flatMap((a) => (typeof a.local === "string" ? [a.local] : []));
  } catch {
    // Unreadable: nothing to wait for.
  }
  return deletion;
}

/**
 * What a namespace's delete took along that other resources may declare: its
 * veths (each with its peer, wherever that is). The kernel removes them, and
 * the routes over them, with the namespace; a VethPair that names the
 * namespace by a plain string has no dependency the engine sees, so its state
 * still says it exists. Only the veths `wanted` (still declared) are named;
 * undefined when there are none.
 */
export function takenAlong(
  deletion: Deletion,
  name: string,
  host: string,
  wanted: (veth: string) => boolean = () => true,
): string | undefined {
  const taken = deletion.existed ? deletion.veths.filter((v) => wanted(v.ifname)) : [];
  if (taken.length === 0) return undefined;
  const peer = (v: IpVeth) => {
    if (v.link_netnsid === undefined) return "peer in the same namespace";
    const ns = deletion.peerNamespaces.get(v.link_netnsid);
    return ns === undefined ? "peer in the host namespace" : `peer in namespace ${JSON.stringify(ns)}`;
  };
  const veths = taken.map((v) => `veth ${JSON.stringify(v.ifname)} (${peer(v)})`).join(", ");
  return (
    `namespace ${JSON.stringify(name)} on ${host} took with it ${veths}, and the routes over them. ` +
    "The VethPair still in the program that declares it, and any Route over it, are gone from the host while their state says they exist: " +
    "declare the namespace again if the program no longer does (a replaced one is new and empty), run `pulumi refresh`, then `pulumi up`, to re-create them, or remove them from the program."
  );
}

/** For a namespace a process still runs in: deletes its veths one by one (peers go with them), then the namespace. */
export function unlinkAndDelete(name: string, deletion: Deletion): Script {
  const unlink = deletion.veths.map((v) => deleteLink(at(name), v.ifname));
  return sequence(...unlink, forgetRecordsStep(at(name)), command("ip", "netns", "del", name));
}

// The kernel takes a deleted namespace's interfaces down within milliseconds;
// the bound only matters if an unrelated interface happens to hold a peer's index.
const PEER_WAIT_POLLS = 100;
const PEER_WAIT_SLEEP = "0.01";

/**
 * Returns once the veth peers of a deleted namespace's interfaces are gone
 * from the other namespaces too (nothing to wait for: no steps). The kernel
 * destroys a deleted namespace's interfaces, and with them their peers,
 * asynchronously, so without the wait a peer could outlive the delete for a
 * few milliseconds, and a new pair with the same name could fail to be made.
 * Peers are identified by index (`ip link show dev ifN`, iproute2's spelling
 * of an interface known only by its index).
 */
export function waitForPeers(deletion: Deletion): Script {
  const peers = deletion.veths
    .filter((v) => v.link_index !== undefined && v.link_netnsid !== undefined)
    .map((v) => {
      const peerNs = at(deletion.peerNamespaces.get(v.link_netnsid as number));
      const probe = `${peerNs.ip("link", "show", "dev", `if${v.link_index}`)} >/dev/null 2>&1`;
      return peerNs.name ? `if ${peerNs.exists()}; then ${probe}; else false; fi` : probe;
    });
  if (peers.length === 0) return sequence();
  const present = peers.map((p) => `{ ${p}; }`).join(" || ");
  return sequence(
    `i=0; while [ $i -lt ${PEER_WAIT_POLLS} ] && { ${present}; }; do sleep ${PEER_WAIT_SLEEP}; i=$((i+1)); done`,
  );
}
