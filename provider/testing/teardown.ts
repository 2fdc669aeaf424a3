import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { releaseManagementAddresses } from "./addressing";
import { LAB_ENV, namespaceLink, sleep, sleepSync } from "./commands";
import {
  describeSegment,
  isLabAlive,
  type LabHostState,
  removeLabState,
  removeSegmentState,
  segmentsOf,
} from "./state";

/**
 * Teardown of a lab: kill every process in its namespaces, let the kernel free
 * them, remove what remains on this machine (its root veth, directory and
 * record). Written once as a generator yielding how long to wait, so the same
 * steps run asynchronously from stop() and synchronously from an `exit` handler.
 */

// Namespace inode numbers are reused once a namespace is freed, so a recorded id is
// only trusted while one of the lab's own recorded processes still holds it.
const holds = (pids: number[], kind: "mnt" | "net", ns: string) =>
  pids.some((p) => p > 0 && namespaceLink(p, kind) === ns);

/** The lab's namespaces, as links: what its processes are recognized by. */
function namespacesOf(state: LabHostState): { mntNs: Set<string>; netNs: Set<string> } {
  const mine = [state.holderPid, state.sshdPid];
  const netNs = new Set<string>();
  const mntNs = new Set<string>();
  if (holds(mine, "mnt", state.mntNs)) mntNs.add(state.mntNs);
  if (holds(mine, "net", state.netNs)) netNs.add(state.netNs);
  if (holds([state.lanPid], "net", state.lanNetNs)) netNs.add(state.lanNetNs);
  // Guard against ever matching this machine's own namespaces (a corrupt state file).
  for (const kind of ["mnt", "net"] as const) {
    const own = namespaceLink(process.pid, kind);
    const init = namespaceLink(1, kind);
    for (const set of [mntNs, netNs]) {
      if (own) set.delete(own);
      if (init) set.delete(init);
    }
  }
  // Named namespaces made inside the lab are bind mounts in its private /run; processes
  // started there with `ip netns exec` get their own mount namespace, so they are found
  // by network namespace instead. /proc/PID/root resolves paths in the lab's mount view.
  if (isLabAlive(state)) {
    const dir = `/proc/${state.holderPid}/root/run/netns`;
    try {
      for (const f of fs.readdirSync(dir)) {
        try {
          netNs.add(`net:[${fs.statSync(path.join(dir, f)).ino}]`);
        } catch {
          // not a namespace file
        }
      }
    } catch {
      // holder just went away
    }
  }
  return { mntNs, netNs };
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

function* teardownSteps(state: LabHostState, log: (l: string) => void): Generator<number, void, void> {
  // A segment the CLI linked the lab to goes with it, as linkLabHosts' does with
  // any member's stop(): killing its switch frees the switch namespace and with
  // it every lab's end of the segment.
  for (const segment of segmentsOf(state)) {
    const holding = () => namespaceLink(segment.pid, "net") === segment.netNs;
    if (holding()) killQuietly(segment.pid);
    const deadline = Date.now() + 2000;
    while (holding() && Date.now() < deadline) yield 10;
    if (holding()) log(`segment ${segment.subnet}: switch pid ${segment.pid} still alive after 2 s`);
    else {
      removeSegmentState(segment);
      log(`removed segment ${describeSegment(segment)}`);
    }
  }
  const { mntNs, netNs } = namespacesOf(state);
  // The holder and the LAN peer go last: while they live, they (and the bind mounts in
  // the holder's mount namespace) keep every namespace above alive, so no number in the
  // sets can be freed and handed to a new namespace of someone else's while we kill by it.
  const keepers = [
    holds([state.holderPid], "mnt", state.mntNs) ? state.holderPid : 0,
    holds([state.lanPid], "net", state.lanNetNs) ? state.lanPid : 0,
  ].filter((p) => p > 0);
  const deadline = Date.now() + 5000;
  for (;;) {
    const victims: number[] = [];
    for (const entry of fs.readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      const pid = Number(entry);
      if (pid === 1 || pid === process.pid || keepers.includes(pid)) continue;
      const m = namespaceLink(pid, "mnt");
      const n = namespaceLink(pid, "net");
      if ((m && mntNs.has(m)) || (n && netNs.has(n))) victims.push(pid);
    }
    if (victims.length === 0) break;
    if (Date.now() > deadline) {
      log(`lab ${state.name}: processes still alive after 5 s: ${victims.join(" ")}`);
      break;
    }
    for (const pid of victims) killQuietly(pid);
    yield 10;
  }
  const stillKeeping = () =>
    keepers.filter((p) => namespaceLink(p, "mnt") === state.mntNs || namespaceLink(p, "net") === state.lanNetNs);
  for (const pid of stillKeeping()) killQuietly(pid);
  const keeperDeadline = Date.now() + 5000;
  while (stillKeeping().length > 0 && Date.now() < keeperDeadline) yield 10;
  // The kernel frees the namespaces (and the veth ends in them) asynchronously.
  const vethDeadline = Date.now() + 2000;
  while (linkExists(state.rootVeth) && Date.now() < vethDeadline) yield 20;
  if (linkExists(state.rootVeth)) {
    const r = spawnSync("ip", ["link", "del", state.rootVeth], { env: LAB_ENV, encoding: "utf8" });
    if (r.status !== 0 && !/Cannot find device/.test(r.stderr)) {
      log(`lab ${state.name}: ip link del ${state.rootVeth}: ${r.stderr.trim()}`);
    }
  }
  // A state file is data from disk: never let it point rm at anything but a lab dir.
  if (
    path.isAbsolute(state.dir) &&
    path.basename(state.dir).startsWith("pulumi-netns-lab-") &&
    !state.dir.includes("..")
  ) {
    fs.rmSync(state.dir, { recursive: true, force: true });
  }
  removeLabState(state);
  releaseManagementAddresses(state.rootAddress);
}

function linkExists(name: string): boolean {
  // The root veth lives in this process's network namespace, where `ip` runs.
  const r = spawnSync("ip", ["-j", "link", "show", "dev", name], { env: LAB_ENV, encoding: "utf8" });
  return r.status === 0;
}

/** Tears the lab down, blocking: for exit handlers. */
export function teardownLabSync(state: LabHostState, log: (l: string) => void): void {
  for (const wait of teardownSteps(state, log)) sleepSync(wait);
}

export async function teardownLab(state: LabHostState, log: (l: string) => void): Promise<void> {
  for (const wait of teardownSteps(state, log)) await sleep(wait);
}
