import type * as pulumi from "@pulumi/pulumi";
import { type Connection, checkConnection, DEFAULT_PORT } from "../connection";
import { openRemote, type Remote } from "../transport";
import { Checker, isUnknown } from "../validate";

/** Outputs every resource of this package carries, so delete and read need nothing else. */
export interface BaseOutputs {
  connection: Connection;
  /** Host keys seen at first contact, by "host:port" (trust on first use). */
  knownHostKeys: Record<string, string>;
}

/** Connects with the resource's connection and the host keys its state recorded. */
export function remoteFor(props: { connection: Connection; knownHostKeys?: Record<string, string> }): Promise<Remote> {
  return openRemote(props.connection, props.knownHostKeys ?? {});
}

/** The keys to record: what state already had, plus what this contact saw. */
export function recordHostKeys(remote: Remote, previous?: Record<string, string>): Record<string, string> {
  return { ...remote.hostKeys(), ...(previous ?? {}) };
}

/** Starts a check: validates the connection and returns the checker for the rest. */
export function startCheck(news: Record<string, unknown>): Checker {
  const checker = new Checker();
  checkConnection(checker, "connection", news.connection);
  return checker;
}

/**
 * The checked inputs as the engine can take them back (see `plain`: a missing
 * required field would otherwise come back as `undefined`, and the provider
 * host's "Unexpected struct type." would hide the failures), with the failures.
 */
export function checkResult(checker: Checker, inputs: Record<string, unknown>): pulumi.dynamic.CheckResult {
  const sendable = plain(inputs);
  return checker.ok ? { inputs: sendable } : { inputs: sendable, failures: checker.failures };
}

/**
 * The connection's part of a diff. Another host (or port) is another object:
 * replace. Anything else (user, credentials, key pin, jump host, sudo) only
 * changes how we reach the same host: update in place.
 */
export function diffConnection(
  olds: Connection | undefined,
  news: Connection | undefined,
): { replace: boolean; update: boolean } {
  if (!olds || !news) return { replace: true, update: false };
  if (isUnknown(news) || isUnknown(news.host) || isUnknown(news.port)) return { replace: true, update: false };
  const replace = olds.host !== news.host || (olds.port ?? DEFAULT_PORT) !== (news.port ?? DEFAULT_PORT);
  const update = !replace && JSON.stringify(normalizeConnection(olds)) !== JSON.stringify(normalizeConnection(news));
  return { replace, update };
}

function normalizeConnection(conn: Connection): unknown {
  const entries = Object.entries(conn)
    .filter(([, v]) => v !== undefined && v !== null)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => [k, k === "proxy" && typeof v === "object" ? normalizeConnection(v as Connection) : v]);
  return Object.fromEntries(entries);
}

/** Deep equality for plain JSON values (order-sensitive for arrays). */
export function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** Turns an unexpected failure into an error that names the resource. */
export function failWith(what: string, err: unknown): never {
  const message = err instanceof Error ? err.message : String(err);
  throw new Error(`${what}: ${message}`);
}

/**
 * Outputs as the engine can store them: the provider host's protobuf
 * conversion rejects `undefined`, so absent optional fields are dropped.
 */
export function plain<T>(value: T): T {
  return JSON.parse(JSON.stringify(value));
}
