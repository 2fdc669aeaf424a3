// A Pulumi program driven through the real Pulumi CLI (the Automation API's
// LocalWorkspace on the program's own directory): `pulumi preview/up/refresh/
// destroy` with a local file backend, a passphrase secrets provider and update
// checks off. Each operation reports what the engine did, from its event log.

import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type * as automation from "@pulumi/pulumi/automation";
import type { LabExecOptions, LabExecResult } from "./commands";

/** A config value; keys whose name contains privateKey, password or passphrase are set as secrets unless told. */
export type ConfigValue = string | { value: string; secret: boolean };

export interface StackOptions {
  /** The Pulumi project directory (Pulumi.yaml, index.ts or index.js, node_modules reachable from it). */
  programDir: string;
  /** Default "dev". */
  stack?: string;
  /** Where the file backend keeps its state. Default `<programDir>/.pulumi-state`. */
  backendDir?: string;
  /** Stack config, set before every operation. Keys without a namespace get the project's. */
  config?: Record<string, ConfigValue>;
  /** `--parallel` for every operation (the CLI's default when absent). */
  parallel?: number;
  /** Receives the CLI's output, line by line. */
  log?: (line: string) => void;
  /** Extra environment for the CLI, the program and the provider host. */
  env?: Record<string, string>;
  /** A directory holding bin/pulumi. Default: $PULUMI_NETNS_PULUMI_ROOT, else `pulumi` on PATH. */
  pulumiRoot?: string;
  /** The passphrase of the stack's secrets provider. Default "pulumi-netns-tests". */
  passphrase?: string;
  /**
   * Type-check a TypeScript program before running it, as `pulumi up` does by
   * default (about 1-3 s per operation). Default false: the program is only
   * transpiled (PULUMI_NODEJS_TRANSPILE_ONLY=true), which a user may set too.
   */
  typeCheck?: boolean;
}

export interface OperationCounts {
  create: number;
  update: number;
  replace: number;
  delete: number;
  same: number;
  read: number;
}

export interface OperationStep {
  /** The engine's step: create, update, replace, create-replacement, delete-replaced, delete, same, refresh, ... */
  op: string;
  urn: string;
  type: string;
  /** The properties whose change caused a replace (from the engine's diff). */
  keys?: string[];
  /** The properties that differ. */
  diffs?: string[];
  failed?: boolean;
}

export interface OperationResult {
  ok: boolean;
  /** The engine's error diagnostics (or the CLI's error) when the operation failed. */
  error?: string;
  /** Per resource (the stack and components included), as the engine's summary counts them. */
  counts: OperationCounts;
  /** Stack outputs after the operation (up and refresh); secrets as "[secret]". */
  outputs: Record<string, unknown>;
  steps: OperationStep[];
  /** Every diagnostic the engine showed (program and provider logs, warnings, errors). */
  diagnostics: Array<{ severity: string; message: string; urn?: string }>;
  durationMs: number;
}

export interface OperationOptions {
  /** URNs (or resource names, resolved against the current state) to operate on. */
  target?: string[];
  targetDependents?: boolean;
  parallel?: number;
  /** Aborting sends the CLI SIGINT, as Ctrl-C does. */
  signal?: AbortSignal;
  /** `up` only: refresh first. */
  refresh?: boolean;
}

type Automation = typeof automation;

const SECRET_KEY = /privatekey|password|passphrase/i;

/** The SDK's Automation API, from the @pulumi/pulumi that the program itself uses. */
function automationFor(programDir: string): Automation {
  return require(require.resolve("@pulumi/pulumi/automation", { paths: [programDir] }));
}

function readProjectName(programDir: string): string {
  const text = fs.readFileSync(path.join(programDir, "Pulumi.yaml"), "utf8");
  const m = /^name:\s*["']?([^"'\s#]+)/m.exec(text);
  if (!m) throw new Error(`${programDir}/Pulumi.yaml has no name`);
  return m[1];
}

const emptyCounts = (): OperationCounts => ({ create: 0, update: 0, replace: 0, delete: 0, same: 0, read: 0 });

/** The engine's step op, in the vocabulary of the summary (a replacement's three steps count as one replace). */
function countKey(op: string): keyof OperationCounts | undefined {
  switch (op) {
    case "create":
    case "update":
    case "delete":
    case "same":
    case "read":
      return op;
    case "replace":
      return "replace";
    default:
      return undefined;
  }
}

export class PulumiStack {
  readonly programDir: string;
  readonly stackName: string;
  readonly project: string;
  readonly backendDir: string;
  private readonly opts: StackOptions;
  private stackPromise?: Promise<automation.Stack>;

  constructor(opts: StackOptions) {
    this.opts = opts;
    this.programDir = path.resolve(opts.programDir);
    this.stackName = opts.stack ?? "dev";
    this.project = readProjectName(this.programDir);
    this.backendDir = path.resolve(opts.backendDir ?? path.join(this.programDir, ".pulumi-state"));
  }

  /** The environment every CLI call gets (also what a shell needs to run `pulumi` on this stack by hand). */
  env(): Record<string, string> {
    const root = this.pulumiRoot();
    const env: Record<string, string> = {
      PULUMI_BACKEND_URL: `file://${this.backendDir}`,
      PULUMI_CONFIG_PASSPHRASE: this.opts.passphrase ?? "pulumi-netns-tests",
      PULUMI_SKIP_UPDATE_CHECK: "true",
      PULUMI_HOME: path.join(this.backendDir, ".pulumi-home"),
      PULUMI_DIY_BACKEND_NO_LEGACY_WARNING: "true",
      PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: "true",
      ...(this.opts.typeCheck ? {} : { PULUMI_NODEJS_TRANSPILE_ONLY: "true" }),
      ...(this.opts.env ?? {}),
    };
    if (root) env.PATH = `${path.join(root, "bin")}${path.delimiter}${process.env.PATH ?? ""}`;
    return env;
  }

  private pulumiRoot(): string | undefined {
    return this.opts.pulumiRoot ?? process.env.PULUMI_NETNS_PULUMI_ROOT;
  }

  private stack(): Promise<automation.Stack> {
    this.stackPromise ??= (async () => {
      fs.mkdirSync(path.join(this.backendDir, ".pulumi-home"), { recursive: true });
      const auto = automationFor(this.programDir);
      const root = this.pulumiRoot();
      const pulumiCommand = await auto.PulumiCommand.get({ ...(root ? { root } : {}), skipVersionCheck: true });
      const ws = await auto.LocalWorkspace.create({ workDir: this.programDir, envVars: this.env(), pulumiCommand });
      return auto.Stack.createOrSelect(this.stackName, ws);
    })();
    this.stackPromise.catch(() => {
      this.stackPromise = undefined;
    });
    return this.stackPromise;
  }

  private async setConfig(stack: automation.Stack): Promise<void> {
    const config: Record<string, { value: string; secret: boolean }> = {};
    for (const [k, v] of Object.entries(this.opts.config ?? {})) {
      const key = k.includes(":") ? k : `${this.project}:${k}`;
      config[key] = typeof v === "string" ? { value: v, secret: SECRET_KEY.test(k) } : v;
    }
    if (Object.keys(config).length) await stack.setAllConfig(config);
  }

  up(opts: OperationOptions = {}): Promise<OperationResult> {
    return this.run("up", opts);
  }

  preview(opts: OperationOptions = {}): Promise<OperationResult> {
    return this.run("preview", opts);
  }

  refresh(opts: OperationOptions = {}): Promise<OperationResult> {
    return this.run("refresh", opts);
  }

  destroy(opts: OperationOptions = {}): Promise<OperationResult> {
    return this.run("destroy", opts);
  }

  /** The stack's state as `pulumi stack export` gives it (secrets stay encrypted). */
  async exportState(): Promise<automation.Deployment> {
    return (await this.stack()).exportStack();
  }

  /** Every file the backend wrote (state, its backups and history), as text: for "is this secret anywhere?". */
  backendText(): string {
    const out: string[] = [];
    const walk = (dir: string) => {
      if (!fs.existsSync(dir)) return;
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) {
          if (e.name !== ".pulumi-home") walk(p);
        } else out.push(fs.readFileSync(p, "utf8"));
      }
    };
    walk(this.backendDir);
    return out.join("\n");
  }

  /** The URN of a resource of this stack, by type token suffix and name (as the engine builds it). */
  urn(type: string, name: string, parentType?: string): string {
    const t = parentType ? `${parentType}$${type}` : type;
    return `urn:pulumi:${this.stackName}::${this.project}::${t}::${name}`;
  }

  /**
   * Runs the CLI itself on this stack (`pulumi <args>` in the program's
   * directory, with this stack's environment): for what the Automation API does
   * not expose, and to prove the commands a user types.
   */
  cli(args: string[], opts: Pick<LabExecOptions, "input" | "timeoutMs"> = {}): Promise<LabExecResult> {
    const root = this.pulumiRoot();
    const bin = root ? path.join(root, "bin", "pulumi") : "pulumi";
    return new Promise((resolve) => {
      const child = execFile(
        bin,
        args,
        {
          cwd: this.programDir,
          env: { ...process.env, ...this.env() },
          maxBuffer: 64 << 20,
          timeout: opts.timeoutMs ?? 300_000,
        },
        (err, stdout, stderr) => {
          const code = err
            ? typeof (err as { code?: unknown }).code === "number"
              ? (err as { code: number }).code
              : 1
            : 0;
          resolve({ code, stdout, stderr });
        },
      );
      if (opts.input !== undefined) child.stdin?.end(opts.input);
      else child.stdin?.end();
    });
  }

  private async run(op: "up" | "preview" | "refresh" | "destroy", opts: OperationOptions): Promise<OperationResult> {
    const started = Date.now();
    const log = this.opts.log ?? (() => {});
    const steps: OperationStep[] = [];
    const diagnostics: OperationResult["diagnostics"] = [];
    let pending = "";
    const onOutput = (chunk: string) => {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const l of lines) log(l);
    };
    const onEvent = (e: automation.EngineEvent) => {
      // One resOutputsEvent per resource and step (a preview's carry planning: true).
      const meta = e.resOutputsEvent?.metadata;
      if (meta) {
        steps.push({
          op: meta.op,
          urn: meta.urn,
          type: meta.type,
          ...(meta.keys?.length ? { keys: meta.keys } : {}),
          ...(meta.diffs?.length ? { diffs: meta.diffs } : {}),
        });
      }
      if (e.resOpFailedEvent) {
        const m = e.resOpFailedEvent.metadata;
        steps.push({ op: m.op, urn: m.urn, type: m.type, failed: true });
      }
      if (e.diagnosticEvent) {
        const d = e.diagnosticEvent;
        diagnostics.push({ severity: d.severity, message: d.message.trimEnd(), ...(d.urn ? { urn: d.urn } : {}) });
      }
    };
    const parallel = opts.parallel ?? this.opts.parallel;
    const common = {
      onOutput,
      onEvent,
      ...(parallel ? { parallel } : {}),
      ...(opts.target ? { target: opts.target, ...(opts.targetDependents ? { targetDependents: true } : {}) } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      color: "never" as const,
    };
    let ok = true;
    let error: string | undefined;
    let counts = emptyCounts();
    const outputs: Record<string, unknown> = {};
    try {
      const stack = await this.stack();
      await this.setConfig(stack);
      let changes: Record<string, number> | undefined;
      if (op === "preview") changes = (await stack.preview({ ...common, diff: true })).changeSummary;
      else if (op === "up")
        changes = (await stack.up({ ...common, diff: true, ...(opts.refresh ? { refresh: true } : {}) })).summary
          .resourceChanges;
      else if (op === "refresh") changes = (await stack.refresh(common)).summary.resourceChanges;
      else changes = (await stack.destroy(common)).summary.resourceChanges;
      counts = { ...emptyCounts(), ...(changes ?? {}) };
      if (op === "up" || op === "refresh") {
        for (const [k, v] of Object.entries(await stack.outputs())) outputs[k] = v.secret ? "[secret]" : v.value;
      }
    } catch (err) {
      ok = false;
      const errors = diagnostics.filter((d) => d.severity === "error").map((d) => d.message);
      error = errors.length ? errors.join("\n") : err instanceof Error ? err.message : String(err);
      for (const s of steps) {
        const k = countKey(s.op);
        if (k && !s.failed) counts[k]++;
      }
    }
    if (pending) log(pending);
    if (op === "refresh" && ok) counts = refreshCounts(steps, counts);
    return { ok, ...(error ? { error } : {}), counts, outputs, steps, diagnostics, durationMs: Date.now() - started };
  }
}

/**
 * A refresh's summary counts "update" for every resource whose state read back
 * differs and "delete" for one that is gone. Its steps say the same: the engine
 * reports each refresh step by its result (op "update", "delete" or "same", never
 * "refresh"), and an "update" carries no diffs, since the dynamic provider's diff
 * names no changed keys. Only when the summary counts neither are the steps counted.
 */
function refreshCounts(steps: OperationStep[], fromSummary: OperationCounts): OperationCounts {
  if (fromSummary.update || fromSummary.delete) return fromSummary;
  const counts = { ...fromSummary };
  for (const s of steps) {
    if (s.op === "delete") counts.delete++;
    else if (s.op === "refresh" && s.diffs?.length) counts.update++;
  }
  return counts;
}
