// State file handling for the local Pulumi-engine stand-in (see runner.ts).
//
// The state file is plain JSON. Values at secret paths are never written in
// plain text: they are replaced by `{ "__encrypted": "v1:<base64 iv|tag|ciphertext>" }`
// (AES-256-GCM). The key comes from the env var PULUMI_NETNS_STATE_KEY (any
// passphrase; the AES key is its SHA-256), or, when that is unset, from a random
// 32-byte key kept beside the state file in `<stateFile>.key` (mode 0600).

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

/** Reads and decrypts a state file; a missing file is an empty state. */
export function readState(stateFile: string, env: NodeJS.ProcessEnv = process.env): StateFile {
  if (!fs.existsSync(stateFile)) {
    return emptyState();
  }
  const raw = JSON.parse(fs.readFileSync(stateFile, "utf8")) as StateFile;
  if (raw.version !== 1 || !Array.isArray(raw.resources)) {
    throw new Error(`${stateFile}: not a version 1 state file`);
  }
  const key = loadKey(stateFile, env, false);
  return {
    version: 1,
    seq: raw.seq ?? raw.resources.length,
    resources: raw.resources.map((r) => decryptResource(key, r)),
  };
}

/** Reads the state file as stored (secrets still encrypted). */
export function readRawState(stateFile: string): StateFile {
  if (!fs.existsSync(stateFile)) {
    return emptyState();
  }
  return JSON.parse(fs.readFileSync(stateFile, "utf8")) as StateFile;
}

/** Encrypts secrets and writes the state atomically (temp file + rename). */
export function writeState(stateFile: string, state: StateFile, env: NodeJS.ProcessEnv = process.env): void {
  const needsKey = state.resources.some((r) => r.secretPaths && r.secretPaths.length > 0);
  const key = needsKey ? loadKey(stateFile, env, true) : undefined;
  const out: StateFile = {
    version: 1,
    seq: state.seq,
    resources: [...state.resources].sort((a, b) => a.createdAt - b.createdAt).map((r) => encryptResource(key, r)),
  };
  fs.mkdirSync(path.dirname(stateFile), { recursive: true });
  const tmp = `${stateFile}.${process.pid}.${crypto.randomBytes(4).toString("hex")}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(out, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, stateFile);
}
