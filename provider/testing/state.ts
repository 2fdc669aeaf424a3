import * as fs from "node:fs";
import * as path from "node:path";
import { namespaceLink } from "./commands";

/**
 * The record of each lab on this machine: one JSON file per lab in
 * LAB_STATE_DIR, so a lab can be found and torn down from this process or
 * another one (the CLI, or a later run after a crash).
 */

export interface LabConnection {
  host: string;
  port: number;
  user: string;
  /** OpenSSH-format ed25519 private key; a throwaway made for this lab. */
  privateKey: string;
  /** `ssh-ed25519 AAAA...` */
  hostKey: string;
}

/** What is needed to find and tear down a lab, from this process or another one. */
export interface LabHostState {
  version: 1;
  name: string;
  dir: string;
  /** Pid of the process whose exit ends the lab; null for detached (CLI) labs. */
  ownerPid: number | null;
  holderPid: number;
  lanPid: number;
  sshdPid: number;
  /** `mnt:[...]` / `net:[...]` links, so teardown finds processes by namespace, not by pid. */
  mntNs: string;
  netNs: string;
  lanNetNs: string;
  rootVeth: string;
  rootAddress: string;
  address: string;
  connection: LabConnection;
  /** Every host key sshd presents (`ssh-ed25519 ...`, `ecdsa-sha2-nistp256 ...`, `ssh-rsa ...`). */
  hostKeys: string[];
  startedAt: string;
}

export const LAB_STATE_DIR = "/run/pulumi-netns-lab";
/** Lab names end up in file and directory names and key comments: kept short and plain. */
export const LAB_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;

function statePath(name: string): string {
  return path.join(LAB_STATE_DIR, `${name}.json`);
}

export function writeLabState(state: LabHostState): void {
  fs.mkdirSync(LAB_STATE_DIR, { recursive: true, mode: 0o700 });
  // The file holds a private key: create it 0600 from the start.
  fs.writeFileSync(statePath(state.name), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
}

/** The recorded state of a lab started by any process on this machine. */
export function readLabState(name: string): LabHostState | undefined {
  if (!LAB_NAME.test(name)) return undefined;
  try {
    return JSON.parse(fs.readFileSync(statePath(name), "utf8")) as LabHostState;
  } catch {
    return undefined;
  }
}

/** Removes the lab's record, unless it now describes another lab of the same name. */
export function removeLabState(state: LabHostState): void {
  try {
    const recorded = readLabState(state.name);
    if (recorded && recorded.holderPid === state.holderPid) fs.unlinkSync(statePath(state.name));
  } catch {
    // already removed
  }
}

/** Every lab recorded on this machine, started from code or from the CLI. */
export function listLabStates(): LabHostState[] {
  let files: string[];
  try {
    files = fs.readdirSync(LAB_STATE_DIR);
  } catch {
    return [];
  }
  const out: LabHostState[] = [];
  for (const f of files) {
    if (!f.endsWith(".json")) continue;
    const s = readLabState(f.slice(0, -5));
    if (s) out.push(s);
  }
  return out;
}

/** Whether the lab's holder process is still the one that was recorded. */
export function isLabAlive(state: LabHostState): boolean {
  return namespaceLink(state.holderPid, "mnt") === state.mntNs;
}

/**
 * A segment linking recorded labs (`pulumi-netns-lab link`): its switch
 * outlives the process that made it, so it is recorded here for whichever
 * process stops one of its labs to remove it.
 */
export interface SegmentState {
  version: 1;
  subnet: string;
  device: string;
  /** Pid of the process holding the switch's network namespace. */
  pid: number;
  /** That namespace as a `net:[...]` link: the pid is only trusted while it still holds it. */
  netNs: string;
  /** Each lab by name and holder pid (a later lab of the same name is not on the segment). */
  members: Array<{ lab: string; holderPid: number; address: string; cidr: string; address6?: string; cidr6?: string }>;
}

const SEGMENT_DIR = path.join(LAB_STATE_DIR, "segments");

function segmentPath(pid: number): string {
  return path.join(SEGMENT_DIR, `${pid}.json`);
}

export function writeSegmentState(segment: SegmentState): void {
  fs.mkdirSync(SEGMENT_DIR, { recursive: true, mode: 0o700 });
  fs.writeFileSync(segmentPath(segment.pid), `${JSON.stringify(segment, null, 2)}\n`, { mode: 0o600 });
}

export function removeSegmentState(segment: SegmentState): void {
  fs.rmSync(segmentPath(segment.pid), { force: true });
}

/** The recorded segments the lab (this very lab: name and holder pid) is on. */
export function segmentsOf(state: Pick<LabHostState, "name" | "holderPid">): SegmentState[] {
  let files: string[];
  try {
    files = fs.readdirSync(SEGMENT_DIR);
  } catch {
    return [];
  }
  const out: SegmentState[] = [];
  for (const f of files) {
    if (!/^\d+\.json$/.test(f)) continue;
    try {
      const s = JSON.parse(fs.readFileSync(path.join(SEGMENT_DIR, f), "utf8")) as SegmentState;
      if (s.members.some((m) => m.lab === state.name && m.holderPid === state.holderPid)) out.push(s);
    } catch {
      // removed meanwhile
    }
  }
  return out;
}

/** One line for a segment: `192.0.2.0/24 (eth1): a 192.0.2.1, b 192.0.2.2`. */
export function describeSegment(segment: {
  subnet: string;
  device: string;
  members: ReadonlyArray<{ lab: string; address: string; address6?: string }>;
}): string {
  return `${segment.subnet} (${segment.device}): ${segment.members.map((m) => `${m.lab} ${m.address}${m.address6 ? ` ${m.address6}` : ""}`).join(", ")}`;
}
