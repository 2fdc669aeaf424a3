// The engine half of the local `pulumi up` stand-in: a resource monitor that the
// Pulumi Node.js SDK talks to (in place of the engine's gRPC monitor), a client
// for the dynamic provider host, and the step logic (check/diff/create/update/
// replace/delete/read) that the Pulumi engine's step generator would run.
//
// Everything that touches the SDK is loaded at run time from the SDK the
// program uses (see `loadSdk`), so this file has no static dependency on
// `@pulumi/pulumi` internals.

import { type ChildProcess, spawn } from "node:child_process";
import * as path from "node:path";
import * as readline from "node:readline";
import { type PropertyPath, pathKey, type StateChange, type StateFile, type StateResource } from "./runnerState";

export const ROOT_STACK_TYPE = "pulumi:pulumi:Stack";
export const PROVIDER_KEY = "__provider";

// SDK modules are loaded dynamically, so their values are untyped here.
type Any = any;

/** The SDK pieces the runner needs, resolved from the program's SDK. */
export interface Sdk {
  dir: string;
  pulumi: Any;
  settings: Any;
  state: Any;
  stack: Any;
  rpc: Any;
  grpc: Any;
  structproto: Any;
  provproto: Any;
  provgrpc: Any;
  resproto: Any;
}

/** Resolves the SDK directory (the one `programDir` would load). */
export function resolveSdkDir(programDir: string): string {
  let pkg: string;
  try {
    pkg = require.resolve("@pulumi/pulumi/package.json", { paths: [programDir] });
  } catch {
    pkg = require.resolve("@pulumi/pulumi/package.json");
  }
  return path.dirname(pkg);
}

export function loadSdk(sdkDir: string): Sdk {
  const req = (p: string) => require(path.join(sdkDir, p));
  const fromSdk = (name: string) => require(require.resolve(name, { paths: [sdkDir] }));
  return {
    dir: sdkDir,
    pulumi: req("index.js"),
    settings: req("runtime/settings.js"),
    state: req("runtime/state.js"),
    stack: req("runtime/stack.js"),
    rpc: req("runtime/rpc.js"),
    grpc: fromSdk("@grpc/grpc-js"),
    structproto: fromSdk("google-protobuf/google/protobuf/struct_pb"),
    provproto: req("proto/provider_pb.js"),
    provgrpc: req("proto/provider_grpc_pb.js"),
    resproto: req("proto/resource_pb.js"),
  };
}

// ---------------------------------------------------------------------------
// Wire-format helpers (secrets, unknowns)

export interface Sigs {
  sigKey: string;
  secretSig: string;
  unknown: string;
}

export function sigsOf(sdk: Sdk): Sigs {
  return { sigKey: sdk.rpc.specialSigKey, secretSig: sdk.rpc.specialSecretSig, unknown: sdk.rpc.unknownValue };
}

function isSecretWire(s: Sigs, v: unknown): v is { value: unknown } {
  return !!v && typeof v === "object" && (v as Any)[s.sigKey] === s.secretSig;
}

/** Removes secret wrappers, recording the paths that were secret. */
export function unwrapSecrets(s: Sigs, v: unknown, p: PropertyPath, out: PropertyPath[]): unknown {
  if (isSecretWire(s, v)) {
    out.push(p);
    const inner: PropertyPath[] = [];
    return unwrapSecrets(s, (v as Any).value, p, inner);
  }
  if (Array.isArray(v)) {
    return v.map((x, i) => unwrapSecrets(s, x, [...p, i], out));
  }
  if (v && typeof v === "object") {
    if ((v as Any)[s.sigKey] !== undefined) {
      return v; // resource reference, asset, ...: pass through untouched
    }
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      o[k] = unwrapSecrets(s, x, [...p, k], out);
    }
    return o;
  }
  return v;
}

/** Wraps the values at the given paths as secrets (wire format). */
export function wrapSecrets(s: Sigs, v: unknown, paths: Set<string>, p: PropertyPath = []): unknown {
  if (p.length > 0 && paths.has(pathKey(p))) {
    return { [s.sigKey]: s.secretSig, value: v };
  }
  if (Array.isArray(v)) {
    return v.map((x, i) => wrapSecrets(s, x, paths, [...p, i]));
  }
  if (v && typeof v === "object" && (v as Any)[s.sigKey] === undefined) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      o[k] = wrapSecrets(s, x, paths, [...p, k]);
    }
    return o;
  }
  return v;
}

/** A display copy: secrets become "[secret]", unknowns "[unknown]". */
export function displayValue(s: Sigs, v: unknown): unknown {
  if (isSecretWire(s, v)) {
    return "[secret]";
  }
  if (v === s.unknown) {
    return "[unknown]";
  }
  if (Array.isArray(v)) {
    return v.map((x) => displayValue(s, x));
  }
  if (v && typeof v === "object") {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      o[k] = displayValue(s, x);
    }
    return o;
  }
  return v;
}

export function containsUnknown(s: Sigs, v: unknown): boolean {
  if (v === s.unknown) {
    return true;
  }
  if (Array.isArray(v)) {
    return v.some((x) => containsUnknown(s, x));
  }
  if (v && typeof v === "object") {
    return Object.values(v).some((x) => containsUnknown(s, x));
  }
  return false;
}

export function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(canon(a)) === JSON.stringify(canon(b));
}

function canon(v: unknown): unknown {
  if (Array.isArray(v)) {
    return v.map(canon);
  }
  if (v && typeof v === "object") {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .filter((k) => (v as Any)[k] !== undefined)
        .map((k) => [k, canon((v as Any)[k])]),
    );
  }
  return v;
}

function plain(v: unknown): Record<string, unknown> {
  return JSON.parse(JSON.stringify(v ?? {}));
}

// ---------------------------------------------------------------------------
// Concurrency

export class Semaphore {
  private active = 0;
  private readonly waiters: Array<() => void> = [];
  constructor(private readonly limit: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) {
      await new Promise<void>((r) => this.waiters.push(r));
    } else {
      this.active++;
    }
    try {
      return await fn();
    } finally {
      const next = this.waiters.shift();
      if (next) {
        next(); // hand the slot over
      } else {
        this.active--;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Provider host

function grpcMessage(e: Any): string {
  const msg = String(e?.details || e?.message || e);
  return msg.replace(/^\d+ [A-Z_]+: /, "");
}

/** One `cmd/dynamic-provider` process plus a gRPC client for it. */
export class ProviderHost {
  proc?: ChildProcess;
  private client: Any;
  private constructor(private readonly sdk: Sdk) {}

  /** Spawns the host (needs only the SDK directory) and waits for its port; connect with `connect`. */
  static spawn(
    sdkDir: string,
    cwd: string,
    env: NodeJS.ProcessEnv,
    log: (l: string) => void,
  ): { proc: ChildProcess; port: Promise<number> } {
    const entry = path.join(sdkDir, "cmd", "dynamic-provider", "index.js");
    const proc = spawn(process.execPath, [entry, "127.0.0.1:1"], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    readline.createInterface({ input: proc.stderr! }).on("line", (l) => log(`[provider] ${l}`));
    const port = new Promise<number>((resolve, reject) => {
      let got = false;
      const rl = readline.createInterface({ input: proc.stdout! });
      rl.on("line", (l) => {
        if (!got && /^\d+$/.test(l.trim())) {
          got = true;
          resolve(Number(l.trim()));
        } else {
          log(`[provider] ${l}`);
        }
      });
      proc.on("error", reject);
      proc.on("exit", (code, sig) => {
        if (!got) {
          reject(new Error(`dynamic provider host exited before printing its port (code ${code}, signal ${sig})`));
        }
      });
    });
    port.catch(() => {});
    return { proc, port };
  }

  static async connect(sdk: Sdk, spawned: { proc: ChildProcess; port: Promise<number> }): Promise<ProviderHost> {
    const host = new ProviderHost(sdk);
    host.proc = spawned.proc;
    const port = await spawned.port;
    host.client = new sdk.provgrpc.ResourceProviderClient(`127.0.0.1:${port}`, sdk.grpc.credentials.createInsecure());
    return host;
  }

  kill(): void {
    try {
      this.client?.close();
    } catch {
      // ignore
    }
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill("SIGKILL");
    }
  }

  private call<T>(method: string, req: Any): Promise<T> {
    return new Promise((resolve, reject) => {
      this.client[method](req, (err: Any, resp: T) => (err ? reject(new Error(grpcMessage(err))) : resolve(resp)));
    });
  }

  private struct(v: unknown): Any {
    return this.sdk.structproto.Struct.fromJavaScript(plain(v));
  }

  async configure(config: Record<string, string>): Promise<void> {
    const req = new this.sdk.provproto.ConfigureRequest();
    req.setArgs(this.struct(config));
    const vars = req.getVariablesMap();
    for (const [k, v] of Object.entries(config)) {
      vars.set(k, v);
    }
    req.setAcceptsecrets(true);
    req.setAcceptresources(true);
    await this.call("configure", req);
  }

  async check(
    r: { urn: string; type: string; name: string },
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<{ inputs: Record<string, unknown>; failures: Array<{ property: string; reason: string }> }> {
    const req = new this.sdk.provproto.CheckRequest();
    req.setUrn(r.urn);
    req.setType(r.type);
    req.setName(r.name);
    req.setOlds(this.struct(olds));
    req.setNews(this.struct(news));
    const resp: Any = await this.call("check", req);
    return {
      inputs: resp.getInputs()?.toJavaScript() ?? news,
      failures: resp.getFailuresList().map((f: Any) => ({ property: f.getProperty(), reason: f.getReason() })),
    };
  }

  async diff(
    r: { urn: string; type: string; name: string },
    id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
    oldInputs: Record<string, unknown>,
  ): Promise<{ changes: number; replaces: string[]; deleteBeforeReplace: boolean }> {
    const req = new this.sdk.provproto.DiffRequest();
    req.setUrn(r.urn);
    req.setType(r.type);
    req.setName(r.name);
    req.setId(id);
    req.setOlds(this.struct(olds));
    req.setNews(this.struct(news));
    req.setOldInputs(this.struct(oldInputs));
    const resp: Any = await this.call("diff", req);
    return {
      changes: resp.getChanges(),
      replaces: resp.getReplacesList(),
      deleteBeforeReplace: resp.getDeletebeforereplace(),
    };
  }

  async create(
    r: { urn: string; type: string; name: string },
    props: Record<string, unknown>,
  ): Promise<{ id: string; outputs: Record<string, unknown> }> {
    const req = new this.sdk.provproto.CreateRequest();
    req.setUrn(r.urn);
    req.setType(r.type);
    req.setName(r.name);
    req.setProperties(this.struct(props));
    const resp: Any = await this.call("create", req);
    return { id: resp.getId(), outputs: resp.getProperties()?.toJavaScript() ?? {} };
  }

  async update(
    r: { urn: string; type: string; name: string },
    id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
    oldInputs: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    const req = new this.sdk.provproto.UpdateRequest();
    req.setUrn(r.urn);
    req.setType(r.type);
    req.setName(r.name);
    req.setId(id);
    req.setOlds(this.struct(olds));
    req.setNews(this.struct(news));
    req.setOldInputs(this.struct(oldInputs));
    const resp: Any = await this.call("update", req);
    return resp.getProperties()?.toJavaScript() ?? {};
  }

  async delete(r: StateResource): Promise<void> {
    const req = new this.sdk.provproto.DeleteRequest();
    req.setUrn(r.urn);
    req.setType(r.type);
    req.setName(r.name);
    req.setId(r.id);
    req.setProperties(this.struct(r.outputs));
    req.setOldInputs(this.struct(r.inputs));
    await this.call("delete", req);
  }

  async read(
    r: StateResource,
  ): Promise<{ id: string; outputs: Record<string, unknown>; inputs?: Record<string, unknown> }> {
    const req = new this.sdk.provproto.ReadRequest();
    req.setUrn(r.urn);
    req.setType(r.type);
    req.setName(r.name);
    req.setId(r.id);
    req.setProperties(this.struct(r.outputs));
    req.setInputs(this.struct(r.inputs));
    const resp: Any = await this.call("read", req);
    return {
      id: resp.getId(),
      outputs: resp.getProperties()?.toJavaScript() ?? {},
      inputs: resp.getInputs()?.toJavaScript(),
    };
  }
}

// ---------------------------------------------------------------------------
// Engine

export type Op = "up" | "preview" | "refresh" | "destroy";

export interface Counts {
  create: number;
  update: number;
  replace: number;
  delete: number;
  same: number;
  read: number;
}

export interface Step {
  op: string;
  urn: string;
  type: string;
  detail?: string;
}

export interface EngineOptions {
  sdk: Sdk;
  host: ProviderHost;
  state: StateFile;
  preview: boolean;
  parallel: number;
  project: string;
  stack: string;
  log: (line: string) => void;
  /**
   * Persists one completed step: `changes` were applied to `state` (called after every
   * completed step that changed the state; not called in preview, nor for unchanged resources).
   */
  save: (state: StateFile, changes: StateChange[]) => void;
}

const SYMBOL: Record<string, string> = {
  create: "+",
  update: "~",
  replace: "+-",
  delete: "-",
  same: " ",
  read: ">",
  "refresh-delete": "-",
  "refresh-update": "~",
};

export class Engine {
  readonly counts: Counts = { create: 0, update: 0, replace: 0, delete: 0, same: 0, read: 0 };
  readonly steps: Step[] = [];
  readonly errors: string[] = [];
  stackOutputs: Record<string, unknown> = {};
  private readonly sigs: Sigs;
  private readonly sem: Semaphore;
  private readonly old: Map<string, StateResource>;
  private readonly registered = new Set<string>();
  private readonly qualifiedTypes = new Map<string, string>();

  constructor(private readonly o: EngineOptions) {
    this.sigs = sigsOf(o.sdk);
    this.sem = new Semaphore(Math.max(1, o.parallel));
    this.old = new Map(o.state.resources.filter((r) => !r.delete).map((r) => [r.urn, r]));
    if (o.state.seq === undefined) {
      o.state.seq = o.state.resources.reduce((m, r) => Math.max(m, r.createdAt + 1), 0);
    }
  }

  get state(): StateFile {
    return this.o.state;
  }

  private nextSeq(): number {
    const s = this.o.state.seq ?? 0;
    this.o.state.seq = s + 1;
    return s;
  }

  private save(...changes: StateChange[]): void {
    if (!this.o.preview) {
      this.o.save(this.o.state, changes);
    }
  }

  /** Replaces the live (non-pending-delete) record for r.urn, or appends it. */
  private putLive(r: StateResource): void {
    const rs = this.o.state.resources;
    const i = rs.findIndex((x) => x.urn === r.urn && !x.delete);
    if (i >= 0) {
      rs[i] = r;
    } else {
      rs.push(r);
    }
  }

  private remove(r: StateResource): void {
    const rs = this.o.state.resources;
    const i = rs.indexOf(r);
    if (i >= 0) {
      rs.splice(i, 1);
    }
  }

  private step(
    op: string,
    r: { urn: string; type: string; name: string },
    ms?: number,
    detail?: string,
    status = "ok",
  ): void {
    const counted = op.startsWith("refresh-") ? (op.slice(8) as keyof Counts) : (op as keyof Counts);
    if (counted in this.counts) {
      this.counts[counted]++;
    }
    this.steps.push({ op, urn: r.urn, type: r.type, ...(detail ? { detail } : {}) });
    if (op === "same") {
      return;
    }
    const sym = SYMBOL[op] ?? "*";
    const pv = this.o.preview ? " (preview)" : "";
    const timing = ms === undefined ? "" : ` (${ms} ms)`;
    this.o.log(`${sym} ${op.padEnd(7)} ${r.type} ${r.name}${pv} ... ${status}${timing}${detail ? ` [${detail}]` : ""}`);
  }

  private fail(r: { urn: string; type: string; name: string }, op: string, msg: string): Error {
    const text = `${op} ${r.type} ${r.name} (${r.urn}) failed: ${msg}`;
    this.errors.push(text);
    this.o.log(`! ${op.padEnd(7)} ${r.type} ${r.name} ... error: ${msg}`);
    return new Error(text);
  }

  newUrn(parent: string, type: string, name: string): string {
    let qualified = type;
    if (parent) {
      const parentType = this.qualifiedTypes.get(parent) ?? parent.split("::")[2] ?? "";
      if (parentType && parentType !== ROOT_STACK_TYPE) {
        qualified = `${parentType}$${type}`;
      }
    }
    const urn = `urn:pulumi:${this.o.stack}::${this.o.project}::${qualified}::${name}`;
    this.qualifiedTypes.set(urn, qualified);
    return urn;
  }

  // ---- the monitor (what the SDK calls) --------------------------------

  /** Registrations the SDK has sent that are not answered yet. */
  inFlight = 0;
  /** When a registration last started or ended (ms since the epoch). */
  lastActivity = Date.now();

  /**
   * After a failed step, resolves once no registration has been in flight for
   * `quietMs`. The real engine stops a deployment at its first error and the
   * language host exits; here the program would otherwise wait forever on the
   * outputs of the resource that failed.
   */
  async settledAfterFailure(quietMs = 1000): Promise<void> {
    for (;;) {
      await new Promise((r) => setTimeout(r, 100));
      if (this.errors.length > 0 && this.inFlight === 0 && Date.now() - this.lastActivity >= quietMs) return;
    }
  }

  /** A `ResourceMonitor` implementation for `settings.setMockOptions`. */
  monitor(): Any {
    const sdk = this.o.sdk;
    return {
      registerResource: (req: Any, cb: Any) => {
        this.inFlight++;
        this.lastActivity = Date.now();
        this.registerResource(req)
          .finally(() => {
            this.inFlight--;
            this.lastActivity = Date.now();
          })
          .then(
            (resp) => cb(null, resp),
            (err) => cb(err, undefined),
          );
      },
      registerResourceOutputs: (req: Any, cb: Any) => {
        try {
          this.registerResourceOutputs(req);
          cb(null, {});
        } catch (err) {
          cb(err, undefined);
        }
      },
      supportsFeature: (req: Any, cb: Any) => {
        const id = req.getId();
        const has = id !== "outputValues";
        cb(null, { getHassupport: () => has });
      },
      registerPackage: (_req: Any, cb: Any) => {
        const resp = new sdk.resproto.RegisterPackageResponse();
        resp.setRef("local-runner");
        cb(null, resp);
      },
      invoke: (req: Any, cb: Any) => cb(new Error(`invoke ${req.getTok()} is not supported by the local runner`)),
      call: (req: Any, cb: Any) => cb(new Error(`call ${req.getTok?.()} is not supported by the local runner`)),
      readResource: (req: Any, cb: Any) =>
        cb(
          new Error(
            `reading existing resources (${req.getType()} ${req.getName()}) is not supported by the local runner`,
          ),
        ),
    };
  }

  private async registerResource(req: Any): Promise<Any> {
    const sdk = this.o.sdk;
    const type: string = req.getType();
    const name: string = req.getName();
    const parent: string = req.getParent() || "";
    const custom: boolean = req.getCustom();
    const urn = this.newUrn(parent, type, name);
    if (this.registered.has(urn)) {
      throw this.fail({ urn, type, name }, "register", `duplicate resource URN ${urn}`);
    }
    this.registered.add(urn);
    const deps = new Set<string>(req.getDependenciesList());
    for (const [, pd] of req.getPropertydependenciesMap().entries()) {
      for (const u of pd.getUrnsList()) {
        deps.add(u);
      }
    }
    deps.delete(urn);
    const r = { urn, type, name };
    let id = "";
    let wire: Record<string, unknown> = {};
    if (!custom) {
      const old = this.old.get(urn);
      const rec: StateResource = {
        urn,
        type,
        name,
        custom: false,
        id: "",
        inputs: {},
        outputs: old?.outputs ?? {},
        secretPaths: old?.secretPaths ?? [],
        dependencies: [...deps],
        parent,
        provider: "",
        createdAt: old?.createdAt ?? this.nextSeq(),
      };
      if (!old || !deepEqual(old, rec)) {
        this.putLive(rec);
        this.save({ put: rec });
      }
      this.step(old ? "same" : "create", r);
    } else {
      const res = await this.registerCustom(req, r, parent, [...deps]);
      id = res.id;
      wire = res.wire;
    }
    const resp = new sdk.resproto.RegisterResourceResponse();
    resp.setUrn(urn);
    resp.setId(id);
    resp.setObject(sdk.structproto.Struct.fromJavaScript(plain(wire)));
    return resp;
  }

  private async registerCustom(
    req: Any,
    r: { urn: string; type: string; name: string },
    parent: string,
    dependencies: string[],
  ): Promise<{ id: string; wire: Record<string, unknown> }> {
    const s = this.sigs;
    const host = this.o.host;
    const inputSecrets: PropertyPath[] = [];
    const news = unwrapSecrets(s, req.getObject()?.toJavaScript() ?? {}, [], inputSecrets) as Record<string, unknown>;
    const provider = news[PROVIDER_KEY];
    if (typeof provider !== "string") {
      throw this.fail(
        r,
        "register",
        "only dynamic resources (pulumi.dynamic.Resource) are supported by the local runner",
      );
    }
    const secretPaths: PropertyPath[] = [...inputSecrets];
    for (const k of req.getAdditionalsecretoutputsList() as string[]) {
      secretPaths.push([k]);
    }
    const secretSet = new Set(secretPaths.map(pathKey));
    const old = this.old.get(r.urn);
    if (old) {
      for (const k of req.getIgnorechangesList() as string[]) {
        if (k in old.inputs) {
          news[k] = old.inputs[k];
        } else {
          delete news[k];
        }
      }
    }
    const record = (
      id: string,
      inputs: Record<string, unknown>,
      outputs: Record<string, unknown>,
      createdAt: number,
    ): StateResource => ({
      urn: r.urn,
      type: r.type,
      name: r.name,
      custom: true,
      id,
      inputs,
      outputs,
      secretPaths,
      dependencies,
      parent,
      provider,
      createdAt,
      ...(req.getDeletebeforereplace() ? { deleteBeforeReplace: true } : {}),
      ...(req.getRetainondelete() ? { retainOnDelete: true } : {}),
      ...(req.getDeletedwith() ? { deletedWith: req.getDeletedwith() } : {}),
    });
    const wireOf = (outs: Record<string, unknown>) => wrapSecrets(s, outs, secretSet) as Record<string, unknown>;

    return this.sem.run(async () => {
      const t0 = Date.now();
      const elapsed = () => Date.now() - t0;
      let opName = "check";
      try {
        const checked = await host.check(r, old?.inputs ?? {}, news);
        if (checked.failures.length > 0) {
          const why = checked.failures.map((f) => `property ${f.property}: ${f.reason}`).join("; ");
          throw new Error(`check failed: ${why}`);
        }
        const inputs = checked.inputs;
        const unknownKeys = Object.keys(inputs).filter((k) => containsUnknown(s, inputs[k]));
        const unknownDetail = unknownKeys.length ? `unknown inputs: ${unknownKeys.join(", ")}` : undefined;
        if (!old) {
          opName = "create";
          if (this.o.preview) {
            this.step("create", r, elapsed(), unknownDetail);
            return { id: "", wire: wireOf(inputs) };
          }
          const created = await host.create(r, inputs);
          const rec = record(created.id, inputs, created.outputs, this.nextSeq());
          this.putLive(rec);
          this.save({ put: rec });
          this.step("create", r, elapsed());
          return { id: created.id, wire: wireOf(created.outputs) };
        }
        opName = "diff";
        let diff = await host.diff(r, old.id, old.outputs, inputs, old.inputs);
        if (diff.changes === 0 /* DIFF_UNKNOWN: provider has no diff(); compare inputs */) {
          const changed = [...new Set([...Object.keys(old.inputs), ...Object.keys(inputs)])].filter(
            (k) => !deepEqual(old.inputs[k], inputs[k]),
          );
          diff = { ...diff, changes: changed.length ? 2 : 1 };
        }
        const replaces = [...diff.replaces];
        for (const k of req.getReplaceonchangesList() as string[]) {
          if (!replaces.includes(k) && !deepEqual(old.inputs[k], inputs[k])) {
            replaces.push(k);
          }
        }
        if (replaces.length > 0) {
          opName = "replace";
          const dbr = diff.deleteBeforeReplace || !!req.getDeletebeforereplace();
          const detail = `${dbr ? "delete-before-replace" : "create-before-delete"}: ${replaces.join(", ")}`;
          if (this.o.preview) {
            this.step("replace", r, elapsed(), unknownDetail ? `${detail}; ${unknownDetail}` : detail);
            return { id: "", wire: wireOf(inputs) };
          }
          if (dbr) {
            if (!old.retainOnDelete) {
              await host.delete(old);
            }
            this.remove(old);
            this.save({ remove: old });
            this.o.log(`- delete  ${r.type} ${r.name} ... ok (delete-before-replace)`);
            const created = await host.create(r, inputs);
            const rec = record(created.id, inputs, created.outputs, this.nextSeq());
            this.putLive(rec);
            this.save({ put: rec });
            this.step("replace", r, elapsed(), detail);
            return { id: created.id, wire: wireOf(created.outputs) };
          }
          const created = await host.create(r, inputs);
          this.remove(old);
          const pending: StateResource = { ...old, delete: true };
          this.o.state.resources.push(pending);
          const rec = record(created.id, inputs, created.outputs, this.nextSeq());
          this.putLive(rec);
          this.save({ put: pending }, { put: rec });
          this.step("replace", r, elapsed(), detail);
          return { id: created.id, wire: wireOf(created.outputs) };
        }
        if (diff.changes === 1 /* DIFF_NONE */) {
          const rec = record(old.id, inputs, old.outputs, old.createdAt);
          if (!deepEqual(old, rec)) {
            this.putLive(rec);
            this.save({ put: rec });
          }
          this.step("same", r);
          return { id: old.id, wire: wireOf(old.outputs) };
        }
        opName = "update";
        const changedKeys = [...new Set([...Object.keys(old.inputs), ...Object.keys(inputs)])].filter(
          (k) => k !== PROVIDER_KEY && !deepEqual(old.inputs[k], inputs[k]),
        );
        const detail = changedKeys.length ? `changed: ${changedKeys.join(", ")}` : undefined;
        if (this.o.preview) {
          this.step("update", r, elapsed(), [detail, unknownDetail].filter(Boolean).join("; ") || undefined);
          return { id: old.id, wire: wireOf(inputs) };
        }
        const outs = await host.update(r, old.id, old.outputs, inputs, old.inputs);
        const rec = record(old.id, inputs, outs, old.createdAt);
        this.putLive(rec);
        this.save({ put: rec });
        this.step("update", r, elapsed(), detail);
        return { id: old.id, wire: wireOf(outs) };
      } catch (e) {
        throw this.fail(r, opName, e instanceof Error ? e.message : String(e));
      }
    });
  }

  private registerResourceOutputs(req: Any): void {
    const urn: string = req.getUrn();
    const raw = req.getOutputs()?.toJavaScript() ?? {};
    const rec = this.o.state.resources.find((x) => x.urn === urn && !x.delete);
    if (!rec) {
      throw new Error(`unknown resource ${urn}`);
    }
    if (rec.type === ROOT_STACK_TYPE) {
      this.stackOutputs = displayValue(this.sigs, raw) as Record<string, unknown>;
    }
    if (!rec.custom) {
      const secrets: PropertyPath[] = [];
      const outputs = unwrapSecrets(this.sigs, raw, [], secrets) as Record<string, unknown>;
      if (!deepEqual(rec.outputs, outputs) || !deepEqual(rec.secretPaths, secrets)) {
        // A new record (not a mutation): the state store caches records' encrypted forms by identity.
        const updated: StateResource = { ...rec, outputs, secretPaths: secrets };
        this.putLive(updated);
        this.save({ put: updated });
      }
    }
  }

  // ---- after the program -------------------------------------------------

  /** Deletes resources no longer in the program plus pending replace-deletes (only when the run had no error). */
  async finishUp(programFailed: boolean): Promise<void> {
    if (programFailed || this.errors.length > 0) {
      const pending = this.o.state.resources.filter((x) => x.delete).length;
      if (pending > 0 || [...this.old.keys()].some((u) => !this.registered.has(u))) {
        this.o.log("skipping deletes because the update failed (they stay in state for the next run)");
      }
      return;
    }
    const gone = this.o.state.resources.filter((x) => x.delete || !this.registered.has(x.urn));
    await this.deleteAll(gone, "delete");
  }

  /**
   * Deletes `set` in reverse dependency order: a resource only after every member
   * of the set that depends on it (dependencies or parent) is gone. Independent
   * deletes run concurrently up to `parallel`. A failure blocks only what the
   * failed resource depends on.
   */
  async deleteAll(set: StateResource[], op = "delete"): Promise<void> {
    // As the engine does: a resource whose `deletedWith` target goes in the same
    // operation is dropped from state without its provider's delete.
    const deleting = new Set(set.filter((x) => !x.delete).map((x) => x.urn));
    const goesWithAnother = (x: StateResource) => !!x.deletedWith && deleting.has(x.deletedWith);
    const memo = new Map<StateResource, Promise<boolean>>();
    const visiting = new Set<StateResource>();
    const dependents = (x: StateResource) =>
      set.filter(
        (y) => y !== x && !(y.delete && y.urn === x.urn) && (y.parent === x.urn || y.dependencies.includes(x.urn)),
      );
    const run = (x: StateResource): Promise<boolean> => {
      const m = memo.get(x);
      if (m) {
        return m;
      }
      visiting.add(x);
      const waits = dependents(x)
        .filter((y) => !visiting.has(y) || memo.has(y))
        .map(run);
      const p = (async () => {
        const results = await Promise.all(waits);
        if (results.some((ok) => !ok)) {
          this.fail(x, op, "skipped because a resource that depends on it could not be deleted");
          return false;
        }
        return this.sem.run(async () => {
          const t0 = Date.now();
          try {
            const withAnother = goesWithAnother(x);
            if (!this.o.preview && x.custom && !x.retainOnDelete && !withAnother) {
              await this.o.host.delete(x);
            }
            this.remove(x);
            this.save({ remove: x });
            const detail = withAnother ? `deleted with ${x.deletedWith}` : x.delete ? "replaced" : undefined;
            this.step(op, x, Date.now() - t0, detail);
            return true;
          } catch (e) {
            this.fail(x, op, e instanceof Error ? e.message : String(e));
            return false;
          }
        });
      })();
      memo.set(x, p);
      return p;
    };
    // Newest first, so that the fallback order (no recorded edges) is reverse creation order.
    const ordered = [...set].sort((a, b) => b.createdAt - a.createdAt);
    await Promise.all(ordered.map(run));
  }

  async destroy(): Promise<void> {
    await this.deleteAll([...this.o.state.resources], "delete");
  }

  async refresh(): Promise<void> {
    const rs = [...this.o.state.resources]
      .filter((r) => r.custom && !r.delete)
      .sort((a, b) => a.createdAt - b.createdAt);
    await Promise.all(
      rs.map((r) =>
        this.sem.run(async () => {
          const t0 = Date.now();
          try {
            const got = await this.o.host.read(r);
            if (!got.id) {
              if (!this.o.preview) {
                this.remove(r);
                this.save({ remove: r });
              }
              this.step("refresh-delete", r, Date.now() - t0, "gone");
              return;
            }
            const changed = [...new Set([...Object.keys(r.outputs), ...Object.keys(got.outputs)])].filter(
              (k) => !deepEqual(r.outputs[k], got.outputs[k]),
            );
            const inputsChanged = got.inputs !== undefined && !deepEqual(r.inputs, got.inputs);
            if (changed.length === 0 && got.id === r.id && !inputsChanged) {
              this.step("same", r);
              return;
            }
            if (!this.o.preview) {
              const rec: StateResource = { ...r, id: got.id, outputs: got.outputs, inputs: got.inputs ?? r.inputs };
              this.putLive(rec);
              this.save({ put: rec });
            }
            const detail = changed.length
              ? `changed: ${changed.join(", ")}`
              : got.id !== r.id
                ? "id changed"
                : "inputs changed";
            this.step("refresh-update", r, Date.now() - t0, detail);
          } catch (e) {
            this.fail(r, "refresh", e instanceof Error ? e.message : String(e));
          }
        }),
      ),
    );
  }
}
