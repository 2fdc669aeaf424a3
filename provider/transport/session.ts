import { createHash } from "node:crypto";
import type { Duplex } from "node:stream";
import { NodeSSH } from "node-ssh";
import type { Client } from "ssh2";
import {
  type Connection,
  DEFAULT_DIAL_ERROR_LIMIT,
  DEFAULT_PER_DIAL_TIMEOUT,
  DEFAULT_PORT,
  DEFAULT_USER,
  describe,
  endpoint,
} from "../connection";
import { classifyDialError, dialFailedMessage, retryLine, type SocketError } from "./dialErrors";
import { CommandError, ConnectError, HostKeyMismatchError } from "./errors";
import { ALREADY_FAILED, gaveUpOn, recordGaveUp } from "./gaveUp";
import {
  type Expectation,
  expectationMet,
  fingerprintOf,
  type HostKey,
  hostKeyAlgorithms,
  hostKeyFromBlob,
  mayHoldAnotherType,
  sameExpectation,
} from "./hostKey";
import { atProxy, type Caller, expectationFor, hopPath, rememberHostKey } from "./knownKeys";
import { progress } from "./progress";
import { type CommandResult, RemoteShell } from "./remoteShell";
import { ShellNoAnswer, shellConnectionLost, shellStartFailed } from "./shellErrors";
import { trace } from "./trace";

// Below sshd's default MaxSessions (10), leaving room for a user's own sessions.
const DEFAULT_SHELLS_PER_HOST = 4;
const KEEPALIVE_INTERVAL_MS = 10_000;
const KEEPALIVE_COUNT_MAX = 3;

function shellsPerHost(): number {
  const n = Number(process.env.PULUMI_NETNS_SHELLS_PER_HOST);
  return Number.isInteger(n) && n >= 1 && n <= 9 ? n : DEFAULT_SHELLS_PER_HOST;
}

/**
 * Identifies one pooled connection: the whole hop chain, the login and a hash
 * of the credentials (so a new key gets a new connection, and no secret is
 * kept as a map key in clear text).
 */
export function poolKey(conn: Connection): string {
  const secrets = createHash("sha256")
    .update(JSON.stringify([conn.password ?? null, conn.privateKey ?? null, conn.privateKeyPassword ?? null]))
    .digest("hex");
  return JSON.stringify([
    conn.host,
    conn.port ?? DEFAULT_PORT,
    conn.user ?? DEFAULT_USER,
    conn.sudo ?? false,
    conn.agentSocketPath ?? null,
    secrets,
    conn.proxy ? poolKey(conn.proxy) : null,
  ]);
}

/** A follow-up dial of a bare fingerprint's type search found the host holds no key of the types left. */
class NoKeyOfTypesLeft extends Error {}

/** A dial failure of a jump host's forward to the next hop (ssh2's channel open failure). */

/**
 * One SSH connection to one host (possibly through jump hosts, each its own
 * session) and a few persistent shells on it. Reconnects on the next command
 * after a drop. A caller's commands run on a session only while the key this
 * session's own handshake presented is one that caller accepts (index.ts
 * gives a caller that expects another key a session of its own).
 */
export class HostSession {
  readonly label: string;
  /** The hops to this host, for the keys the stack knows of it. */
  private readonly path: string;
  /** The key this host presented in the handshake of the current connection. */
  private presented: HostKey | undefined;
  private ssh: NodeSSH | undefined;
  /** The dial under way, and what its caller expects (another caller may expect another key). */
  private connecting: { expected: Expectation | undefined; done: Promise<void> } | undefined;
  private readonly shells: RemoteShell[] = [];
  private opening = 0;
  private readonly waiters: Array<(shell: RemoteShell | undefined) => void> = [];
  /** Shells handed to a caller; a shell is idle when alive and not lent. */
  private readonly lent = new Set<RemoteShell>();
  /** The connection each shell runs on: a caller gets a shell only of the current one, checked against it. */
  private readonly openedOn = new WeakMap<RemoteShell, NodeSSH>();
  private maxShells = shellsPerHost();

  constructor(
    readonly conn: Connection,
    private readonly proxy: HostSession | undefined,
  ) {
    this.label = describe(conn);
    this.path = hopPath(conn);
  }

  /**
   * Connects if needed (the dial asks for the key this caller expects), then
   * checks the key this connection's own handshake presented, at each hop,
   * against what this caller expects. Every caller, on every call: the pooled
   * connection may have been opened by another resource, with another pin or
   * none; one that presented another key is refused, never vouched for by
   * some other handshake. Returns the key of each hop, by "host:port".
   */
  async ensureConnected(caller: Caller): Promise<Record<string, string>> {
    const viaProxy = atProxy(caller);
    const keys = this.proxy && viaProxy ? await this.proxy.ensureConnected(viaProxy) : {};
    const expected = expectationFor(caller.conn, caller.recorded);
    const presented = await this.connect(caller, expected);
    if (expected && !expectationMet(expected, presented)) throw this.mismatch(caller, expected, presented);
    // Verified (or first use): the next new resource on this host must see the same.
    rememberHostKey(this.path, presented.text);
    keys[endpoint(this.conn)] = presented.text;
    return keys;
  }

  /**
   * Whether this session's connection (dialed now for this caller if there is
   * none) presented a key the caller accepts. A refused dial of its own throws.
   */
  async accepts(caller: Caller): Promise<boolean> {
    const expected = expectationFor(caller.conn, caller.recorded);
    const presented = await this.connect(caller, expected);
    return !expected || expectationMet(expected, presented);
  }

  /** The key the current connection presented, after dialing one for this caller if there is none. */
  private async connect(caller: Caller, expected: Expectation | undefined): Promise<HostKey> {
    while (!this.ssh?.connection) {
      const inFlight = this.connecting;
      if (inFlight) {
        // Another caller's dial is checked against that caller's keys: its refusal is not necessarily ours.
        if (sameExpectation(inFlight.expected, expected)) await inFlight.done;
        else await inFlight.done.catch(() => undefined);
        continue;
      }
      const attempt = { expected, done: this.dialExpecting(caller, expected) };
      this.connecting = attempt;
      await attempt.done.finally(() => {
        if (this.connecting === attempt) this.connecting = undefined;
      });
    }
    const presented = this.presented;
    if (!presented) throw new ConnectError(`${this.label} presented no host key`, true);
    return presented;
  }

  /**
   * Throws the mismatch when the current connection (at each hop) presented a
   * key this caller does not accept. No dial: for a shell already open on it.
   */
  private checkPresented(caller: Caller): void {
    const viaProxy = atProxy(caller);
    if (this.proxy && viaProxy) this.proxy.checkPresented(viaProxy);
    const presented = this.presented;
    if (!presented) throw new ConnectError(`${this.label} presented no host key`, true);
    const expected = expectationFor(caller.conn, caller.recorded);
    if (expected && !expectationMet(expected, presented)) throw this.mismatch(caller, expected, presented);
  }

  /**
   * Whether `shell` may run this caller's commands: alive, on the current
   * connection, whose handshake presented keys the caller accepts (else the
   * mismatch is thrown). The connection may have been replaced, by another
   * caller's dial, since this caller's own check.
   */
  private usable(shell: RemoteShell, caller: Caller): boolean {
    if (!shell.alive || !this.ssh || this.openedOn.get(shell) !== this.ssh) return false;
    this.checkPresented(caller);
    return true;
  }

  private mismatch(caller: Caller, expected: Expectation, presented: HostKey): HostKeyMismatchError {
    return new HostKeyMismatchError(
      this.label,
      caller.field,
      { fingerprints: expected.keys.map(fingerprintOf), source: expected.source },
      presented,
    );
  }

  async run(script: string, timeoutMs: number, caller: Caller): Promise<CommandResult> {
    await this.ensureConnected(caller);
    const shell = await this.acquire(caller);
    const started = Date.now();
    try {
      const result = await shell.run(script, timeoutMs);
      trace({ event: "command", host: this.label, ms: Date.now() - started, code: result.code, command: script });
      return result;
    } catch (e) {
      trace({ event: "command", host: this.label, ms: Date.now() - started, code: null, command: script });
      throw e;
    } finally {
      this.release(shell);
    }
  }

  /** Opens a TCP stream through this host to another one (for jump hosts). */
  async forward(host: string, port: number, caller: Caller): Promise<Duplex> {
    await this.ensureConnected(caller);
    const client = this.ssh?.connection as Client;
    return new Promise((resolve, reject) =>
      client.forwardOut("127.0.0.1", 0, host, port, (err, stream) => (err ? reject(err) : resolve(stream))),
    );
  }

  close(): void {
    for (const shell of this.shells.splice(0)) shell.close();
    this.ssh?.dispose();
    this.ssh = undefined;
  }

  /**
   * Dials, asking for the expected key's type. A bare fingerprint names no
   * type: when the host presents a key of another type, ask again without that
   * type, until it presents the pinned key or has no other type left (then the
   * first refusal stands). Only a further mismatch goes on with that search:
   * any other failure of a later dial (a refused login once the pinned key
   * matched, a timeout) is the real error, classified and retried as any dial's.
   */
  private async dialExpecting(caller: Caller, expected: Expectation | undefined): Promise<void> {
    try {
      await this.dial(caller, expected);
    } catch (e) {
      if (!(e instanceof HostKeyMismatchError) || !expected) throw e;
      const refused = [e.presented.type];
      while (mayHoldAnotherType(expected, refused)) {
        try {
          await this.dial(caller, expected, refused);
          return;
        } catch (again) {
          if (again instanceof NoKeyOfTypesLeft) throw e;
          if (!(again instanceof HostKeyMismatchError)) throw again;
          if (refused.includes(again.presented.type)) throw e;
          refused.push(again.presented.type);
        }
      }
      throw e;
    }
  }

  /**
   * Dials until it works, retrying only what can heal (a host that does not
   * answer in time, a connection cut mid-handshake) up to dialErrorLimit
   * attempts, each shown as it fails; anything else fails at once.
   */
  private async dial(caller: Caller, expected: Expectation | undefined, refusedTypes: string[] = []): Promise<void> {
    const limit = this.conn.dialErrorLimit ?? DEFAULT_DIAL_ERROR_LIMIT;
    const failed = gaveUpOn(this.path);
    if (failed !== undefined) throw new ConnectError(`${failed} ${ALREADY_FAILED}`, false, true);
    for (let attempt = 1; ; attempt++) {
      const started = Date.now();
      try {
        await this.dialOnce(caller, expected, refusedTypes);
        return;
      } catch (e) {
        if (e instanceof HostKeyMismatchError || e instanceof ConnectError || e instanceof NoKeyOfTypesLeft) throw e;
        const failure = classifyDialError(e as Error, this.conn, caller.field);
        trace({ event: "dial-failed", host: this.label, attempt, ms: Date.now() - started, what: failure.what });
        if (!failure.retryable || attempt >= limit) {
          const message = dialFailedMessage(this.label, attempt, failure);
          // Retries exhausted: the next operation on this host would only wait through them again.
          if (failure.retryable) recordGaveUp(this.path, message);
          // Retries exhausted, whatever the cause, or no host answering: the impl says what to do (opErrors.ts).
          throw new ConnectError(message, false, failure.hostMayBeGone || failure.retryable);
        }
        const delay = Math.min(200 * 2 ** attempt, 2_000);
        progress(retryLine(this.label, attempt, limit, failure, delay));
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private async dialOnce(
    caller: Caller,
    expected: Expectation | undefined,
    refusedTypes: string[] = [],
  ): Promise<void> {
    let mismatch: HostKeyMismatchError | undefined;
    let seen: HostKey | undefined;
    const viaProxy = atProxy(caller);
    const proxy = this.proxy;
    const sock =
      proxy && viaProxy
        ? await proxy.forward(this.conn.host, this.conn.port ?? DEFAULT_PORT, viaProxy).catch((err: SocketError) => {
            // The jump host's own failures are its errors; its refusal to reach this host is this hop's.
            if (err instanceof ConnectError || err instanceof HostKeyMismatchError) throw err;
            err.forwardedBy = proxy.label;
            throw err;
          })
        : undefined;
    const ssh = new NodeSSH();
    const useAgent = !this.conn.privateKey && !this.conn.password;
    const started = Date.now();
    try {
      await ssh.connect({
        host: sock ? undefined : this.conn.host,
        port: this.conn.port ?? DEFAULT_PORT,
        sock,
        username: this.conn.user ?? DEFAULT_USER,
        password: this.conn.password,
        privateKey: this.conn.privateKey,
        passphrase: this.conn.privateKeyPassword,
        agent: this.conn.agentSocketPath ?? (useAgent ? process.env.SSH_AUTH_SOCK : undefined),
        readyTimeout: (this.conn.perDialTimeout ?? DEFAULT_PER_DIAL_TIMEOUT) * 1000,
        keepaliveInterval: KEEPALIVE_INTERVAL_MS,
        keepaliveCountMax: KEEPALIVE_COUNT_MAX,
        algorithms: { serverHostKey: hostKeyAlgorithms(expected, refusedTypes) as never },
        // Checked before any credential is sent; each later caller is checked in ensureConnected.
        hostVerifier: (blob: Buffer) => {
          const presented = hostKeyFromBlob(blob);
          if (expected && !expectationMet(expected, presented)) {
            mismatch = this.mismatch(caller, expected, presented);
            return false;
          }
          seen = presented;
          return true;
        },
      });
    } catch (e) {
      ssh.dispose();
      if (mismatch) throw mismatch;
      // The host answered that it holds none of the types still asked for: the type search is over.
      if (refusedTypes.length > 0 && /no matching host key/i.test((e as Error).message))
        throw new NoKeyOfTypesLeft((e as Error).message);
      // What it means (and whether to retry) is for dial to decide: dialErrors.ts.
      throw e;
    }
    this.presented = seen;
    const client = ssh.connection as Client;
    // Without a listener, a dropped connection would crash the provider host.
    client.on("error", (err) => trace({ event: "connection-error", host: this.label, message: err.message }));
    client.on("close", () => {
      if (this.ssh === ssh) this.ssh = undefined;
      for (const shell of this.shells.splice(0)) shell.close();
      // Every waiter looks again (and is checked against the next connection): one per dead shell would leave some asleep.
      for (const waiter of this.waiters.splice(0)) waiter(undefined);
    });
    this.ssh = ssh;
    trace({ event: "handshake", host: this.label, ms: Date.now() - started });
  }

  private async acquire(caller: Caller): Promise<RemoteShell> {
    for (;;) {
      const idle = this.shells.find((s) => s.alive && !this.lent.has(s));
      if (idle) {
        if (this.usable(idle, caller)) {
          this.lent.add(idle);
          return idle;
        }
        // A shell of a connection that is gone: never reused.
        idle.close();
        this.shells.splice(this.shells.indexOf(idle), 1);
        continue;
      }
      if (this.shells.filter((s) => s.alive).length + this.opening < this.maxShells) {
        this.opening++;
        let ssh: NodeSSH | undefined;
        let opened = false;
        try {
          await this.ensureConnected(caller);
          ssh = this.ssh;
          // Dropped again since the check: dial (and check) again.
          if (!ssh?.connection) continue;
          const shell = await RemoteShell.open(ssh.connection as Client, this.label, this.conn.sudo ?? false);
          this.openedOn.set(shell, ssh);
          if (this.ssh !== ssh) {
            shell.close();
            throw new ShellNoAnswer(this.label);
          }
          this.shells.push(shell);
          this.lent.add(shell);
          opened = true;
          trace({ event: "shell-open", host: this.label, shells: this.shells.filter((s) => s.alive).length });
          return shell;
        } catch (e) {
          // A mismatch stays a mismatch (never retried), whichever check found it.
          if (e instanceof HostKeyMismatchError || e instanceof CommandError || e instanceof ConnectError) throw e;
          const err = e as Error;
          // The connection died (or went silent) under the shell: as a dial that timed out, not a login problem.
          if (ssh && (this.ssh !== ssh || (e instanceof ShellNoAnswer && e.timeoutMs !== undefined)))
            throw shellConnectionLost(this.label, this.conn, caller.field, err.message);
          if (e instanceof ShellNoAnswer) throw shellStartFailed(this.label, this.conn.sudo ?? false, "");
          // sshd refused another session (MaxSessions): live with the shells we have.
          if (/open failure|administratively prohibited/i.test(err.message) && this.shells.some((s) => s.alive)) {
            this.maxShells = Math.max(1, this.shells.filter((s) => s.alive).length);
            continue;
          }
          throw new ConnectError(`cannot open a shell on ${this.label}: ${err.message}`, true);
        } finally {
          this.opening--;
          // A place that stays free: a waiter may open a shell there (else it sleeps until some release).
          if (!opened) this.waiters.shift()?.(undefined);
        }
      }
      // Woken with a shell already lent to us, or with nothing: then look again.
      const got = await new Promise<RemoteShell | undefined>((resolve) => this.waiters.push(resolve));
      if (!got) continue;
      let fits: boolean;
      try {
        fits = this.usable(got, caller);
      } catch (e) {
        // Not ours to use: the next waiter may accept it.
        this.release(got);
        throw e;
      }
      if (fits) return got;
      got.close();
      this.release(got);
    }
  }

  private release(shell: RemoteShell): void {
    this.lent.delete(shell);
    if (!shell.alive) {
      const i = this.shells.indexOf(shell);
      if (i >= 0) this.shells.splice(i, 1);
    }
    const waiter = this.waiters.shift();
    if (!waiter) return;
    if (shell.alive) {
      this.lent.add(shell);
      waiter(shell);
    } else {
      waiter(undefined);
    }
  }
}
