import { type Connection, DEFAULT_COMMAND_TIMEOUT } from "../connection";
import { CommandError } from "./errors";
import { type Caller, forgetHostKeys, rememberRecordedKeys } from "./knownKeys";
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

function sessionFor(conn: Connection): HostSession {
  const key = poolKey(conn);
  let session = pool.get(key);
  if (!session) {
    session = new HostSession(conn, conn.proxy ? sessionFor(conn.proxy) : undefined);
    pool.set(key, session);
  }
  return session;
}

/**
 * Connects (or reuses the pooled connection) and checks the key of every hop
 * against this caller's `hostKey` pins, else the keys its state recorded
 * (`knownHostKeys`), else the keys the stack's other resources know of that
 * host; then again before each command.
 */
export async function openRemote(conn: Connection, knownHostKeys: Record<string, string> = {}): Promise<Remote> {
  const session = sessionFor(conn);
  rememberRecordedKeys(conn, knownHostKeys);
  const caller: Caller = { conn, recorded: knownHostKeys, field: "connection" };
  const verified = await session.ensureConnected(caller);
  return {
    label: session.label,
    hostKeys: () => ({ ...verified }),
    async run(script, options = {}) {
      const result = await session.run(
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
  forgetHostKeys();
}
