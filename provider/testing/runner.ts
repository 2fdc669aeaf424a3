// LocalStack: a small stand-in for the Pulumi engine/CLI (`pulumi up`, `preview`,
// `refresh`, `destroy`) built from the Node.js SDK's own parts, for tests where the
// Pulumi CLI is not available. Only dynamic resources (pulumi.dynamic.Resource)
// and component resources are supported.
//
// Each operation runs in a fresh child process (runnerChild) that starts one
// dynamic-provider host (`<sdk>/cmd/dynamic-provider/index.js`, cwd = programDir)
// and runs the program against an in-process resource monitor (engineMonitor).
//
// State: JSON at `stateFile` (default `<programDir>/.pulumi-state/<stack>.json`).
// Every completed step is appended to `<stateFile>.journal` (one JSON line per
// step); the journal is replayed on load and compacted into the state file at
// the end of each operation, so the state on disk (file + journal) is accurate
// after every completed step. Secret values are AES-256-GCM encrypted
// with a key derived from env PULUMI_NETNS_STATE_KEY, or else with a random key
// stored in `<stateFile>.key` (mode 0600). See runnerState.ts.

import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as readline from "node:readline";
import type { Op } from "./engineMonitor";
import type { ChildRequest, ChildResult } from "./runnerChild";
import { readRawState, readState, type StateFile } from "./runnerState";

export type { PropertyPath, StateFile, StateResource } from "./runnerState";

export interface RunnerOptions {
  /** Directory with index.ts or index.js (or package.json "main"); also the cwd of the provider host. */
  programDir: string;
  /** Default `<programDir>/.pulumi-state/<stack>.json`. */
  stateFile?: string;
  /** Default "dev". */
  stack?: string;
  /** Default: `name:` from `<programDir>/Pulumi.yaml`, else the directory name. */
  project?: string;
  /** Max concurrent provider calls. Default 4 * CPU cores (like PULUMI_PARALLEL). */
  parallel?: number;
  /** Stack config. Keys without a namespace get `<project>:`. */
  config?: Record<string, string>;
  /** Receives progress lines (also the program's and provider's output). */
  log?: (line: string) => void;
  /** Extra environment for the child process (merged over process.env). */
  env?: NodeJS.ProcessEnv;
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
  op: string;
  urn: string;
  type: string;
  detail?: string;
}

export interface OperationResult {
  ok: boolean;
  error?: string;
  counts: OperationCounts;
  /** Stack exports; secrets shown as "[secret]", unknowns (preview) as "[unknown]". */
  outputs: Record<string, unknown>;
  steps: OperationStep[];
  durationMs: number;
  /** Where the time went (child process view). */
  timings?: { sdkLoadMs: number; hostStartMs: number; programMs: number; totalMs: number };
}

function readProjectName(programDir: string): string | undefined {
  const f = path.join(programDir, "Pulumi.yaml");
  if (!fs.existsSync(f)) {
    return undefined;
  }
  const m = /^name:\s*["']?([^"'\s#]+)/m.exec(fs.readFileSync(f, "utf8"));
  return m?.[1];
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export class LocalStack {
  readonly programDir: string;
  readonly stateFile: string;
  readonly stack: string;
  readonly project: string;
  readonly parallel: number;

  constructor(private readonly opts: RunnerOptions) {
    this.programDir = path.resolve(opts.programDir);
    this.stack = opts.stack ?? "dev";
    this.project = opts.project ?? readProjectName(this.programDir) ?? path.basename(this.programDir);
    this.stateFile = path.resolve(opts.stateFile ?? path.join(this.programDir, ".pulumi-state", `${this.stack}.json`));
    this.parallel = opts.parallel ?? 4 * Math.max(1, os.cpus().length);
  }

  up(): Promise<OperationResult> {
    return this.run("up");
  }

  preview(): Promise<OperationResult> {
    return this.run("preview");
  }

  refresh(): Promise<OperationResult> {
    return this.run("refresh");
  }

  destroy(): Promise<OperationResult> {
    return this.run("destroy");
  }

  /** The state with secrets decrypted (state file plus journal, if an operation was interrupted). */
  async state(): Promise<StateFile> {
    return readState(this.stateFile, { ...process.env, ...this.opts.env });
  }

  /** The state as stored (secrets encrypted; state file plus journal, if any). */
  async rawState(): Promise<StateFile> {
    return readRawState(this.stateFile);
  }

  private config(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.opts.config ?? {})) {
      out[k.includes(":") ? k : `${this.project}:${k}`] = v;
    }
    return out;
  }

  private async run(op: Op): Promise<OperationResult> {
    const started = Date.now();
    const log = this.opts.log ?? (() => {});
    const isTs = __filename.endsWith(".ts");
    const child = path.join(__dirname, isTs ? "runnerChild.ts" : "runnerChild.js");
    const env: NodeJS.ProcessEnv = { ...process.env, ...this.opts.env };
    const execArgv: string[] = [];
    if (isTs) {
      execArgv.push("-r", require.resolve("ts-node/register"));
      env.TS_NODE_TRANSPILE_ONLY = "true";
      env.TS_NODE_PROJECT = path.resolve(__dirname, "..", "..", "tsconfig.json");
    }
    const req: ChildRequest = {
      op,
      programDir: this.programDir,
      stateFile: this.stateFile,
      stack: this.stack,
      project: this.project,
      parallel: this.parallel,
      config: this.config(),
    };
    const proc = spawn(process.execPath, [...execArgv, child, JSON.stringify(req)], {
      cwd: this.programDir,
      env,
      stdio: ["ignore", "pipe", "pipe", "pipe"],
    });
    let result: ChildResult | undefined;
    let hostPid: number | undefined;
    const stderrTail: string[] = [];
    readline.createInterface({ input: proc.stdout! }).on("line", (l) => log(l));
    readline.createInterface({ input: proc.stderr! }).on("line", (l) => {
      stderrTail.push(l);
      if (stderrTail.length > 40) {
        stderrTail.shift();
      }
      log(l);
    });
    readline.createInterface({ input: proc.stdio[3] as NodeJS.ReadableStream }).on("line", (l) => {
      const msg = JSON.parse(l);
      if (msg.type === "host") {
        hostPid = msg.pid;
      } else if (msg.type === "result") {
        result = msg;
      }
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      proc.on("error", reject);
      proc.on("close", (c) => resolve(c));
    });
    if (hostPid && processAlive(hostPid)) {
      try {
        process.kill(hostPid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
    if (!result) {
      throw new Error(`runner child for ${op} exited with code ${code} without a result:\n${stderrTail.join("\n")}`);
    }
    return {
      ok: result.ok,
      ...(result.error ? { error: result.error } : {}),
      counts: result.counts,
      outputs: result.outputs,
      steps: result.steps,
      durationMs: Date.now() - started,
      timings: result.timings,
    };
  }
}
