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
import { classifyDialError, dialFailedMessage, retryLine } from "./dialErrors";
import { CommandError, ConnectError, HostKeyMismatchError } from "./errors";
import { fingerprintOf, type HostKey, hostKeyFromBlob, hostKeyMatches, preferredAlgorithms } from "./hostKey";
import { progress } from "./progress";
import { type CommandResult, RemoteShell } from "./remoteShell";
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

/**
 * One SSH connection to one host (possibly through jump hosts) and a few
 * persistent shells on it. Reconnects on the next command after a drop.
 */
export class HostSession {
  readonly label: string;
  /** The key each hop presented, by "host:port". Later connections must see the same. */
  readonly seenKeys = new Map<string, HostKey>();
  private ssh: NodeSSH | undefined;
  private connecting: Promise<void> | undefined;
  private readonly shells: RemoteShell[] = [];
  private opening = 0;
  private readonly waiters: Array<(shell: RemoteShell | undefined) => void> = [];
  /** Shells handed to a caller; a shell is idle when alive and not lent. */
  private readonly lent = new Set<RemoteShell>();
  private maxShells = shellsPerHost();

  constructor(
    readonly conn: Connection,
    private readonly proxy: HostSession | undefined,
  ) {
    this.label = describe(conn);
  }

  /** Connects if needed, then checks each hop's key against what the caller expects. */
  async ensureConnected(expectedKeys: Record<string, string>): Promise<void> {
    if (this.proxy) await this.proxy.ensureConnected(expectedKeys);
    if (!this.ssh?.connection) {
      this.connecting ??= this.dial(expectedKeys).finally(() => {
        this.connecting = undefined;
      });
      await this.connecting;
    }
    const expected = this.conn.hostKey ?? expectedKeys[endpoint(this.conn)];
    const seen = this.seenKeys.get(endpoint(this.conn));
    if (expected && seen && !hostKeyMatches(expected, seen))
      throw new HostKeyMismatchError(this.label, fingerprintOf(expected), seen.fingerprint, seen.type);
  }

  /** The host keys of every hop, for trust on first use. */
  hostKeys(): Record<string, string> {
    const keys: Record<string, string> = this.proxy ? this.proxy.hostKeys() : {};
    for (const [hop, key] of this.seenKeys) keys[hop] = key.text;
    return keys;
  }

  async run(script: string, timeoutMs: number, expectedKeys: Record<string, string>): Promise<CommandResult> {
    await this.ensureConnected(expectedKeys);
    const shell = await this.acquire(expectedKeys);
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
  async forward(host: string, port: number, expectedKeys: Record<string, string>): Promise<Duplex> {
    await this.ensureConnected(expectedKeys);
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
   * Dials until it works, retrying only what can heal (a host that does not
   * answer in time, a connection cut mid-handshake) up to dialErrorLimit
   * attempts, each shown as it fails; anything else fails at once.
   */
  private async dial(expectedKeys: Record<string, string>): Promise<void> {
    const limit = this.conn.dialErrorLimit ?? DEFAULT_DIAL_ERROR_LIMIT;
    for (let attempt = 1; ; attempt++) {
      const started = Date.now();
      try {
        await this.dialOnce(expectedKeys);
        return;
      } catch (e) {
        if (e instanceof HostKeyMismatchError || e instanceof ConnectError) throw e;
        const failure = classifyDialError(e as Error, this.conn);
        trace({ event: "dial-failed", host: this.label, attempt, ms: Date.now() - started, what: failure.what });
        if (!failure.retryable || attempt >= limit)
          throw new ConnectError(dialFailedMessage(this.label, attempt, failure), false);
        const delay = Math.min(200 * 2 ** attempt, 2_000);
        progress(retryLine(this.label, attempt, limit, failure, delay));
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private async dialOnce(expectedKeys: Record<string, string>): Promise<void> {
    const hop = endpoint(this.conn);
    const expected = this.conn.hostKey ?? expectedKeys[hop] ?? this.seenKeys.get(hop)?.text;
    let mismatch: HostKeyMismatchError | undefined;
    const sock = this.proxy
      ? await this.proxy.forward(this.conn.host, this.conn.port ?? DEFAULT_PORT, expectedKeys)
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
        algorithms: { serverHostKey: { prepend: preferredAlgorithms(expected) } as never },
        hostVerifier: (blob: Buffer) => {
          const presented = hostKeyFromBlob(blob);
          if (expected && !hostKeyMatches(expected, presented)) {
            mismatch = new HostKeyMismatchError(
              this.label,
              fingerprintOf(expected),
              presented.fingerprint,
              presented.type,
            );
            return false;
          }
          this.seenKeys.set(hop, presented);
          return true;
        },
      });
    } catch (e) {
      ssh.dispose();
      if (mismatch) throw mismatch;
      // What it means (and whether to retry) is for dial to decide: dialErrors.ts.
      throw e;
    }
    const client = ssh.connection as Client;
    // Without a listener, a dropped connection would crash the provider host.
    client.on("error", (err) => trace({ event: "connection-error", host: this.label, message: err.message }));
    client.on("close", () => {
      if (this.ssh === ssh) this.ssh = undefined;
      for (const shell of this.shells.splice(0)) shell.close();
    });
    this.ssh = ssh;
    trace({ event: "handshake", host: this.label, ms: Date.now() - started });
  }

  private async acquire(expectedKeys: Record<string, string>): Promise<RemoteShell> {
    for (;;) {
      const idle = this.shells.find((s) => s.alive && !this.lent.has(s));
      if (idle) {
        this.lent.add(idle);
        return idle;
      }
      if (this.shells.filter((s) => s.alive).length + this.opening < this.maxShells) {
        this.opening++;
        try {
          await this.ensureConnected(expectedKeys);
          const shell = await RemoteShell.open(this.ssh?.connection as Client, this.label, this.conn.sudo ?? false);
          this.shells.push(shell);
          this.lent.add(shell);
          trace({ event: "shell-open", host: this.label, shells: this.shells.filter((s) => s.alive).length });
          return shell;
        } catch (e) {
          const err = e as Error;
          // sshd refused another session (MaxSessions): live with the shells we have.
          if (/open failure|administratively prohibited/i.test(err.message) && this.shells.some((s) => s.alive)) {
            this.maxShells = Math.max(1, this.shells.filter((s) => s.alive).length);
            continue;
          }
          throw err instanceof CommandError || err instanceof ConnectError
            ? err
            : new ConnectError(`cannot open a shell on ${this.label}: ${err.message}`, true);
        } finally {
          this.opening--;
        }
      }
      // Woken with a shell already lent to us, or with nothing: then look again.
      const got = await new Promise<RemoteShell | undefined>((resolve) => this.waiters.push(resolve));
      if (got?.alive) return got;
      if (got) this.lent.delete(got);
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
