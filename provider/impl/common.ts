import type * as pulumi from "@pulumi/pulumi";
import { CONNECTION_FIELDS, type Connection, checkConnection, DEFAULT_PORT, describe } from "../connection";
import { OTHER_FIELDS, type RawInputs, type Schema } from "../schema";
import { openRemote, type Remote, rememberRecordedKeys } from "../transport";
import { progress } from "../transport/progress";
import { Checker, isUnknown, show, unknownFieldReason } from "../validate";
import type { InputsOf, OutputsOf } from "./types";

/** Connects with the resource's connection and the host keys its state recorded. */
export function remoteFor(props: { connection: Connection; knownHostKeys?: Record<string, string> }): Promise<Remote> {
  return openRemote(props.connection, props.knownHostKeys ?? {});
}

/**
 * The keys to record: what state already had, with what this contact verified
 * over it. Unpinned, a hop's key was checked against the recorded one (same
 * key); pinned, the pin won, so a new pin replaces the recorded key (a key
 * rotation: pin the new key, `up`, then the pin may go).
 */
export function recordHostKeys(remote: Remote, previous?: Record<string, string>): Record<string, string> {
  return { ...(previous ?? {}), ...remote.hostKeys() };
}

/** What a resource's check and diff add to what its schema says. */
interface Hooks<O> {
  /** The rules that span fields, run after each field's own. */
  alsoCheck?: (checker: Checker, news: RawInputs) => void;
  /**
   * The old resource must be gone before its replacement can be created (its
   * name is unique on its host). Not when the replacement is on another host
   * (another host name: `diffConnection`'s `moves`).
   */
  deleteBeforeReplace?: true;
  /** Refresh found the host drifted from the outputs: an update puts it back. */
  drifted?: (olds: O) => boolean;
  /** Fields whose change replaces the resource although each alone updates in place (their combination is fixed at create). */
  alsoReplaces?: (olds: O, news: RawInputs) => string[];
}

/**
 * A resource's check and diff, from its schema. Check: the connection, each
 * field in the schema's order (its defaults filled in), then `alsoCheck`.
 * Diff: what replaces the resource, and whether anything else changed.
 */
export function fromSchema<S extends Schema>(schema: S, hooks: Hooks<OutputsOf<S>> = {}) {
  const fields = Object.entries(schema.fields);
  return {
    async check(_olds: unknown, news: RawInputs): Promise<pulumi.dynamic.CheckResult<InputsOf<S>>> {
      const checker = new Checker();
      checkConnection(checker, "connection", news.connection);
      const inputs: RawInputs = { ...news };
      for (const [key, f] of fields) inputs[key] = f.check(checker, key, news[key], news);
      hooks.alsoCheck?.(checker, news);
      checkNoOtherFields(checker, schema, news);
      return checkResult(checker, inputs);
    },

    async diff(id: string, olds: OutputsOf<S>, news: InputsOf<S>): Promise<pulumi.dynamic.DiffResult> {
      // The engine diffs every resource of the program, changed or not: what their states know
      // of a host is then known when a new resource first connects to it (trust on first use
      // across the stack, not per resource).
      if (olds.connection && olds.knownHostKeys) rememberRecordedKeys(olds.connection, olds.knownHostKeys);
      const conn = diffConnection(olds.connection, news.connection);
      if (conn.moves) tellMove(id, olds.connection, news.connection);
      const replaces = conn.replace ? ["connection"] : [];
      let update = conn.update || (hooks.drifted?.(olds) ?? false);
      for (const [key, f] of fields) {
        const change = f.diff((olds as RawInputs)[key], (news as RawInputs)[key]);
        if (change === "replace") replaces.push(key);
        else if (change === "update") update = true;
      }
      for (const key of hooks.alsoReplaces?.(olds, news as RawInputs) ?? [])
        if (!replaces.includes(key)) replaces.push(key);
      const changes = replaces.length > 0 || update;
      if (!hooks.deleteBeforeReplace) return { changes, replaces };
      // Objects on two hosts cannot collide: the replacement is created on the new host first, and
      // the engine deletes the old one only after the whole update succeeded. A misspelt host then
      // fails the create while the lab on the old host is still whole.
      return { changes, replaces, deleteBeforeReplace: !conn.moves };
    },
  };
}

/** Inputs that are not fields: the engine's serialized provider, and the names the class hands over. */
const NOT_FIELDS = ["__provider", OTHER_FIELDS];

/**
 * Refuses every top-level field the schema does not have: a misspelt one
 * (`loopbakUp`) would otherwise be ignored and its default used. The class
 * sends their names only (OTHER_FIELDS); a program that registers inputs
 * itself may send them whole. Reported without a property path: the engine
 * prints the value found at a failure's top-level path, and a field put here by
 * mistake may be a private key.
 */
function checkNoOtherFields(checker: Checker, schema: Schema, news: RawInputs): void {
  const valid = ["connection", ...Object.keys(schema.fields)];
  const named = Array.isArray(news[OTHER_FIELDS]) ? (news[OTHER_FIELDS] as unknown[]).map(String) : [];
  const others = [...Object.keys(news).filter((k) => !valid.includes(k) && !NOT_FIELDS.includes(k)), ...named];
  for (const key of new Set(others)) {
    const reason =
      Object.hasOwn(schema.outputs, key) || key === "knownHostKeys"
        ? `${show(key)} is an output, set by the provider: remove it from the program`
        : Object.hasOwn(schema.fields, key) && schema.fields[key].presence === "option"
          ? `${show(key)} is a resource option, not an arg: pass it in the resource's options ({ ${key}: true }, the third argument)`
          : CONNECTION_FIELDS.includes(key)
            ? `unknown field ${show(key)}: it belongs in connection (its value is not shown)`
            : unknownFieldReason(key, valid);
    checker.failures.push({ property: "", reason });
  }
}

/**
 * The checked inputs as the engine can take them back (see `plain`: a missing
 * required field would otherwise come back as `undefined`, and the provider
 * host's "Unexpected struct type." would hide the failures), with the failures.
 */
function checkResult(checker: Checker, inputs: Record<string, unknown>): pulumi.dynamic.CheckResult {
  const sendable = plain(inputs);
  return checker.ok ? { inputs: sendable } : { inputs: sendable, failures: checker.failures };
}

/**
 * The connection's part of a diff. Another host name (or port) is another
 * object: replace. It `moves` (created on the new host first) only when the
 * host name changes: another port on the same name is most likely the same
 * machine (a second sshd, a forwarded port), where create-first would meet the
 * old object ("already exists") and, with `adopt`, the old one's delete would
 * remove what the new one just adopted. Two names of one machine still count
 * as a move: nothing known at diff time, without connecting, tells them apart
 * (README, "another host"). Anything else (user, credentials, key pin, jump host,
 * sudo, the host name's case or trailing dot) only changes how we reach the
 * same host: update in place.
 */
export function diffConnection(
  olds: Connection | undefined,
  news: Connection | undefined,
): { replace: boolean; update: boolean; moves: boolean } {
  if (!olds || !news) return { replace: true, update: false, moves: false };
  if (isUnknown(news) || isUnknown(news.host) || isUnknown(news.port))
    return { replace: true, update: false, moves: false };
  const moves = hostName(olds.host) !== hostName(news.host);
  const replace = moves || (olds.port ?? DEFAULT_PORT) !== (news.port ?? DEFAULT_PORT);
  const update = !replace && JSON.stringify(normalizeConnection(olds)) !== JSON.stringify(normalizeConnection(news));
  return { replace, update, moves };
}

/** A host name as DNS compares it: case-insensitive, the root's trailing dot optional. */
function hostName(host: string): string {
  return host.toLowerCase().replace(/\.$/, "");
}

/**
 * Says in preview and up (the engine shows the provider host's stderr lines)
 * why an object is replaced and in which order: the diff itself can only name
 * `connection`, whose values are secret and not shown.
 */
function tellMove(id: string, from: Connection, to: Connection): void {
  const what = id.replace(/@[^@]*$/, "");
  progress(
    `${what} moves from ${describe(from)} to ${describe(to)}: created on the new host first, ` +
      "deleted from the old one only after the whole update succeeded",
  );
}

function normalizeConnection(conn: Connection): unknown {
  const entries = Object.entries(conn)
    .filter(([, v]) => v !== undefined && v !== null)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => [k, k === "proxy" && typeof v === "object" ? normalizeConnection(v as Connection) : v]);
  return Object.fromEntries(entries);
}

/**
 * Outputs as the engine can store them: the provider host's protobuf
 * conversion rejects `undefined`, so absent optional fields are dropped.
 */
export function plain<T>(value: T): T {
  return JSON.parse(JSON.stringify(value));
}
