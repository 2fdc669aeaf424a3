// State file handling for the local Pulumi-engine stand-in (see runner.ts).
//
// The state file is plain JSON. Values at secret paths are never written in
// plain text: they are replaced by `{ "__encrypted": "v1:<base64 iv|tag|ciphertext>" }`
// (AES-256-GCM). The key comes from the env var PULUMI_NETNS_STATE_KEY (any
// passphrase; the AES key is its SHA-256), or, when that is unset, from a random
// 32-byte key kept beside the state file in `<stateFile>.key` (mode 0600).
//
// During an operation, completed steps are appended to `<stateFile>.journal`
// (see StateStore); the state is the state file with the journal replayed on top.

import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

/** Path to a value inside a property bag: object keys and array indexes. */
export type PropertyPath = Array<string | number>;

export interface StateResource {
  urn: string;
  type: string;
  name: string;
  custom: boolean;
  /** Provider id ("" for components and the stack). */
  id: string;
  /** Checked inputs as sent to the provider (includes `__provider` for dynamic resources). */
  inputs: Record<string, unknown>;
  /** Outputs returned by the provider (includes `__provider`). For components: registered outputs. */
  outputs: Record<string, unknown>;
  /** Paths (in inputs and outputs) whose values are secret. */
  secretPaths: PropertyPath[];
  /** URNs this resource depends on (dependsOn + property dependencies). */
  dependencies: string[];
  /** Parent URN ("" for the stack). */
  parent: string;
  /** The serialized dynamic provider (`__provider`), "" when none. Also stored in inputs/outputs. */
  provider: string;
  /** Monotonic creation order. */
  createdAt: number;
  /** Options that matter after the program is gone. */
  deleteBeforeReplace?: boolean;
  retainOnDelete?: boolean;
  /** URN whose deletion takes this resource with it: deleting both skips this one's provider delete. */
  deletedWith?: string;
  /** True for an old copy of a replaced resource still waiting for its delete. */
  delete?: boolean;
}

export interface StateFile {
  version: 1;
  /** Next value for `createdAt`. */
  seq?: number;
  resources: StateResource[];
}

export const ENCRYPTED_KEY = "__encrypted";
export const STATE_KEY_ENV = "PULUMI_NETNS_STATE_KEY";

export function emptyState(): StateFile {
  return { version: 1, seq: 0, resources: [] };
}

export function pathKey(p: PropertyPath): string {
  return JSON.stringify(p);
}

function loadKey(stateFile: string, env: NodeJS.ProcessEnv, create: boolean): Buffer | undefined {
  const pass = env[STATE_KEY_ENV];
  if (pass) {
    return crypto.createHash("sha256").update(pass, "utf8").digest();
  }
  const keyFile = `${stateFile}.key`;
  if (fs.existsSync(keyFile)) {
    return Buffer.from(fs.readFileSync(keyFile, "utf8").trim(), "hex");
  }
  if (!create) {
    return undefined;
  }
  fs.mkdirSync(path.dirname(keyFile), { recursive: true });
  const key = crypto.randomBytes(32);
  fs.writeFileSync(keyFile, `${key.toString("hex")}\n`, { mode: 0o600, flag: "wx" });
  return key;
}

function encryptValue(key: Buffer, value: unknown): { [ENCRYPTED_KEY]: string } {
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv("aes-256-gcm", key, iv);
  const ct = Buffer.concat([cipher.update(JSON.stringify(value === undefined ? null : value), "utf8"), cipher.final()]);
  const tag = cipher.getAuthTag();
  return { [ENCRYPTED_KEY]: `v1:${Buffer.concat([iv, tag, ct]).toString("base64")}` };
}

function decryptValue(key: Buffer, blob: string): unknown {
  if (!blob.startsWith("v1:")) {
    throw new Error("unknown encrypted value format");
  }
  const raw = Buffer.from(blob.slice(3), "base64");
  const iv = raw.subarray(0, 12);
  const tag = raw.subarray(12, 28);
  const ct = raw.subarray(28);
  const decipher = crypto.createDecipheriv("aes-256-gcm", key, iv);
  decipher.setAuthTag(tag);
  const pt = Buffer.concat([decipher.update(ct), decipher.final()]).toString("utf8");
  return JSON.parse(pt);
}

/** Applies `fn` to the value at each path that exists in `obj` (returns a deep copy). */
function mapAtPaths(
  obj: Record<string, unknown>,
  paths: PropertyPath[],
  fn: (v: unknown) => unknown,
): Record<string, unknown> {
  const copy = JSON.parse(JSON.stringify(obj ?? {}));
  // Longer paths first is wrong for encryption (the parent would be encrypted after the child);
  // shortest first, and skip paths below an already transformed path.
  const sorted = [...paths].sort((a, b) => a.length - b.length);
  const done: PropertyPath[] = [];
  for (const p of sorted) {
    if (p.length === 0) {
      continue;
    }
    if (done.some((d) => d.length <= p.length && d.every((seg, i) => seg === p[i]))) {
      continue;
    }
    let cur: any = copy;
    for (let i = 0; i < p.length - 1; i++) {
      cur = cur?.[p[i] as any];
      if (cur === null || typeof cur !== "object") {
        cur = undefined;
        break;
      }
    }
    const last = p[p.length - 1];
    if (cur && Object.hasOwn(cur, last as any)) {
      cur[last as any] = fn(cur[last as any]);
      done.push(p);
    }
  }
  return copy;
}

function encryptResource(key: Buffer | undefined, r: StateResource): StateResource {
  if (!r.secretPaths || r.secretPaths.length === 0) {
    return r;
  }
  if (!key) {
    throw new Error("no state key available to encrypt secrets");
  }
  const enc = (v: unknown) => encryptValue(key, v);
  return { ...r, inputs: mapAtPaths(r.inputs, r.secretPaths, enc), outputs: mapAtPaths(r.outputs, r.secretPaths, enc) };
}

function decryptResource(key: Buffer | undefined, r: StateResource): StateResource {
  if (!r.secretPaths || r.secretPaths.length === 0) {
    return r;
  }
  const dec = (v: unknown) => {
    if (v && typeof v === "object" && typeof (v as any)[ENCRYPTED_KEY] === "string") {
      if (!key) {
        throw new Error(
          `state for ${r.urn} holds encrypted secrets but no key is available (set ${STATE_KEY_ENV} or restore the .key file)`,
        );
      }
      return decryptValue(key, (v as any)[ENCRYPTED_KEY]);
    }
    return v;
  };
  return { ...r, inputs: mapAtPaths(r.inputs, r.secretPaths, dec), outputs: mapAtPaths(r.outputs, r.secretPaths, dec) };
}

/** One change to the state, as the engine reports it after a completed step. */
export type StateChange = { put: StateResource } | { remove: StateResource };

/** A journal line: the changes of one completed step and `seq` after it. Records as in the state file. */
interface JournalLine {
  seq: number;
  ops: Array<{ put: StateResource } | { del: { urn: string; delete: boolean; createdAt: number } }>;
}

export function journalFile(stateFile: string): string {
  return `${stateFile}.journal`;
}

/** Identity of a record: the live record of a URN, or one pending-delete copy of it. */
function recordKey(r: { urn: string; delete?: boolean; createdAt: number }): string {
  return r.delete ? `D ${r.createdAt} ${r.urn}` : `L ${r.urn}`;
}

function readStateFile(stateFile: string): StateFile {
  if (!fs.existsSync(stateFile)) {
    return emptyState();
  }
  const raw = JSON.parse(fs.readFileSync(stateFile, "utf8")) as StateFile;
  if (raw.version !== 1 || !Array.isArray(raw.resources)) {
    throw new Error(`${stateFile}: not a version 1 state file`);
  }
  return raw;
}

/**
 * Applies the journal (if any) to the stored state, both as stored (secrets encrypted).
 * Replay is idempotent (the last operation on a record wins), so a journal left
 * behind by a crash between compaction's rename and the journal's removal is harmless.
 * A torn last line (crash mid-append) is ignored.
 */
function replayJournal(stateFile: string, raw: StateFile): { state: StateFile; lines: number } {
  const jf = journalFile(stateFile);
  if (!fs.existsSync(jf)) {
    return { state: raw, lines: 0 };
  }
  const text = fs.readFileSync(jf, "utf8");
  const byKey = new Map<string, StateResource>();
  for (const r of raw.resources) {
    byKey.set(recordKey(r), r);
  }
  let seq = raw.seq ?? raw.resources.length;
  let lines = 0;
  const all = text.split("\n");
  for (let i = 0; i < all.length; i++) {
    if (!all[i].trim()) {
      continue;
    }
    let line: JournalLine;
    try {
      line = JSON.parse(all[i]) as JournalLine;
    } catch (e) {
      if (all.slice(i + 1).some((l) => l.trim())) {
        throw new Error(`${jf}: line ${i + 1} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
      }
      break; // torn last line: that step never completed
    }
    lines++;
    for (const op of line.ops) {
      if ("put" in op) {
        byKey.set(recordKey(op.put), op.put);
      } else {
        byKey.delete(recordKey(op.del));
      }
    }
    seq = Math.max(seq, line.seq);
  }
  return { state: { version: 1, seq, resources: [...byKey.values()] }, lines };
}

/** Reads the stored state (state file plus journal), secrets still encrypted. */
function readStoredState(stateFile: string): { state: StateFile; lines: number } {
  return replayJournal(stateFile, readStateFile(stateFile));
}

/** Reads and decrypts the state (state file plus journal); a missing file is an empty state. */
export function readState(stateFile: string, env: NodeJS.ProcessEnv = process.env): StateFile {
  const raw = readStoredState(stateFile).state;
  const key = loadKey(stateFile, env, false);
  return {
    version: 1,
    seq: raw.seq ?? raw.resources.length,
    resources: raw.resources.map((r) => decryptResource(key, r)),
  };
}

/** Reads the state as stored (state file plus journal, secrets encrypted). */
export function readRawState(stateFile: string): StateFile {
  return readStoredState(stateFile).state;
}

function writeRaw(stateFile: string, out: StateFile): void {
  fs.mkdirSync(path.dirname(stateFile), { recursive: true });
  const tmp = `${stateFile}.${process.pid}.${crypto.randomBytes(4).toString("hex")}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(out, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, stateFile);
}

/** Encrypts secrets and writes the state atomically (temp file + rename); removes any journal. */
export function writeState(stateFile: string, state: StateFile, env: NodeJS.ProcessEnv = process.env): void {
  const needsKey = state.resources.some((r) => r.secretPaths && r.secretPaths.length > 0);
  const key = needsKey ? loadKey(stateFile, env, true) : undefined;
  writeRaw(stateFile, {
    version: 1,
    seq: state.seq,
    resources: [...state.resources].sort((a, b) => a.createdAt - b.createdAt).map((r) => encryptResource(key, r)),
  });
  fs.rmSync(journalFile(stateFile), { force: true });
}

/**
 * The state of one operation on disk: the state file plus an append-only journal
 * beside it (`<stateFile>.journal`, one JSON line per completed step with the
 * records it upserted, secrets encrypted as in the state file, and the records it
 * removed). `load` replays and compacts; `record` appends one line (no fsync: the
 * same guarantee as the rename it replaces); `compact` rewrites the state file and
 * drops the journal. Each record's encrypted form is cached, so records that did
 * not change are not re-encrypted.
 */
export class StateStore {
  private readonly encrypted = new WeakMap<StateResource, StateResource>();
  private key: Buffer | undefined;
  private fd: number | undefined;
  private dirty = false;

  constructor(
    readonly stateFile: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  /** Reads state file + journal (decrypted); a journal found here is compacted into the state file. */
  load(compactJournal = true): StateFile {
    const { state: raw, lines } = readStoredState(this.stateFile);
    this.key = loadKey(this.stateFile, this.env, false);
    const state: StateFile = {
      version: 1,
      seq: raw.seq ?? raw.resources.length,
      resources: raw.resources.map((r) => {
        const dec = decryptResource(this.key, r);
        this.encrypted.set(dec, r);
        return dec;
      }),
    };
    if (compactJournal && (lines > 0 || fs.existsSync(journalFile(this.stateFile)))) {
      this.dirty = true;
      this.compact(state);
    }
    return state;
  }

  private encrypt(r: StateResource): StateResource {
    let e = this.encrypted.get(r);
    if (!e) {
      if (r.secretPaths && r.secretPaths.length > 0 && !this.key) {
        this.key = loadKey(this.stateFile, this.env, true);
      }
      e = encryptResource(this.key, r);
      this.encrypted.set(r, e);
    }
    return e;
  }

  /** Appends one completed step's changes to the journal. */
  record(changes: StateChange[], seq: number): void {
    if (changes.length === 0) {
      return;
    }
    const line: JournalLine = {
      seq,
      ops: changes.map((c) =>
        "put" in c
          ? { put: this.encrypt(c.put) }
          : { del: { urn: c.remove.urn, delete: !!c.remove.delete, createdAt: c.remove.createdAt } },
      ),
    };
    if (this.fd === undefined) {
      fs.mkdirSync(path.dirname(this.stateFile), { recursive: true });
      this.fd = fs.openSync(journalFile(this.stateFile), "a", 0o600);
    }
    // One write per line: a crash leaves at most a torn last line, which replay ignores.
    const buf = Buffer.from(`${JSON.stringify(line)}\n`, "utf8");
    for (let off = 0; off < buf.length; ) {
      off += fs.writeSync(this.fd, buf, off, buf.length - off);
    }
    this.dirty = true;
  }

  /** Writes `state` to the state file (atomically) and removes the journal; nothing when nothing changed. */
  compact(state: StateFile): void {
    if (!this.dirty) {
      return;
    }
    writeRaw(this.stateFile, {
      version: 1,
      seq: state.seq,
      resources: [...state.resources].sort((a, b) => a.createdAt - b.createdAt).map((r) => this.encrypt(r)),
    });
    this.close();
    fs.rmSync(journalFile(this.stateFile), { force: true });
    this.dirty = false;
  }

  close(): void {
    if (this.fd !== undefined) {
      fs.closeSync(this.fd);
      this.fd = undefined;
    }
  }
}
