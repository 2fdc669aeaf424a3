import { type Connection, DEFAULT_COMMAND_TIMEOUT } from "../connection";
import { CommandError } from "./errors";
import { forgetGaveUp } from "./gaveUp";
import { fingerprintOf } from "./hostKey";
import { atProxy, type Caller, expectationFor, forgetHostKeys, rememberRecordedKeys } from "./knownKeys";
import type { CommandResult } from "./remoteShell";
import { HostSession, poolKey } from "./session";

export { CommandError, ConnectError, HostKeyMismatchError } from "./errors";
export { rememberRecordedKeys } from "./knownKeys";
export type { CommandResult } from "./remoteShell";

export interface RunOptions {
  /** Return a non-zero exit instead of throwing. */
  allowFailure?: boolean;
  /** Default: the connection's commandTimeout. */
  timeoutMs?: number;
}

/** What a resource gets to talk to its host. It never sees ssh2. */
export interface Remote {
  /** "user@host:port" for messages. */
  readonly label: string;
  /** How long a command may run (connection.commandTimeout, in seconds); absent: DEFAULT_COMMAND_TIMEOUT. */
  readonly commandTimeoutSeconds?: number;
  /** Runs a shell script on the host (as root: through sudo -n when asked). */
  run(script: string, options?: RunOptions): Promise<CommandResult>;
  /**
   * The host key every hop presented, by "host:port", as checked for this
   * caller when it connected: what its state should record from now on.
   */
  hostKeys(): Record<string, string>;
}

// One pool per process: the provider host serves every dynamic resource of a
// deployment, so resources on one host share one connection.
const pool = new Map<string, HostSession>();
const ids = new Map<HostSession, string>();

/**
 * The session for `conn` through the jump host session `proxy`: the shared one
 * (`keys` null), or the one of the callers that expect exactly `keys` (fingerprints).
 */
function pooled(conn: Connection, proxy: HostSession | undefined, keys: string[] | null): HostSession {
  const key = JSON.stringify([poolKey(conn), proxy ? ids.get(proxy) : null, keys]);
  let session = pool.get(key);
  if (!session) {
    session = new HostSession(conn, proxy);
    pool.set(key, session);
    ids.set(session, key);
  }
  return session;
}

/**
 * The session a caller's commands run on: at every hop, one whose own
 * handshake presented a key this caller accepts. The shared connection when it
 * did (or when this caller dials it first); else a connection of its own that
 * asks for the expected key and checks it in its handshake. Never a key-only
 * handshake on the side: nothing ties one to the connection the commands use,
 * and whoever sits in the path can tell it apart and send it elsewhere.
 */
async function sessionFor(caller: Caller): Promise<HostSession> {
  const via = atProxy(caller);
  const proxy = via ? await sessionFor(via) : undefined;
  const shared = pooled(caller.conn, proxy, null);
  const expected = expectationFor(caller.conn, caller.recorded);
  if (!expected || (await shared.accepts(caller))) return shared;
  return pooled(caller.conn, proxy, [...new Set(expected.keys.map(fingerprintOf))].sort());
}

/**
 * Connects (or reuses the pooled connection) and checks the key of every hop
 * against this caller's `hostKey` pins, else the keys its state recorded
 * (`knownHostKeys`), else the keys the stack's other resources know of that
 * host; then again before each command.
 */
export async function openRemote(conn: Connection, knownHostKeys: Record<string, string> = {}): Promise<Remote> {
  rememberRecordedKeys(conn, knownHostKeys);
  const caller: Caller = { conn, recorded: knownHostKeys, field: "connection" };
  const session = await sessionFor(caller);
  const verified = await session.ensureConnected(caller);
  return {
    label: session.label,
    commandTimeoutSeconds: conn.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT,
    hostKeys: () => ({ ...verified }),
    async run(script, options = {}) {
      // Again for each command: after a drop, the shared connection may have been dialed by another caller.
      const result = await (await sessionFor(caller)).run(
        script,
        options.timeoutMs ?? (conn.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT) * 1000,
        caller,
      );
      if (result.code !== 0 && !options.allowFailure)
        throw new CommandError(session.label, script, result.code, result.stdout, result.stderr);
      return result;
    },
  };
}

/**
 * Closes every pooled connection and forgets the host keys learnt (tests and
 * short-lived tools call this to exit promptly, or to start from nothing).
 */
export function closeAllRemotes(): void {
  for (const session of pool.values()) session.close();
  pool.clear();
  ids.clear();
  forgetHostKeys();
  forgetGaveUp();
}
