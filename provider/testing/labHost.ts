import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { LAN } from "./addressing";
import { LAB_ENV, type LabExecOptions, type LabExecResult, runCommand, sleep } from "./commands";
import { type LabHostOptions, launch } from "./launch";
import {
  addLiveLab,
  installExitHandlers,
  type LiveLab,
  liveLab,
  removeLiveLab,
  uninstallExitHandlersIfIdle,
} from "./liveLabs";
import { authorizeKey, generateKey, HOST_KEY_FILE, publicKeyOf, waitForHostKey } from "./sshd";
import { type LabConnection, type LabHostState, readLabState, writeLabState } from "./state";
import { teardownLab, teardownLabSync } from "./teardown";

/**
 * A throwaway "lab host": a fake Linux machine made of a network namespace plus
 * a mount namespace on this machine, reachable over SSH through a veth pair, with
 * a second namespace ("LAN peer") acting as its upstream router and internet.
 * Needs root. Everything it creates is owned by a few processes; killing them
 * makes the kernel free the namespaces and the veths that live in them.
 */

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
  readonly lan: typeof LAN;
  /** Every host key its sshd holds, one per type: ed25519 (the one `connection.hostKey` pins), ECDSA, RSA. */
  readonly hostKeys: readonly string[];
  /** Pid of the process holding the lab's namespaces. */
  readonly pid: number;
  /** Runs a command inside the lab's namespaces through nsenter (not ssh). */
  exec(cmd: string[], opts?: LabExecOptions): Promise<LabExecResult>;
  /** Runs a command in the LAN peer's network namespace. */
  execLan(cmd: string[], opts?: Omit<LabExecOptions, "namespace">): Promise<LabExecResult>;
  /** Starts a long-running process in the lab (or LAN peer); stop() kills it. */
  spawn(cmd: string[], opts?: LabSpawnOptions): LabProcess;
  /**
   * Authorizes a fresh client key pair (for every user) and returns its private key (to test
   * credential changes); with `passphrase`, the private key is encrypted with it.
   */
  addClientKey(passphrase?: string): Promise<string>;
  /**
   * Gives sshd a new ed25519 host key (the host "was rebuilt"): sshd reloads (SIGHUP) and presents
   * it from then on. Updates `connection.hostKey` and `hostKeys`; returns the new `ssh-ed25519 AAAA...`.
   */
  rotateHostKey(): Promise<string>;
  /** Kills everything in the lab and removes every trace of it. Idempotent. */
  stop(): Promise<void>;
}

/** Something joined to a lab that must go when the lab goes (a shared segment, see labNetwork.ts). */
export interface LabAttachment {
  remove(): Promise<void>;
  /** The same, blocking, for exit handlers. */
  removeSync(): void;
}

export class LabHostImpl implements LabHost, LiveLab {
  readonly lan = LAN;
  private stopping: Promise<void> | undefined;
  private readonly children = new Set<ChildProcess>();
  private readonly attachments = new Set<LabAttachment>();

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
  get hostKeys(): readonly string[] {
    return this.state.hostKeys;
  }
  get pid(): number {
    return this.state.holderPid;
  }

  /** @internal Removed before the lab stops; returns the way to detach it again. Throws once the lab is stopping. */
  attach(attachment: LabAttachment): () => void {
    if (this.stopping) throw new Error(`lab ${this.name} is stopped`);
    this.attachments.add(attachment);
    return () => this.attachments.delete(attachment);
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
    return runCommand(this.labArgv(cmd, opts.namespace), opts);
  }

  async addClientKey(passphrase = ""): Promise<string> {
    const keyFile = path.join(
      this.state.dir,
      `extra_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`,
    );
    await generateKey(keyFile, "pulumi-netns-lab-extra", passphrase);
    authorizeKey(this.state.dir, keyFile);
    return fs.readFileSync(keyFile, "utf8");
  }

  async rotateHostKey(): Promise<string> {
    const keyFile = path.join(this.state.dir, HOST_KEY_FILE);
    fs.rmSync(keyFile, { force: true });
    fs.rmSync(`${keyFile}.pub`, { force: true });
    await generateKey(keyFile, `pulumi-netns-lab ${this.name} host`);
    const hostKey = publicKeyOf(keyFile);
    // sshd re-executes itself on SIGHUP (same pid) and loads the host key files again.
    process.kill(this.state.sshdPid, "SIGHUP");
    await waitForHostKey(this.address, hostKey, `lab ${this.name}`);
    this.state.hostKeys = this.state.hostKeys.map((k) => (k === this.state.connection.hostKey ? hostKey : k));
    this.state.connection.hostKey = hostKey;
    writeLabState(this.state);
    return hostKey;
  }

  execLan(cmd: string[], opts: Omit<LabExecOptions, "namespace"> = {}): Promise<LabExecResult> {
    return runCommand(this.lanArgv(cmd), opts);
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
        for (const a of [...this.attachments]) await a.remove().catch((e) => this.log(`lab ${this.name}: ${e}`));
        await teardownLab(this.state, this.log);
        // Let node reap its own children so no handles outlive the lab.
        await Promise.race([
          Promise.all(
            [...this.children].map(
              (c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once("exit", r))),
            ),
          ),
          sleep(2000),
        ]);
        removeLiveLab(this.name);
        this.log(`lab ${this.name}: stopped in ${Date.now() - t0} ms`);
      })();
    }
    return this.stopping;
  }

  stopSync(): void {
    if (this.stopping) return; // an async stop is on its way; exit handlers cannot wait for it
    this.stopping = Promise.resolve();
    for (const a of [...this.attachments]) a.removeSync();
    teardownLabSync(this.state, this.log);
    removeLiveLab(this.name);
  }
}

/** Starts a lab host tied to this process: stopped by stop(), at process exit, or by the kernel if the process is killed. */
export async function startLabHost(opts: LabHostOptions = {}): Promise<LabHost> {
  const log = opts.log ?? (() => {});
  const t0 = Date.now();
  installExitHandlers();
  let lab: LabHostImpl;
  try {
    const { state, children } = await launch({ ...opts, detached: false });
    lab = new LabHostImpl(state, log, children);
  } catch (err) {
    uninstallExitHandlersIfIdle();
    throw err;
  }
  addLiveLab(lab);
  log(`lab ${lab.name}: ssh root@${lab.address} ready in ${Date.now() - t0} ms`);
  return lab;
}

/** @internal For the CLI: starts a lab that outlives this process; stop it with stopLabByName. */
export async function startDetachedLabHost(opts: LabHostOptions = {}): Promise<LabHostState> {
  return (await launch({ ...opts, detached: true })).state;
}

/**
 * Stops a lab recorded in the state directory, whichever process started it.
 * Returns false when no such lab is recorded.
 */
export async function stopLabByName(name: string, log: (l: string) => void = () => {}): Promise<boolean> {
  const live = liveLab(name);
  if (live) {
    await live.stop();
    return true;
  }
  const state = readLabState(name);
  if (!state) return false;
  await teardownLab(state, log);
  return true;
}
