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
  host: shownIfPlain<string>(hostName).required(),
  port: shownIfPlain<number>(port),
  user: shownIfPlain<string>(userName),
  hostKey: shownIfPlain<string>(hostKey),
  sudo: shownIfPlain<boolean>(boolean),
  dialErrorLimit: shownIfPlain<number>(integerIn(1, 100)),
  perDialTimeout: shownIfPlain<number>(seconds),
  password: secret(isString),
  privateKeyPassword: secret(isString),
  privateKey: secret((v) =>
    typeof v === "string" && /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(v)
      ? undefined
      : "is not a PEM or OpenSSH private key (its text is not shown)",
  ),
  agentSocketPath: shownIfPlain<string>((v) =>
    typeof v === "string" && v.startsWith("/") && !/[\0\n]/.test(v)
      ? undefined
      : `${show(v)} is not an absolute socket path`,
  ),
  /** Passes here: checkConnection checks a jump host as a connection of its own, one level deeper. */
  proxy: field<Connection, pulumi.Input<ConnectionArgs>>(() => undefined),
};

/**
 * How to reach a Linux host over SSH. Same field names as `@pulumi/command`'s
 * `remote.Connection`, so an existing object can be reused as it is.
 */
/** The names of the connection's fields. */
export const CONNECTION_FIELDS: readonly string[] = Object.keys(CONNECTION);

export interface ConnectionArgs extends ArgsOf<typeof CONNECTION> {}

/** A `ConnectionArgs` with every input resolved: what the provider receives. */
export interface Connection extends CheckedOf<typeof CONNECTION> {}

export const DEFAULT_PORT = 22;
export const DEFAULT_USER = "root";
export const DEFAULT_DIAL_ERROR_LIMIT = 10;
export const DEFAULT_PER_DIAL_TIMEOUT = 15;
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
    if (!Object.hasOwn(CONNECTION, key)) checker.fail(`${property}.${key}`, `unknown connection field ${show(key)}`);
  }
  for (const [key, f] of Object.entries(CONNECTION)) f.check(checker, `${property}.${key}`, c[key], c);
  if (c.proxy !== undefined) {
    if (depth >= MAX_PROXY_DEPTH) checker.fail(`${property}.proxy`, `more than ${MAX_PROXY_DEPTH} jump hosts`);
    else checkConnection(checker, `${property}.proxy`, c.proxy, depth + 1);
  }
}
