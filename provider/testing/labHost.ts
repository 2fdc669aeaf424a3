import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

/**
 * A throwaway "lab host": a fake Linux machine made of a network namespace plus
 * a mount namespace on this machine, reachable over SSH through a veth pair, with
 * a second namespace ("LAN peer") acting as its upstream router and internet.
 * Needs root. Everything it creates is owned by a few processes; killing them
 * makes the kernel free the namespaces and the veths that live in them.
 */

export interface LabHostOptions {
  /** Lab name ([a-z0-9-], max 32 chars). Defaults to `lab-<6 hex>`. */
  name?: string;
  /** Writes `/root/.bashrc` with `sleep 0.15` in the lab's private home: a slow login shell. */
  heavyShell?: boolean;
  /** Sets the lab's iptables FORWARD policy to DROP, the way Docker leaves hosts. */
  forwardPolicyDrop?: boolean;
  /** Receives progress lines and sshd's stderr. */
  log?: (line: string) => void;
}

export interface LabConnection {
  host: string;
  port: number;
  user: string;
  /** OpenSSH-format ed25519 private key; a throwaway made for this lab. */
  privateKey: string;
  /** `ssh-ed25519 AAAA...` */
  hostKey: string;
}

export interface LabExecOptions {
  /** A named network namespace inside the lab (run through `ip netns exec`). */
  namespace?: string;
  /** Resolve with the result instead of rejecting when the exit code is not 0. */
  allowFailure?: boolean;
  /** Kill the command after this long and reject. Default 30 s. */
  timeoutMs?: number;
  /** Written to the command's stdin. */
  input?: string;
}

export interface LabExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface LabSpawnOptions {
  /** A named network namespace inside the lab (run through `ip netns exec`). */
  namespace?: string;
  /** Run in the LAN peer instead of the lab host. */
  lan?: boolean;
}

export interface LabProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Everything the process wrote so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** SIGKILLs the process and waits for it to be reaped. */
  kill(): Promise<void>;
}

export interface LabHost {
  readonly name: string;
  readonly connection: LabConnection;
  /** Lab management address sshd listens on (same as connection.host). */
  readonly address: string;
  readonly lan: {
    readonly peerAddress: "203.0.113.1";
    readonly hostAddress: "203.0.113.2";
    readonly internetAddress: "198.51.100.1";
  };
  /** Pid of the process holding the lab's namespaces. */
  readonly pid: number;
  /** Runs a command inside the lab's namespaces through nsenter (not ssh). */
  exec(cmd: string[], opts?: LabExecOptions): Promise<LabExecResult>;
  /** Runs a command in the LAN peer's network namespace. */
  execLan(cmd: string[], opts?: Omit<LabExecOptions, "namespace">): Promise<LabExecResult>;
  /** Starts a long-running process in the lab (or LAN peer); stop() kills it. */
  spawn(cmd: string[], opts?: LabSpawnOptions): LabProcess;
  /** Kills everything in the lab and removes every trace of it. Idempotent. */
  /**
   * Authorizes a fresh client key pair (for every user) and returns its private key (to test
   * credential changes); with `passphrase`, the private key is encrypted with it.
   */
  addClientKey(passphrase?: string): Promise<string>;
  /**
   * Gives sshd a new host key (the host "was rebuilt"): sshd reloads (SIGHUP) and presents
   * it from then on. Updates `connection.hostKey`; returns the new `ssh-ed25519 AAAA...`.
   */
  rotateHostKey(): Promise<string>;
  stop(): Promise<void>;
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
  startedAt: string;
}

export const LAB_STATE_DIR = "/run/pulumi-netns-lab";
const LAN = { peerAddress: "203.0.113.1", hostAddress: "203.0.113.2", internetAddress: "198.51.100.1" } as const;
const LAB_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const LAB_ENV: NodeJS.ProcessEnv = { PATH: LAB_PATH, HOME: "/root", LANG: "C" };
const SSHD = "/usr/sbin/sshd";

// The lab gets a private /run (so `ip netns` state, sshd's privsep dir and
// xtables.lock are per lab and nothing is created on the machine's /run) and a
// private /root (so the machine's own shell rc files never run in the lab).
const LAB_HOLDER_SCRIPT = [
  "set -e",
  "mount -t tmpfs -o mode=0755,size=16m pulumi-netns-lab /run",
  "mkdir -p /run/netns /run/sshd /run/lock",
  "mount -t tmpfs -o mode=0700,size=16m pulumi-netns-lab /root",
  "ip link set lo up",
  "echo ready",
  "exec sleep infinity </dev/null >/dev/null 2>&1",
].join("\n");
const LAN_HOLDER_SCRIPT = [
  "set -e",
  "ip link set lo up",
  "echo ready",
  "exec sleep infinity </dev/null >/dev/null 2>&1",
].join("\n");

// ---------------------------------------------------------------------------
// Prerequisites

const REQUIRED_COMMANDS: Record<string, string> = {
  ip: "iproute2",
  iptables: "iptables",
  "iptables-save": "iptables",
  sshd: "openssh-server",
  "ssh-keygen": "openssh-client",
  unshare: "util-linux",
  nsenter: "util-linux",
  setpriv: "util-linux",
  mount: "mount",
  sysctl: "procps",
  ping: "iputils-ping",
};

/** A throwaway ed25519 key pair in OpenSSH format: `file` (private) and `file.pub`. */
function generateKey(file: string, comment: string, passphrase = ""): Promise<unknown> {
  return run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", comment, "-f", file], {});
}

function findCommand(cmd: string): string | undefined {
  if (cmd === "sshd") return isExecutable(SSHD) ? SSHD : undefined;
  for (const dir of LAB_PATH.split(":")) {
    const p = path.join(dir, cmd);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Missing prerequisites as readable items (`[]` when the lab can run here). */
export function checkLabPrerequisites(): string[] {
  const missing: string[] = [];
  if (process.platform !== "linux") missing.push("a Linux machine (this is " + process.platform + ")");
  if (typeof process.getuid !== "function" || process.getuid() !== 0) missing.push("root (run as uid 0)");
  for (const [cmd, pkg] of Object.entries(REQUIRED_COMMANDS)) {
    if (!findCommand(cmd)) missing.push(`${cmd === "sshd" ? SSHD : cmd} (Debian package ${pkg})`);
  }
  // pdeathsig is what kills a lab when the node process dies without running exit handlers.
  if (findCommand("setpriv")) {
    const help = spawnSync("setpriv", ["--help"], { env: LAB_ENV, encoding: "utf8" });
    if (!`${help.stdout}${help.stderr}`.includes("--pdeathsig")) {
      missing.push("setpriv with --pdeathsig (Debian package util-linux >= 2.33)");
    }
  }
  return missing;
}

function assertPrerequisites(): void {
  const missing = checkLabPrerequisites();
  if (missing.length === 0) return;
  const pkgs = new Set<string>();
  for (const item of missing) {
    const m = /\(Debian package ([a-z0-9.+-]+)/.exec(item);
    if (m) pkgs.add(m[1]);
  }
  let msg = `pulumi-netns lab host: missing prerequisites: ${missing.join(", ")}.`;
  if (pkgs.size > 0) {
    msg += ` Install with: apt-get update && apt-get install -y --no-install-recommends ${[...pkgs].join(" ")}`;
  }
  throw new Error(msg);
}

// ---------------------------------------------------------------------------
// Small process helpers

interface RunOptions {
  input?: string;
  timeoutMs?: number;
  allowFailure?: boolean;
}

function run(argv: string[], opts: RunOptions = {}): Promise<LabExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { env: LAB_ENV, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.stdin.on("error", () => {}); // the command may exit without reading its stdin
    child.stdin.end(opts.input ?? "");
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, opts.timeoutMs ?? 30_000);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`${argv.join(" ")}: ${err.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const result = { code: code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0), stdout, stderr };
      if (timedOut) {
        reject(new Error(`${argv.join(" ")}: timed out after ${opts.timeoutMs ?? 30_000} ms`));
      } else if (result.code !== 0 && !opts.allowFailure) {
        reject(new Error(`${argv.join(" ")} exited with ${result.code}: ${stderr.trim() || stdout.trim()}`));
      } else {
        resolve(result);
      }
    });
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function nsLink(pid: number, kind: "mnt" | "net"): string | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/${kind}`);
  } catch {
    return undefined; // gone, or a zombie
  }
}

/** Starts a namespace holder and resolves once its setup script said "ready". */
function startHolder(argv: string[], detached: boolean, label: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { env: LAB_ENV, stdio: ["ignore", "pipe", "pipe"], detached });
    let out = "";
    let err = "";
    let settled = false;
    const done = (e?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdout?.removeAllListeners("data");
      child.stderr?.removeAllListeners("data");
      // The holder redirected its own stdio to /dev/null before exec'ing sleep, so the
      // pipes can go: they must not keep this process's event loop alive.
      child.stdout?.destroy();
      child.stderr?.destroy();
      child.unref();
      if (e) {
        child.kill("SIGKILL");
        reject(e);
      } else {
        resolve(child);
      }
    };
    const timer = setTimeout(() => done(new Error(`${label}: not ready after 5 s: ${err.trim()}`)), 5000);
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      if (out.includes("ready\n")) done();
    });
    child.stderr?.setEncoding("utf8").on("data", (d: string) => (err += d));
    child.on("error", (e) => done(new Error(`${label}: ${e.message}`)));
    child.on("exit", (code) => done(new Error(`${label} exited with ${code}: ${err.trim()}`)));
  });
}

// ---------------------------------------------------------------------------
// Addresses

function ipv4ToInt(a: string): number {
  return a.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
}
function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
}
function overlaps(aNet: number, aLen: number, bNet: number, bLen: number): boolean {
  const len = Math.min(aLen, bLen);
  const size = 2 ** (32 - len);
  return Math.floor(aNet / size) === Math.floor(bNet / size);
}

const reservedBlocks = new Set<number>(); // /30s picked by this process but maybe not configured yet

/** A free /30 inside 198.18.0.0/15, checked against what the root namespace already uses. */
async function pickManagementBlock(): Promise<number> {
  const used: Array<[number, number]> = [];
  const addrs = JSON.parse((await run(["ip", "-j", "-4", "addr", "show"])).stdout || "[]") as Array<{
    addr_info?: Array<{ local?: string; prefixlen?: number }>;
  }>;
  for (const link of addrs) {
    for (const a of link.addr_info ?? []) {
      if (a.local) used.push([ipv4ToInt(a.local), a.prefixlen ?? 32]);
    }
  }
  const routes = JSON.parse((await run(["ip", "-j", "-4", "route", "show", "table", "all"])).stdout || "[]") as Array<{
    dst?: string;
  }>;
  for (const r of routes) {
    if (!r.dst || r.dst === "default") continue;
    const [addr, len] = r.dst.split("/");
    if (/^\d+\.\d+\.\d+\.\d+$/.test(addr)) used.push([ipv4ToInt(addr), len ? Number(len) : 32]);
  }
  for (const s of listLabStates()) used.push([ipv4ToInt(s.rootAddress), 30]);
  const base = ipv4ToInt("198.18.0.0");
  for (let i = 0; i < 64; i++) {
    const block = base + 4 * (1 + (randomBytes(2).readUInt16BE(0) % 32766));
    if (reservedBlocks.has(block)) continue;
    if (used.some(([n, l]) => overlaps(block, 30, n, l))) continue;
    reservedBlocks.add(block);
    return block;
  }
  throw new Error("pulumi-netns lab host: no free /30 found in 198.18.0.0/15");
}

// ---------------------------------------------------------------------------
// State files

const NAME_RE = /^[a-z0-9][a-z0-9-]{0,31}$/;

function statePath(name: string): string {
  return path.join(LAB_STATE_DIR, `${name}.json`);
}

function writeState(state: LabHostState): void {
  fs.mkdirSync(LAB_STATE_DIR, { recursive: true, mode: 0o700 });
  // The file holds a private key: create it 0600 from the start.
  fs.writeFileSync(statePath(state.name), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
}

/** The recorded state of a lab started by any process on this machine. */
export function readLabState(name: string): LabHostState | undefined {
  if (!NAME_RE.test(name)) return undefined;
  try {
    return JSON.parse(fs.readFileSync(statePath(name), "utf8")) as LabHostState;
  } catch {
    return undefined;
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
  return nsLink(state.holderPid, "mnt") === state.mntNs;
}

// ---------------------------------------------------------------------------
// Teardown. Written once as a generator yielding how long to wait, so the same
// steps run asynchronously from stop() and synchronously from an `exit` handler.

function* teardownSteps(state: LabHostState, log: (l: string) => void): Generator<number, void, void> {
  // Namespace inode numbers are reused once a namespace is freed, so a recorded id is
  // only trusted while one of the lab's own recorded processes still holds it.
  const holds = (pids: number[], kind: "mnt" | "net", ns: string) => pids.some((p) => p > 0 && nsLink(p, kind) === ns);
  const mine = [state.holderPid, state.sshdPid];
  const netNs = new Set<string>();
  const mntNs = new Set<string>();
  if (holds(mine, "mnt", state.mntNs)) mntNs.add(state.mntNs);
  if (holds(mine, "net", state.netNs)) netNs.add(state.netNs);
  if (holds([state.lanPid], "net", state.lanNetNs)) netNs.add(state.lanNetNs);
  // Guard against ever matching this machine's own namespaces (a corrupt state file).
  for (const kind of ["mnt", "net"] as const) {
    const own = nsLink(process.pid, kind);
    const init = nsLink(1, kind);
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
      const m = nsLink(pid, "mnt");
      const n = nsLink(pid, "net");
      if ((m && mntNs.has(m)) || (n && netNs.has(n))) victims.push(pid);
    }
    if (victims.length === 0) break;
    if (Date.now() > deadline) {
      log(`lab ${state.name}: processes still alive after 5 s: ${victims.join(" ")}`);
      break;
    }
    for (const pid of victims) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    yield 10;
  }
  const stillKeeping = () =>
    keepers.filter((p) => nsLink(p, "mnt") === state.mntNs || nsLink(p, "net") === state.lanNetNs);
  for (const pid of stillKeeping()) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
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
  try {
    const recorded = readLabState(state.name);
    if (recorded && recorded.holderPid === state.holderPid) fs.unlinkSync(statePath(state.name));
  } catch {
    // already removed
  }
  reservedBlocks.delete(ipv4ToInt(state.rootAddress) - 1);
}

function linkExists(name: string): boolean {
  // /sys/class/net is the root namespace's view as long as /sys was mounted there.
  const r = spawnSync("ip", ["-j", "link", "show", "dev", name], { env: LAB_ENV, encoding: "utf8" });
  return r.status === 0;
}

function teardownSync(state: LabHostState, log: (l: string) => void): void {
  for (const wait of teardownSteps(state, log)) sleepSync(wait);
}

async function teardown(state: LabHostState, log: (l: string) => void): Promise<void> {
  for (const wait of teardownSteps(state, log)) await sleep(wait);
}

/**
 * Stops a lab recorded in the state directory, whichever process started it.
 * Returns false when no such lab is recorded.
 */
export async function stopLabByName(name: string, log: (l: string) => void = () => {}): Promise<boolean> {
  const live = liveLabs.get(name);
  if (live) {
    await live.stop();
    return true;
  }
  const state = readLabState(name);
  if (!state) return false;
  await teardown(state, log);
  return true;
}

// ---------------------------------------------------------------------------
// Process-exit cleanup for labs started from code.

const liveLabs = new Map<string, LabHostImpl>();
let handlersInstalled = false;

function onExit(): void {
  for (const lab of [...liveLabs.values()]) lab.stopSync();
}

function onSignal(signal: NodeJS.Signals): void {
  onExit();
  uninstallHandlers();
  // Only re-raise when nobody else handles the signal, to keep its default meaning.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", onExit);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}

function uninstallHandlers(): void {
  if (!handlersInstalled) return;
  handlersInstalled = false;
  process.removeListener("exit", onExit);
  process.removeListener("SIGINT", onSignal);
  process.removeListener("SIGTERM", onSignal);
}

/** Stops every lab started by this process. */
export async function stopAllLabHosts(): Promise<void> {
  await Promise.all([...liveLabs.values()].map((lab) => lab.stop()));
}

// ---------------------------------------------------------------------------

class LabHostImpl implements LabHost {
  readonly lan = LAN;
  private stopping: Promise<void> | undefined;
  private readonly children = new Set<ChildProcess>();

  constructor(
    readonly state: LabHostState,
    private readonly log: (l: string) => void,
    children: ChildProcess[],
  ) {
    for (const c of children) this.track(c);
  }

  get name(): string {
    return this.state.name;
  }
  get connection(): LabConnection {
    return this.state.connection;
  }
  get address(): string {
    return this.state.address;
  }
  get pid(): number {
    return this.state.holderPid;
  }

  private track(c: ChildProcess): void {
    this.children.add(c);
    c.once("exit", () => this.children.delete(c));
  }

  private labArgv(cmd: string[], namespace?: string): string[] {
    if (cmd.length === 0) throw new Error("empty command");
    const inner = namespace ? ["ip", "netns", "exec", namespace, ...cmd] : cmd;
    return ["nsenter", "-t", String(this.pid), "-n", "-m", "--", ...inner];
  }

  private lanArgv(cmd: string[]): string[] {
    if (cmd.length === 0) throw new Error("empty command");
    return ["nsenter", "-t", String(this.state.lanPid), "-n", "--", ...cmd];
  }

  exec(cmd: string[], opts: LabExecOptions = {}): Promise<LabExecResult> {
    return run(this.labArgv(cmd, opts.namespace), opts);
  }

  async addClientKey(passphrase = ""): Promise<string> {
    const keyFile = path.join(
      this.state.dir,
      `extra_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`,
    );
    await generateKey(keyFile, "pulumi-netns-lab-extra", passphrase);
    fs.appendFileSync(path.join(this.state.dir, "authorized_keys"), fs.readFileSync(`${keyFile}.pub`));
    return fs.readFileSync(keyFile, "utf8");
  }

  async rotateHostKey(): Promise<string> {
    const keyFile = path.join(this.state.dir, "ssh_host_ed25519_key");
    fs.rmSync(keyFile, { force: true });
    fs.rmSync(`${keyFile}.pub`, { force: true });
    await generateKey(keyFile, `pulumi-netns-lab ${this.name} host`);
    const hostKey = fs.readFileSync(`${keyFile}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
    // sshd re-executes itself on SIGHUP (same pid) and loads the host key files again.
    process.kill(this.state.sshdPid, "SIGHUP");
    const deadline = Date.now() + 10_000;
    for (;;) {
      const scan = await run(["ssh-keyscan", "-T", "2", "-t", "ed25519", this.address], { allowFailure: true });
      if (scan.stdout.includes(hostKey.split(" ")[1])) break;
      if (Date.now() > deadline) throw new Error(`lab ${this.name}: sshd did not present its new host key`);
      await sleep(50);
    }
    this.state.connection.hostKey = hostKey;
    writeState(this.state);
    return hostKey;
  }

  execLan(cmd: string[], opts: Omit<LabExecOptions, "namespace"> = {}): Promise<LabExecResult> {
    return run(this.lanArgv(cmd), opts);
  }

  spawn(cmd: string[], opts: LabSpawnOptions = {}): LabProcess {
    if (this.stopping) throw new Error(`lab ${this.name} is stopped`);
    const argv = [
      "setpriv",
      "--pdeathsig",
      "KILL",
      "--",
      ...(opts.lan ? this.lanArgv(cmd) : this.labArgv(cmd, opts.namespace)),
    ];
    const child = spawn(argv[0], argv.slice(1), { env: LAB_ENV, stdio: ["ignore", "pipe", "pipe"] });
    this.track(child);
    let out = "";
    let err = "";
    child.stdout?.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr?.setEncoding("utf8").on("data", (d: string) => (err += d));
    const exited = new Promise<number | null>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
      child.once("exit", (code) => resolve(code));
      child.once("error", () => resolve(null));
    });
    return {
      pid: child.pid ?? -1,
      child,
      stdout: () => out,
      stderr: () => err,
      exited,
      kill: async () => {
        child.kill("SIGKILL");
        await exited;
      },
    };
  }

  stop(): Promise<void> {
    if (!this.stopping) {
      this.stopping = (async () => {
        const t0 = Date.now();
        await teardown(this.state, this.log);
        // Let node reap its own children so no handles outlive the lab.
        await Promise.race([
          Promise.all(
            [...this.children].map(
              (c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once("exit", r))),
            ),
          ),
          sleep(2000),
        ]);
        this.forget();
        this.log(`lab ${this.name}: stopped in ${Date.now() - t0} ms`);
      })();
    }
    return this.stopping;
  }

  stopSync(): void {
    if (this.stopping) return; // an async stop is on its way; exit handlers cannot wait for it
    this.stopping = Promise.resolve();
    teardownSync(this.state, this.log);
    this.forget();
  }

  private forget(): void {
    liveLabs.delete(this.name);
    if (liveLabs.size === 0) uninstallHandlers();
  }
}

/** @internal Options shared by the library and the CLI. */
export interface LaunchOptions extends LabHostOptions {
  /** Survive this process (CLI labs): no pdeathsig, no exit handlers. */
  detached?: boolean;
}

/** @internal Starts a lab and returns its recorded state and live children. */
async function launch(opts: LaunchOptions): Promise<{ state: LabHostState; children: ChildProcess[] }> {
  assertPrerequisites();
  const log = opts.log ?? (() => {});
  const detached = opts.detached ?? false;
  const name = opts.name ?? `lab-${randomBytes(3).toString("hex")}`;
  if (!NAME_RE.test(name)) throw new Error(`invalid lab name ${JSON.stringify(name)}: use [a-z0-9-], max 32 chars`);
  if (liveLabs.has(name)) throw new Error(`lab ${name} is already running in this process`);
  // A recorded lab whose holder is gone was left by a process that died without
  // running its exit handlers (kill -9): the kernel took its namespaces, files remain.
  for (const stale of listLabStates()) {
    if (!isLabAlive(stale) && !liveLabs.has(stale.name)) await teardown(stale, log);
  }
  const existing = readLabState(name);
  if (existing) throw new Error(`lab ${name} is already running (pid ${existing.holderPid})`);
  // pdeathsig ties each process to this node process's lifetime, covering kill -9.
  const guard = detached ? [] : ["setpriv", "--pdeathsig", "KILL", "--"];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pulumi-netns-lab-${name}-`));
  const children: ChildProcess[] = [];
  const partial: Partial<LabHostState> & { dir: string; name: string } = { dir, name };
  try {
    const started = await Promise.allSettled([
      startHolder(
        [...guard, "unshare", "--net", "--mount", "--propagation", "private", "--", "sh", "-c", LAB_HOLDER_SCRIPT],
        detached,
        `lab ${name} holder`,
      ),
      startHolder(
        [...guard, "unshare", "--net", "--", "sh", "-c", LAN_HOLDER_SCRIPT],
        detached,
        `lab ${name} LAN peer`,
      ),
    ]);
    for (const s of started) if (s.status === "fulfilled") children.push(s.value);
    for (const s of started) if (s.status === "rejected") throw s.reason;
    const [holder, lanHolder] = children;
    const holderPid = holder.pid as number;
    const lanPid = lanHolder.pid as number;
    Object.assign(partial, {
      holderPid,
      lanPid,
      mntNs: nsLink(holderPid, "mnt"),
      netNs: nsLink(holderPid, "net"),
      lanNetNs: nsLink(lanPid, "net"),
    });
    if (!partial.mntNs || !partial.netNs || !partial.lanNetNs) throw new Error(`lab ${name}: holder vanished`);

    const keysReady = Promise.all([
      generateKey(path.join(dir, "ssh_host_ed25519_key"), `pulumi-netns-lab ${name} host`),
      generateKey(path.join(dir, "id_ed25519"), `pulumi-netns-lab ${name} client`),
    ]);

    const block = await pickManagementBlock();
    const rootAddress = intToIpv4(block + 1);
    const address = intToIpv4(block + 2);
    let rootVeth = "";
    for (let i = 0; ; i++) {
      const candidate = `pnl${randomBytes(3).toString("hex")}`;
      const r = await run(
        ["ip", "link", "add", candidate, "type", "veth", "peer", "name", "mgmt0", "netns", String(holderPid)],
        {
          allowFailure: true,
        },
      );
      if (r.code === 0) {
        rootVeth = candidate;
        break;
      }
      if (!/exists/i.test(r.stderr) || i > 5) throw new Error(`ip link add ${candidate}: ${r.stderr.trim()}`);
    }
    Object.assign(partial, { rootVeth, rootAddress, address });
    const nsLab = ["nsenter", "-t", String(holderPid), "-n", "--"];
    const nsLan = ["nsenter", "-t", String(lanPid), "-n", "--"];
    await Promise.all([
      run(["ip", "-batch", "-"], { input: `addr add ${rootAddress}/30 dev ${rootVeth}\nlink set ${rootVeth} up\n` }),
      run([...nsLab, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "lan0", "netns", String(lanPid)]),
    ]);
    await Promise.all([
      run([...nsLan, "ip", "-batch", "-"], {
        input: `addr add ${LAN.peerAddress}/24 dev lan0\nlink set lan0 up\naddr add ${LAN.internetAddress}/32 dev lo\n`,
      }),
      // New namespaces may inherit IPv4 sysctls from the machine; a fresh host and a
      // plain peer router are what the provider's tests assume.
      run([...nsLan, "sysctl", "-qw", "net.ipv4.ip_forward=0"]),
      run([...nsLab, "sysctl", "-qw", "net.ipv4.ip_forward=0"]),
    ]);
    await run([...nsLab, "ip", "-batch", "-"], {
      input: [
        `addr add ${address}/30 dev mgmt0`,
        "link set mgmt0 up",
        `addr add ${LAN.hostAddress}/24 dev eth0`,
        "link set eth0 up",
        `route add default via ${LAN.peerAddress} dev eth0`,
        "",
      ].join("\n"),
    });
    if (opts.forwardPolicyDrop) await run([...nsLab, "iptables", "-w", "-P", "FORWARD", "DROP"]);
    if (opts.heavyShell) {
      // The lab's /root is its private tmpfs, reached through the holder's root.
      fs.writeFileSync(`/proc/${holderPid}/root/root/.bashrc`, "# pulumi-netns lab: a slow login shell\nsleep 0.15\n");
    }

    await keysReady;
    fs.copyFileSync(path.join(dir, "id_ed25519.pub"), path.join(dir, "authorized_keys"));
    // sshd reads authorized_keys as the user logging in: let non-root users of the lab (sudo
    // tests) reach it. The directory can be traversed, not listed; private keys stay 0600.
    fs.chmodSync(dir, 0o711);
    fs.chmodSync(path.join(dir, "authorized_keys"), 0o644);
    fs.writeFileSync(
      path.join(dir, "sshd_config"),
      [
        `ListenAddress ${address}`,
        "Port 22",
        `HostKey ${path.join(dir, "ssh_host_ed25519_key")}`,
        `AuthorizedKeysFile ${path.join(dir, "authorized_keys")}`,
        "PidFile none",
        "UsePAM no",
        "StrictModes no",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "MaxSessions 10",
        "MaxStartups 100:30:200",
        "LogLevel ERROR",
        "",
      ].join("\n"),
    );
    const sshdLog = fs.openSync(path.join(dir, "sshd.log"), "a");
    const sshdArgv = [
      ...guard,
      "nsenter",
      "-t",
      String(holderPid),
      "-n",
      "-m",
      "--",
      SSHD,
      "-D",
      "-e",
      "-f",
      path.join(dir, "sshd_config"),
    ];
    const sshd = spawn(sshdArgv[0], sshdArgv.slice(1), {
      env: LAB_ENV,
      stdio: ["ignore", sshdLog, detached ? sshdLog : "pipe"],
      detached,
    });
    fs.closeSync(sshdLog);
    children.push(sshd);
    partial.sshdPid = sshd.pid;
    let sshdErr = "";
    let sshdExited = false;
    sshd.stderr?.setEncoding("utf8").on("data", (d: string) => {
      sshdErr += d;
      for (const l of d.split("\n")) if (l.trim()) log(`lab ${name} sshd: ${l}`);
    });
    (sshd.stderr as net.Socket | null)?.unref?.();
    sshd.on("exit", () => (sshdExited = true));
    sshd.unref();
    await waitForPort(address, 22, 5000, () => (sshdExited ? `sshd exited: ${sshdErr.trim()}` : undefined));

    const hostKey = fs
      .readFileSync(path.join(dir, "ssh_host_ed25519_key.pub"), "utf8")
      .trim()
      .split(/\s+/)
      .slice(0, 2)
      .join(" ");
    const state: LabHostState = {
      version: 1,
      name,
      dir,
      ownerPid: detached ? null : process.pid,
      holderPid,
      lanPid,
      sshdPid: sshd.pid as number,
      mntNs: partial.mntNs,
      netNs: partial.netNs,
      lanNetNs: partial.lanNetNs,
      rootVeth,
      rootAddress,
      address,
      connection: {
        host: address,
        port: 22,
        user: "root",
        privateKey: fs.readFileSync(path.join(dir, "id_ed25519"), "utf8"),
        hostKey,
      },
      startedAt: new Date().toISOString(),
    };
    writeState(state);
    return { state, children };
  } catch (err) {
    // Tear down whatever exists so far; the namespaces are found through the holders.
    const known: LabHostState = {
      version: 1,
      name,
      dir,
      ownerPid: null,
      holderPid: partial.holderPid ?? -1,
      lanPid: partial.lanPid ?? -1,
      sshdPid: partial.sshdPid ?? -1,
      mntNs: partial.mntNs ?? "",
      netNs: partial.netNs ?? "",
      lanNetNs: partial.lanNetNs ?? "",
      rootVeth: partial.rootVeth ?? "",
      rootAddress: partial.rootAddress ?? "0.0.0.1",
      address: partial.address ?? "",
      connection: { host: "", port: 22, user: "root", privateKey: "", hostKey: "" },
      startedAt: "",
    };
    for (const c of children) c.kill("SIGKILL");
    if (known.mntNs || known.netNs) await teardown(known, log);
    else fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

async function waitForPort(
  host: string,
  port: number,
  timeoutMs: number,
  failed: () => string | undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const why = failed();
    if (why) throw new Error(why);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host, port, timeout: 500 });
      // Completing the identification exchange keeps sshd from logging a
      // "kex_exchange_identification" error for every probe.
      s.once("data", () => {
        s.end("SSH-2.0-pulumi-netns-lab-probe\r\n");
        s.destroy();
        resolve(true);
      });
      s.once("timeout", () => {
        s.destroy();
        resolve(false);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline)
      throw new Error(`sshd on ${host}:${port} not accepting connections after ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** Starts a lab host tied to this process: stopped by stop(), at process exit, or by the kernel if the process is killed. */
export async function startLabHost(opts: LabHostOptions = {}): Promise<LabHost> {
  const log = opts.log ?? (() => {});
  const t0 = Date.now();
  installHandlers();
  let lab: LabHostImpl;
  try {
    const { state, children } = await launch({ ...opts, detached: false });
    lab = new LabHostImpl(state, log, children);
  } catch (err) {
    if (liveLabs.size === 0) uninstallHandlers();
    throw err;
  }
  liveLabs.set(lab.name, lab);
  log(`lab ${lab.name}: ssh root@${lab.address} ready in ${Date.now() - t0} ms`);
  return lab;
}

/** @internal For the CLI: starts a lab that outlives this process; stop it with stopLabByName. */
export async function startDetachedLabHost(opts: LabHostOptions = {}): Promise<LabHostState> {
  return (await launch({ ...opts, detached: true })).state;
}
