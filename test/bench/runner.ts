import * as fs from "node:fs";
import * as path from "node:path";
import type * as automation from "@pulumi/pulumi/automation";
import type { OperationCounts, PulumiStack } from "../../provider/testing";
import { pulumiRoot } from "../support/harness";
import type { Driver } from "./options";
import { summarizeTrace, type TraceSummary } from "./probes";

export type Kit = typeof import("../../provider/testing");
export type Op = "up" | "no-op" | "refresh" | "destroy";
export const OPS: Op[] = ["up", "no-op", "refresh", "destroy"];

const NO_CHANGES: OperationCounts = { create: 0, update: 0, replace: 0, delete: 0, same: 0, read: 0 };

/** Runs operations on one stack, through the Automation API (PulumiStack) or the CLI directly. */
export class Runner {
  readonly stack: PulumiStack;
  private readonly trace: string;
  private readonly lines: string[] = [];
  private opIndex = 0;
  private profiled = 0;
  private lean?: automation.Stack;

  constructor(
    kit: Kit,
    readonly dir: string,
    readonly driver: Driver,
    private readonly config: Record<string, string>,
    private readonly opts: {
      parallel?: number;
      typeCheck?: boolean;
      noCheckpoints?: boolean;
      profile?: string;
      label: string;
    },
  ) {
    this.trace = path.join(dir, "trace.jsonl");
    fs.rmSync(path.join(dir, ".pulumi-state"), { recursive: true, force: true });
    fs.rmSync(path.join(dir, "Pulumi.dev.yaml"), { force: true });
    fs.rmSync(this.trace, { force: true });
    // PULUMI_DEBUG_COMMANDS: the CLI has --event-log only with it (the Automation API sets it too).
    const env: Record<string, string> = { PULUMI_NETNS_TRACE: this.trace, PULUMI_DEBUG_COMMANDS: "true" };
    if (opts.noCheckpoints) env.PULUMI_SKIP_CHECKPOINTS = "true";
    if (opts.profile) {
      fs.mkdirSync(opts.profile, { recursive: true });
      // node refuses --cpu-prof in NODE_OPTIONS; this preload profiles with the inspector instead.
      env.NODE_OPTIONS = `--require ${path.join(__dirname, "cpu-profile.js")}`;
      env.PULUMI_NETNS_BENCH_PROFILE_DIR = opts.profile;
    }
    this.stack = new kit.PulumiStack({
      programDir: dir,
      config,
      ...(opts.parallel ? { parallel: opts.parallel } : {}),
      ...(opts.typeCheck ? { typeCheck: true } : {}),
      log: (l) => this.lines.push(l),
      env,
    });
  }

  /** Creates the stack (and for the CLI driver sets its config): not timed, as `pulumi stack init` is done once. */
  async prepare(): Promise<void> {
    if (this.driver === "auto") {
      await this.stack.exportState();
      return;
    }
    if (this.driver === "lean") {
      const auto: typeof automation = require(require.resolve("@pulumi/pulumi/automation", { paths: [this.dir] }));
      const pulumiCommand = await auto.PulumiCommand.get({ root: pulumiRoot(), skipVersionCheck: true });
      const ws = await auto.LocalWorkspace.create({ workDir: this.dir, envVars: this.stack.env(), pulumiCommand });
      this.lean = await auto.Stack.createOrSelect("dev", ws);
      const config: automation.ConfigMap = {};
      for (const [k, v] of Object.entries(this.config)) config[k] = { value: v, secret: /privatekey/i.test(k) };
      await this.lean.setAllConfig(config);
      return;
    }
    const check = (r: { code: number; stdout: string; stderr: string }, what: string) => {
      if (r.code !== 0) throw new Error(`${this.opts.label}: pulumi ${what} failed: ${r.stderr || r.stdout}`);
    };
    check(await this.stack.cli(["stack", "init", "dev", "--non-interactive"]), "stack init");
    const args = ["config", "set-all", "--stack", "dev"];
    for (const [k, v] of Object.entries(this.config))
      args.push(/privatekey/i.test(k) ? "--secret" : "--plaintext", `${k}=${v}`);
    check(await this.stack.cli(args), "config set-all");
  }

  traceOffset(): number {
    return fs.existsSync(this.trace) ? fs.statSync(this.trace).size : 0;
  }

  traceSince(offset: number): TraceSummary {
    return summarizeTrace(this.trace, offset);
  }

  tail(): string {
    return this.lines.slice(-30).join("\n");
  }

  /** One operation; its counts from the engine's summary. Throws if it failed. */
  async run(op: Op): Promise<OperationCounts> {
    try {
      return await this.runOp(op);
    } finally {
      // The profiles this operation's processes wrote, into a directory of its own.
      const dir = this.opts.profile;
      if (dir) {
        const into = path.join(dir, `${++this.profiled}-${op}`);
        fs.mkdirSync(into, { recursive: true });
        for (const f of fs.readdirSync(dir, { withFileTypes: true }))
          if (f.isFile()) fs.renameSync(path.join(dir, f.name), path.join(into, f.name));
      }
    }
  }

  private async runOp(op: Op): Promise<OperationCounts> {
    const cmd = op === "no-op" ? "up" : op;
    if (this.driver === "auto") {
      const r = await this.stack[cmd]();
      if (!r.ok) throw new Error(`${this.opts.label} ${op} failed: ${r.error}\n${this.tail()}`);
      return r.counts;
    }
    if (this.lean) {
      // What PulumiStack passes too: its events and output streamed, the diff shown.
      const common = {
        onOutput: (t: string) => this.lines.push(t),
        onEvent: () => {},
        color: "never" as const,
        ...(this.opts.parallel ? { parallel: this.opts.parallel } : {}),
      };
      const changes =
        cmd === "up"
          ? (await this.lean.up({ ...common, diff: true })).summary.resourceChanges
          : cmd === "refresh"
            ? (await this.lean.refresh(common)).summary.resourceChanges
            : (await this.lean.destroy(common)).summary.resourceChanges;
      return { ...NO_CHANGES, ...(changes ?? {}) };
    }
    // The same command line the Automation API gives the CLI, less its tcp event log (a file here).
    const events = path.join(this.dir, `events-${++this.opIndex}.jsonl`);
    const args = [cmd, "--yes", "--skip-preview", "--stack", "dev", "--non-interactive", "--color", "never"];
    if (cmd === "up") args.push("--diff");
    args.push("--event-log", events);
    if (this.opts.parallel) args.push("--parallel", String(this.opts.parallel));
    if (this.opts.profile) args.unshift("--profiling", path.join(this.opts.profile, "cli"));
    const r = await this.stack.cli(args, { timeoutMs: 900_000 });
    for (const l of `${r.stdout}\n${r.stderr}`.split("\n")) this.lines.push(l);
    if (r.code !== 0) throw new Error(`${this.opts.label} ${op}: pulumi exited ${r.code}\n${this.tail()}`);
    const counts: OperationCounts = { ...NO_CHANGES };
    for (const line of fs.readFileSync(events, "utf8").split("\n")) {
      if (!line.includes("summaryEvent")) continue;
      const changes = JSON.parse(line).summaryEvent?.resourceChanges ?? {};
      Object.assign(counts, changes);
    }
    fs.rmSync(events, { force: true });
    return counts;
  }
}
