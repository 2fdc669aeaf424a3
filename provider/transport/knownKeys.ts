import { type Connection, endpoint } from "../connection";
import { type Expectation, fingerprintOf } from "./hostKey";

/**
 * The host keys this process knows, for trust on first use across a stack.
 * The provider host serves every dynamic resource of one engine operation, so
 * what one resource's state recorded (or one connection verified) holds for
 * the next resource on the same host: a new resource must not accept another
 * key just because its own state is empty.
 *
 * A host is named by its hop path ("jump:22 > 10.0.0.5:22"): the same address
 * behind two jump hosts may be two machines.
 */
const known = new Map<string, Map<string, string>>();

/** "jump:22 > target:22": the hops that lead to `conn`'s host, and that host. */
export function hopPath(conn: Connection): string {
  return conn.proxy ? `${hopPath(conn.proxy)} > ${endpoint(conn)}` : endpoint(conn);
}

export function rememberHostKey(path: string, key: string): void {
  const keys = known.get(path) ?? new Map<string, string>();
  keys.set(fingerprintOf(key), key);
  known.set(path, keys);
}

/** Records what a caller's state knows (`knownHostKeys`, by "host:port") for each hop of its connection. */
export function rememberRecordedKeys(conn: Connection, recorded: Readonly<Record<string, string>>): void {
  for (let hop: Connection | undefined = conn; hop; hop = hop.proxy) {
    const key = recorded[endpoint(hop)];
    if (typeof key === "string" && key) rememberHostKey(hopPath(hop), key);
  }
}

/**
 * What one caller requires of one hop (`hop` is the caller's connection at
 * that hop): its pin, else the key its own state recorded, else the keys
 * other resources of the stack know for that host, else nothing (first use).
 */
export function expectationFor(hop: Connection, recorded: Readonly<Record<string, string>>): Expectation | undefined {
  if (hop.hostKey) return { keys: [hop.hostKey], source: "pin" };
  const own = recorded[endpoint(hop)];
  if (own) return { keys: [own], source: "state" };
  const stack = [...(known.get(hopPath(hop))?.values() ?? [])];
  return stack.length > 0 ? { keys: stack, source: "stack" } : undefined;
}

/** Forgets every key (with the pooled connections: tests start from nothing). */
export function forgetHostKeys(): void {
  known.clear();
}

/** One caller of openRemote at one hop: its connection there, its state's keys, and the field that names the hop. */
export interface Caller {
  conn: Connection;
  recorded: Readonly<Record<string, string>>;
  /** `connection`, `connection.proxy`, ...: what its errors tell the user to set. */
  field: string;
}

/** The same caller at its jump host's hop. */
export function atProxy(caller: Caller): Caller | undefined {
  const proxy = caller.conn.proxy;
  return proxy ? { conn: proxy, recorded: caller.recorded, field: `${caller.field}.proxy` } : undefined;
}
