import { type Connection, DEFAULT_COMMAND_TIMEOUT } from "../connection";
import { CommandError } from "./errors";
import type { CommandResult } from "./remoteShell";
import { HostSession, poolKey } from "./session";

export { CommandError, ConnectError, HostKeyMismatchError } from "./errors";
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
  /** The host key of every hop seen so far, by "host:port" (for trust on first use). */
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
 * Connects (or reuses the pooled connection) and checks every hop's host key
 * against `hostKey` pins and the keys recorded in state (`knownHostKeys`).
 */
export async function openRemote(conn: Connection, knownHostKeys: Record<string, string> = {}): Promise<Remote> {
  const session = sessionFor(conn);
  await session.ensureConnected(knownHostKeys);
  return {
    label: session.label,
    hostKeys: () => session.hostKeys(),
    async run(script, options = {}) {
      const result = await session.run(
        script,
        options.timeoutMs ?? (conn.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT) * 1000,
        knownHostKeys,
      );
      if (result.code !== 0 && !options.allowFailure)
        throw new CommandError(session.label, script, result.code, result.stdout, result.stderr);
      return result;
    },
  };
}

/** Closes every pooled connection (tests and short-lived tools call this to exit promptly). */
export function closeAllRemotes(): void {
  for (const session of pool.values()) session.close();
  pool.clear();
}
