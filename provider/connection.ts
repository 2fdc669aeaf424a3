import type * as pulumi from "@pulumi/pulumi";
import { type ArgsOf, type CheckedOf, field, type Rule } from "./schema";
import {
  boolean,
  type Checker,
  hostKey,
  hostName,
  integerIn,
  isUnknown,
  port,
  seconds,
  show,
  unknownFieldReason,
  userName,
} from "./validate";

/** "a string", "a list", ...: what a value is, for messages that must not show it. */
function kindOf(v: unknown): string {
  if (Array.isArray(v)) return "a list";
  return typeof v === "object" ? "an object" : `a ${typeof v}`;
}

/**
 * A connection field whose rule shows the value it refuses, run only on a
 * plain value: an object or list in a connection field may be (or hold) the
 * whole connection with its secrets.
 */
function shownIfPlain<T>(rule: Rule) {
  return field<T>((v) => (typeof v === "object" && v !== null ? `is ${kindOf(v)} (its value is not shown)` : rule(v)));
}

/** A secret: its rule never shows the value. */
const secret = (rule: Rule) => field<string>(rule);
const isString: Rule = (v) => (typeof v === "string" ? undefined : "must be a string");

/**
 * The connection's fields, in the order check reports them. How a change of
 * the connection is diffed is decided for it as a whole (diffConnection).
 */
const CONNECTION = {
  /** The host's name or address. */
  host: shownIfPlain<string>(hostName).required(),
  /** The SSH port (default 22). */
  port: shownIfPlain<number>(port),
  /** The SSH user (default root; another user needs `sudo: true`). */
  user: shownIfPlain<string>(userName),
  /**
   * The host's key, pinned: `ssh-ed25519 AAAA...` (or ECDSA, RSA) or `SHA256:...`. Without it the key
   * seen at first contact is recorded in `knownHostKeys` and required from then on; with it, the pinned
   * key replaces the recorded one (how a changed host key is accepted: pin it, `up`, then unpin).
   */
  hostKey: shownIfPlain<string>(hostKey),
  /** Run commands through `sudo -n` (passwordless sudo) as a user other than root. */
  sudo: shownIfPlain<boolean>(boolean),
  /**
   * How many times to try to connect to a host that does not answer before giving up (default 10,
   * as in `@pulumi/command`: with perDialTimeout, about 165 s for a host that drops every packet;
   * each failed attempt is shown as it happens). A name that does not resolve,
   * a refused port or a refused login fail at once, whatever this says.
   */
  dialErrorLimit: shownIfPlain<number>(integerIn(1, 100)),
  /** Seconds each attempt to connect (TCP, SSH handshake and login) may take (default 15). */
  perDialTimeout: shownIfPlain<number>(seconds),
  /**
   * Seconds one remote command may run (default 120). A command that runs longer is killed on the
   * host and what a create had made by then is removed again; raise it for a slow host.
   */
  commandTimeout: shownIfPlain<number>(seconds),
  /** The user's password (secret: stored encrypted, never shown). */
  password: secret(isString),
  /** The passphrase of an encrypted `privateKey` (secret). */
  privateKeyPassword: secret(isString),
  /** The private key, PEM or OpenSSH text (secret: stored encrypted, never shown, however it is passed). */
  privateKey: secret((v) =>
    typeof v === "string" && /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(v)
      ? undefined
      : "is not a PEM or OpenSSH private key (its text is not shown)",
  ),
  /** The path of an ssh-agent socket to authenticate with. */
  agentSocketPath: shownIfPlain<string>((v) =>
    typeof v === "string" && v.startsWith("/") && !/[\0\n]/.test(v)
      ? undefined
      : `${show(v)} is not an absolute socket path`,
  ),
  /** A jump host to reach this host through, itself a connection (up to 8 deep). */
  // (Its own check passes here: checkConnection checks a jump host as a connection of its own, one level deeper.)
  proxy: field<Connection, pulumi.Input<ConnectionArgs>>(() => undefined),
};

/** The names of the connection's fields. */
export const CONNECTION_FIELDS: readonly string[] = Object.keys(CONNECTION);

/**
 * How to reach a Linux host over SSH. The same field names as the connection
 * of the Pulumi Command provider (`remote.Connection`), so an existing object
 * can be reused as it is.
 */

export interface ConnectionArgs extends ArgsOf<typeof CONNECTION> {}

/** A `ConnectionArgs` with every input resolved: what the provider receives. */
export interface Connection extends CheckedOf<typeof CONNECTION> {}

export const DEFAULT_PORT = 22;
export const DEFAULT_USER = "root";
export const DEFAULT_DIAL_ERROR_LIMIT = 10;
export const DEFAULT_PER_DIAL_TIMEOUT = 15;
export const DEFAULT_COMMAND_TIMEOUT = 120;
const MAX_PROXY_DEPTH = 8;

/** "user@host:port", how a host is named in messages and in recorded host keys. */
export function describe(conn: Connection): string {
  return `${conn.user ?? DEFAULT_USER}@${conn.host}:${conn.port ?? DEFAULT_PORT}`;
}

/** "host:port", the identity a host key belongs to. */
export function endpoint(conn: Connection): string {
  return `${conn.host}:${conn.port ?? DEFAULT_PORT}`;
}

/** Validates a connection (and its chain of jump hosts) without ever echoing a secret. */
export function checkConnection(checker: Checker, property: string, conn: unknown, depth = 0): void {
  if (conn === undefined || conn === null || isUnknown(conn)) {
    checker.field(property, conn, () => undefined, true);
    return;
  }
  if (typeof conn !== "object" || Array.isArray(conn)) {
    // Never shown: a connection passed whole as a string or a list holds its
    // secrets too. Nor reported on the top-level `connection` path itself: the
    // engine prints the value at a failure's path, and at that path it prints
    // even a secret's contents (below it, a secret shows as <nil>).
    const at = depth === 0 ? `${property}.host` : property;
    checker.failures.push({
      property: at,
      reason: `${property}: is ${kindOf(conn)}, not an object with host, user, privateKey, ... (its value is not shown)`,
    });
    return;
  }
  const c = conn as Record<string, unknown>;
  for (const key of Object.keys(c)) {
    if (!Object.hasOwn(CONNECTION, key))
      checker.fail(`${property}.${key}`, unknownFieldReason(key, CONNECTION_FIELDS, "connection field"));
  }
  for (const [key, f] of Object.entries(CONNECTION)) f.check(checker, `${property}.${key}`, c[key], c);
  if (c.proxy !== undefined) {
    if (depth >= MAX_PROXY_DEPTH) checker.fail(`${property}.proxy`, `more than ${MAX_PROXY_DEPTH} jump hosts`);
    else checkConnection(checker, `${property}.proxy`, c.proxy, depth + 1);
  }
}
