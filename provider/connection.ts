import type * as pulumi from "@pulumi/pulumi";
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

/**
 * How to reach a Linux host over SSH. Same field names as `@pulumi/command`'s
 * `remote.Connection`, so an existing object can be reused as it is.
 */
export interface ConnectionArgs {
  host: pulumi.Input<string>;
  port?: pulumi.Input<number>;
  user?: pulumi.Input<string>;
  password?: pulumi.Input<string>;
  privateKey?: pulumi.Input<string>;
  privateKeyPassword?: pulumi.Input<string>;
  agentSocketPath?: pulumi.Input<string>;
  hostKey?: pulumi.Input<string>;
  proxy?: pulumi.Input<ConnectionArgs>;
  sudo?: pulumi.Input<boolean>;
  dialErrorLimit?: pulumi.Input<number>;
  perDialTimeout?: pulumi.Input<number>;
}

/** A `ConnectionArgs` with every input resolved: what the provider receives. */
export interface Connection {
  host: string;
  port?: number;
  user?: string;
  password?: string;
  privateKey?: string;
  privateKeyPassword?: string;
  agentSocketPath?: string;
  hostKey?: string;
  proxy?: Connection;
  sudo?: boolean;
  dialErrorLimit?: number;
  perDialTimeout?: number;
}

export const DEFAULT_PORT = 22;
export const DEFAULT_USER = "root";
export const DEFAULT_DIAL_ERROR_LIMIT = 10;
export const DEFAULT_PER_DIAL_TIMEOUT = 15;
const MAX_PROXY_DEPTH = 8;

/** The fields whose values must never be shown, logged or stored in plain text. */
export const SECRET_FIELDS = ["password", "privateKey", "privateKeyPassword"] as const;

/** "user@host:port", how a host is named in messages and in recorded host keys. */
export function describe(conn: Connection): string {
  return `${conn.user ?? DEFAULT_USER}@${conn.host}:${conn.port ?? DEFAULT_PORT}`;
}

/** "host:port", the identity a host key belongs to. */
export function endpoint(conn: Connection): string {
  return `${conn.host}:${conn.port ?? DEFAULT_PORT}`;
}

/** "a string", "a list", ...: what a value is, for messages that must not show it. */
function kindOf(v: unknown): string {
  if (Array.isArray(v)) return "a list";
  return typeof v === "object" ? "an object" : `a ${typeof v}`;
}

/**
 * A connection field's rule, run only on a plain value: the rules show the
 * value they refuse, and an object or list in a connection field may be (or
 * hold) the whole connection with its secrets.
 */
function shownIfPlain(rule: (v: unknown) => string | undefined): (v: unknown) => string | undefined {
  return (v) => (typeof v === "object" && v !== null ? `is ${kindOf(v)} (its value is not shown)` : rule(v));
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
  const known = new Set([
    "host",
    "port",
    "user",
    "password",
    "privateKey",
    "privateKeyPassword",
    "agentSocketPath",
    "hostKey",
    "proxy",
    "sudo",
    "dialErrorLimit",
    "perDialTimeout",
  ]);
  for (const key of Object.keys(c)) {
    if (!known.has(key)) checker.fail(`${property}.${key}`, `unknown connection field ${show(key)}`);
  }
  checker.field(`${property}.host`, c.host, shownIfPlain(hostName), true);
  checker.field(`${property}.port`, c.port, shownIfPlain(port));
  checker.field(`${property}.user`, c.user, shownIfPlain(userName));
  checker.field(`${property}.hostKey`, c.hostKey, shownIfPlain(hostKey));
  checker.field(`${property}.sudo`, c.sudo, shownIfPlain(boolean));
  checker.field(`${property}.dialErrorLimit`, c.dialErrorLimit, shownIfPlain(integerIn(1, 100)));
  checker.field(`${property}.perDialTimeout`, c.perDialTimeout, shownIfPlain(seconds));
  checker.field(`${property}.password`, c.password, (v) => (typeof v === "string" ? undefined : "must be a string"));
  checker.field(`${property}.privateKeyPassword`, c.privateKeyPassword, (v) =>
    typeof v === "string" ? undefined : "must be a string",
  );
  checker.field(`${property}.privateKey`, c.privateKey, (v) =>
    typeof v === "string" && /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(v)
      ? undefined
      : "is not a PEM or OpenSSH private key (its text is not shown)",
  );
  checker.field(
    `${property}.agentSocketPath`,
    c.agentSocketPath,
    shownIfPlain((v) =>
      typeof v === "string" && v.startsWith("/") && !/[\0\n]/.test(v)
        ? undefined
        : `${show(v)} is not an absolute socket path`,
    ),
  );
  if (c.proxy !== undefined) {
    if (depth >= MAX_PROXY_DEPTH) checker.fail(`${property}.proxy`, `more than ${MAX_PROXY_DEPTH} jump hosts`);
    else checkConnection(checker, `${property}.proxy`, c.proxy, depth + 1);
  }
}
