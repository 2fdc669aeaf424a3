// Benchmark: IsolatedNetwork through the real Pulumi CLI (`pulumi up` and
// friends, driven by the Automation API or directly) against the hand-written
// shell script over one SSH session. Method and results: BENCHMARKS.md.
//
// Usage: npm run bench [-- options]   (or: npx ts-node --transpile-only bench/run.ts)
//   --n 10,50            namespace counts                                          (env BENCH_N)
//   --repeats 1          repeats of each script/pulumi pair                        (env BENCH_REPEATS)
//   --variants ts,js,ts-cli                                                        (env BENCH_VARIANTS)
//                        <program>[-<driver>][+nocp]. Program: ts (index.ts, transpile-only as PulumiStack
//                        runs it), ts-check (type-checked), js (compiled index.js, `typescript: false`),
//                        js-nosm (js without source-map-support's stack traces). Driver: none = PulumiStack
//                        (Automation API), lean = the Automation API's Stack without PulumiStack's extra
//                        calls, cli = `pulumi up/refresh/destroy` run directly. +nocp: PULUMI_SKIP_CHECKPOINTS.
//   --hosts 1,20         the lesson network on 1 and on 20 lab hosts in one program; "" for none (BENCH_HOSTS)
//   --hosts-variants ts  variants (as in --variants) of that program               (env BENCH_HOSTS_VARIANTS)
//   --parallel 8         `--parallel` for every operation; default: the CLI's own   (env BENCH_PARALLEL)
//   --profile dir        also profile (first repeat): V8 CPU profiles of the language host, program and provider
//                        host (bench/cpu-profile.js), `pulumi --profiling` for the CLI (cli variants); summaries
//                        printed                                                   (env BENCH_PROFILE)
//   --json file          also write every measurement as JSON                      (env BENCH_JSON)
//   --nice -5            run the bench (and all it starts: CLI, hosts, lab hosts) at this niceness, so that
//                        other work on a shared machine distorts it less; negative needs root (env BENCH_NICE)
//   --quick              = --n 10,50 --repeats 1 --variants ts,js,ts-cli --hosts 1,20 (the default)
//   --full               = --n 10,50,200 --repeats 3 --variants ts,js,ts-cli,js-cli --hosts 1,20
//                          (the run in BENCHMARKS.md)

import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type * as automation from "@pulumi/pulumi/automation";
import type { NetworkPlan } from "../components/plan";
import type { LabHost, OperationCounts, PulumiStack } from "../provider/testing";
import { pulumiRoot, removeScratch, scratchProject, testingKit, writeProgram } from "../test/integration/harness";
import {
  ProcessProbe,
  RemoteCpuMeter,
  ROLES,
  type Role,
  type Span,
  SubtreeCpuMeter,
  stats,
  summarizeTrace,
  type TraceSummary,
} from "./probes";
import { profileSummary } from "./profile";
import { commandCount, downScript, upScript } from "./script";
import { runScriptOverSsh } from "./ssh";

type Program = "ts" | "ts-check" | "js" | "js-nosm";
/**
 * auto: PulumiStack (the test kit's Automation API wrapper: config set-all, the operation, its outputs);
 * lean: the Automation API's Stack itself, config set once, no outputs beyond what the operation returns;
 * cli: `pulumi up/refresh/destroy` run directly (PulumiStack.cli).
 */
type Driver = "auto" | "lean" | "cli";
interface Variant {
  program: Program;
  driver: Driver;
  /** PULUMI_SKIP_CHECKPOINTS=true: the engine writes the state once at the end instead of at every step. */
  noCheckpoints?: boolean;
}
const variantLabel = (v: Variant) =>
  `${v.program}${v.driver === "auto" ? "" : ` ${v.driver}`}${v.noCheckpoints ? " +nocp" : ""}`;
const variantKey = (v: Variant) => `${v.program}-${v.driver}${v.noCheckpoints ? "-nocp" : ""}`;

interface Options {
  counts: number[];
  repeats: number;
  variants: Variant[];
  hosts: number[];
  hostsVariants: Variant[];
  parallel?: number;
  profile?: string;
  json?: string;
  nice?: number;
}

function parseList(text: string): string[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

const QUICK = { n: "10,50", repeats: "1", variants: "ts,js,ts-cli", hosts: "1,20", "hosts-variants": "ts" };
const FULL = {
  n: "10,50,200",
  repeats: "3",
  variants: "ts,js,ts-cli,js-cli",
  hosts: "1,20",
  "hosts-variants": "ts",
};

function parseVariant(x: string): Variant {
  const m = /^(ts|ts-check|js|js-nosm)(?:-(cli|lean))?(\+nocp)?$/.exec(x);
  if (!m) throw new Error(`variant: not ts, ts-check, js or js-nosm, optionally with -cli or -lean, and +nocp: ${x}`);
  return { program: m[1] as Program, driver: (m[2] ?? "auto") as Driver, ...(m[3] ? { noCheckpoints: true } : {}) };
}

function parseOptions(argv: string[]): Options {
  const env = process.env;
  const o: Record<string, string | undefined> = {
    n: env.BENCH_N ?? QUICK.n,
    repeats: env.BENCH_REPEATS ?? QUICK.repeats,
    variants: env.BENCH_VARIANTS ?? QUICK.variants,
    hosts: env.BENCH_HOSTS ?? QUICK.hosts,
    "hosts-variants": env.BENCH_HOSTS_VARIANTS ?? "ts",
    parallel: env.BENCH_PARALLEL,
    nice: env.BENCH_NICE,
    profile: env.BENCH_PROFILE,
    json: env.BENCH_JSON,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--quick") Object.assign(o, QUICK);
    else if (a === "--full") Object.assign(o, FULL);
    else if (a.startsWith("--")) {
      const [k, v] = a.includes("=")
        ? [a.slice(2, a.indexOf("=")), a.slice(a.indexOf("=") + 1)]
        : [a.slice(2), argv[++i]];
      if (!(k in o)) throw new Error(`unknown option --${k}`);
      o[k] = v ?? "";
    } else throw new Error(`unexpected argument ${a}`);
  }
  const ints = (s: string | undefined, max: number, what: string) =>
    parseList(s ?? "").map((x) => {
      const n = Number(x);
      if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`not a ${what} (1-${max}): ${x}`);
      return n;
    });
  const parallel = o.parallel ? ints(o.parallel, 256, "parallelism")[0] : undefined;
  return {
    counts: ints(o.n, 999, "namespace count"),
    repeats: Math.max(1, Number(o.repeats) || 1),
    variants: parseList(o.variants ?? "").map(parseVariant),
    hosts: ints(o.hosts, 40, "host count"),
    hostsVariants: parseList(o["hosts-variants"] ?? "").map(parseVariant),
    ...(parallel ? { parallel } : {}),
    ...(o.profile ? { profile: path.resolve(o.profile) } : {}),
    ...(o.json ? { json: o.json } : {}),
    ...(o.nice ? { nice: Number(o.nice) } : {}),
  };
}

const SUBNET = "10.99.0.0/16";
const BRIDGE = "v-bench-0";

const CONNECTION = (suffix: string) => `{
  host: cfg.require("host${suffix}"),
  port: cfg.requireNumber("port${suffix}"),
  user: "root",
  privateKey: cfg.requireSecret("privateKey${suffix}"),
}`;

const PROGRAM = `
import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";

const cfg = new pulumi.Config();
const connection = ${CONNECTION("")};
const count = cfg.requireNumber("count");
const net = new netns.IsolatedNetwork("bench", {
  connection,
  bridge: cfg.require("bridge"),
  subnet: cfg.require("subnet"),
  namespaces: Array.from({ length: count }, (_, i) => ({ name: "ns" + String(i + 1).padStart(3, "0") })),
});
export const gateway = net.gateway;
`;

/** The lesson (examples/isolated-network without green) on each of `hosts` lab hosts. */
const MULTI_HOST_PROGRAM = `
import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";

const cfg = new pulumi.Config();
const hosts = cfg.requireNumber("hosts");
export const gateways = Array.from({ length: hosts }, (_, i) => {
  const lab = new netns.IsolatedNetwork("site-" + i, {
    connection: {
      host: cfg.require("host" + i),
      port: cfg.requireNumber("port" + i),
      user: "root",
      privateKey: cfg.requireSecret("privateKey" + i),
    },
    bridge: "v-net-0",
    subnet: "192.168.15.0/24",
    gateway: "192.168.15.5",
    namespaces: [
      { name: "red", address: "192.168.15.1" },
      { name: "blue", address: "192.168.15.2" },
    ],
    outboundNat: true,
    portForwards: [{ namespace: "blue", hostPort: 8080, port: 80 }],
  });
  return lab.gateway;
});
`;

/** The same program compiled to CommonJS, as `tsc` would leave it. */
const toJs = (source: string) =>
  source
    .replace('import * as pulumi from "@pulumi/pulumi";', 'const pulumi = require("@pulumi/pulumi");')
    .replace('import * as netns from "pulumi-netns";', 'const netns = require("pulumi-netns");')
    .replace(/^export const (\w+) =/gm, "exports.$1 =");

/**
 * The SDK's cmd/run installs source-map-support for every program, and the SDK takes a stack trace for every
 * resource and promise: a compiled program without source maps can put V8's own formatting back.
 */
const NO_SOURCE_MAPS = "Error.prepareStackTrace = undefined; // no source maps here: V8's own stack traces\n";

/**
 * A program directory for one variant: index.ts, or index.js with `typescript: false` (no ts-node at all;
 * js-nosm: without source-map-support's stack traces too).
 */
function variantProgram(name: string, source: string, program: Program): string {
  const dir = writeProgram(name, source);
  if (program === "js" || program === "js-nosm") {
    fs.rmSync(path.join(dir, "index.ts"));
    fs.writeFileSync(path.join(dir, "index.js"), (program === "js-nosm" ? NO_SOURCE_MAPS : "") + toJs(source));
    fs.writeFileSync(
      path.join(dir, "Pulumi.yaml"),
      `name: ${name}\nruntime:\n  name: nodejs\n  options:\n    typescript: false\n`,
    );
  }
  return dir;
}

const nsName = (i: number) => `ns${String(i + 1).padStart(3, "0")}`;

type Op = "up" | "no-op" | "refresh" | "destroy";
const OPS: Op[] = ["up", "no-op", "refresh", "destroy"];

interface OpMeasure {
  wallMs: number;
  counts: OperationCounts;
  trace: TraceSummary;
  /**
   * CPU seconds per process role on this machine; driver: this process (the Automation API's side) less its
   * sampling (probe); unsampled: what the cpuacct group saw beyond them; remote: the lab hosts.
   */
  cpu: Record<Role, number> & { driver: number; probe: number; unsampled: number; remote: number };
  cliCalls: number;
  /** The pulumi calls, by start time: their subcommands. */
  cliArgs: string[];
  providerPeakMiB: number;
  /** 1-minute load average when the operation ended (the machine is shared). */
  load: number;
  /** ms from the operation's start: the main pulumi process (the longest), the program, the first provider host. */
  timeline: { cliStart: number; cliEnd: number; programStart: number; programEnd: number; providerStart: number };
}

interface Sample {
  n: number;
  repeat: number;
  variant: Variant;
  script: { up: number; upHandshake: number; down: number; commands: number; upCpu: number; downCpu: number };
  ops: Record<Op, OpMeasure>;
}

interface HostSample {
  variant: Variant;
  hosts: number;
  repeat: number;
  ops: Record<Op, OpMeasure>;
}

function log(line: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
}

type Kit = typeof import("../provider/testing");

/** Runs operations on one stack, through the Automation API (PulumiStack) or the CLI directly. */
class Runner {
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
      return { create: 0, update: 0, replace: 0, delete: 0, same: 0, read: 0, ...(changes ?? {}) };
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
    const counts: OperationCounts = { create: 0, update: 0, replace: 0, delete: 0, same: 0, read: 0 };
    for (const line of fs.readFileSync(events, "utf8").split("\n")) {
      if (!line.includes("summaryEvent")) continue;
      const changes = JSON.parse(line).summaryEvent?.resourceChanges ?? {};
      Object.assign(counts, changes);
    }
    fs.rmSync(events, { force: true });
    return counts;
  }
}

/** Measures one operation: wall time, CPU per process role here and on the lab hosts, remote commands, RSS. */
async function measure(
  runner: Runner,
  op: Op,
  probe: ProcessProbe,
  subtree: SubtreeCpuMeter,
  remoteMeters: RemoteCpuMeter[],
): Promise<OpMeasure> {
  const offset = runner.traceOffset();
  const remote0 = remoteMeters.reduce((a, m) => a + m.seconds(), 0);
  probe.start();
  const started = performance.now();
  let seen: ReturnType<ProcessProbe["stop"]> | undefined;
  const {
    result: counts,
    subtree: all,
    self,
  } = await subtree.measure(async () => {
    try {
      return await runner.run(op);
    } finally {
      seen = probe.stop();
    }
  });
  const wallMs = performance.now() - started;
  const remote = remoteMeters.reduce((a, m) => a + m.seconds(), 0) - remote0;
  const s = seen as ReturnType<ProcessProbe["stop"]>;
  const sampled = ROLES.reduce((a, r) => a + s.cpu[r], 0);
  return {
    wallMs,
    counts,
    trace: runner.traceSince(offset),
    cpu: {
      ...s.cpu,
      driver: Math.max(0, self - s.probeCpuS),
      probe: s.probeCpuS,
      unsampled: Math.max(0, all - self - sampled),
      remote,
    },
    cliCalls: s.cliCalls,
    cliArgs: s.spans.filter((x) => x.role === "cli").map((x) => x.args ?? "?"),
    providerPeakMiB: s.providerPeakMiB,
    load: os.loadavg()[0],
    timeline: timelineOf(s.spans),
  };
}

function timelineOf(spans: Span[]): OpMeasure["timeline"] {
  const longest = (role: Role) =>
    spans.filter((x) => x.role === role).sort((a, b) => b.endMs - b.startMs - (a.endMs - a.startMs))[0];
  const cli = longest("cli");
  const program = longest("program");
  const provider = spans.find((x) => x.role === "provider");
  return {
    cliStart: cli?.startMs ?? Number.NaN,
    cliEnd: cli?.endMs ?? Number.NaN,
    programStart: program?.startMs ?? Number.NaN,
    programEnd: program?.endMs ?? Number.NaN,
    providerStart: provider?.startMs ?? Number.NaN,
  };
}

function checkCounts(label: string, op: Op, c: OperationCounts, created: number): void {
  const changed = c.create + c.update + c.replace + c.delete;
  if (op === "up" && c.create !== created) throw new Error(`${label}: up created ${c.create}, expected ${created}`);
  if (op === "no-op" && changed !== 0) throw new Error(`${label}: no-op up changed ${JSON.stringify(c)}`);
  if (op === "refresh" && c.update + c.delete !== 0)
    throw new Error(`${label}: refresh saw drift ${JSON.stringify(c)}`);
  if (op === "destroy" && c.delete !== created)
    throw new Error(`${label}: destroy deleted ${c.delete}, not ${created}`);
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  if (opts.nice !== undefined) os.setPriority(process.pid, opts.nice);
  log(
    `bench: N=${opts.counts} repeats=${opts.repeats} variants: ${opts.variants.map(variantLabel).join(", ")}; hosts ${opts.hosts}`,
  );
  const t0 = performance.now();
  const root = pulumiRoot();
  const installMs = performance.now() - t0;
  const cliVersion = execFileSync(path.join(root, "bin", "pulumi"), ["version"], { encoding: "utf8" }).trim();
  log(`pulumi ${cliVersion} at ${root} (npm run pulumi:install: ${installMs.toFixed(0)} ms)`);
  log("packing and installing pulumi-netns into a scratch project ...");
  const t1 = Date.now();
  scratchProject();
  const kit = testingKit();
  const { planNetwork } = require(require.resolve("pulumi-netns", { paths: [scratchProject()] })) as {
    planNetwork: typeof import("../components/plan")["planNetwork"];
  };
  log(`installed in ${Date.now() - t1} ms`);

  const labs: LabHost[] = [];
  const samples: Sample[] = [];
  const hostSamples: HostSample[] = [];
  const loadBefore = os.loadavg();
  const subtree = new SubtreeCpuMeter();
  const probe = new ProcessProbe();
  const meters: RemoteCpuMeter[] = [];
  const profiles: string[] = [];
  try {
    if (opts.counts.length && opts.variants.length) {
      const lab = await kit.startLabHost({ name: `bench-${process.pid}` });
      labs.push(lab);
      const meter = new RemoteCpuMeter(lab.pid);
      meters.push(meter);
      const baseline = await kit.fingerprint(lab);
      const ipForward = (await lab.exec(["cat", "/proc/sys/net/ipv4/ip_forward"])).stdout.trim();
      for (const n of opts.counts) {
        const plan = planNetwork({
          bridge: BRIDGE,
          subnet: SUBNET,
          namespaces: Array.from({ length: n }, (_, i) => ({ name: nsName(i) })),
        });
        const dirs = new Map(
          opts.variants.map((v) => [v, variantProgram(`bench-${n}-${variantKey(v)}`, PROGRAM, v.program)]),
        );
        const config = {
          host: lab.connection.host,
          port: String(lab.connection.port),
          privateKey: lab.connection.privateKey,
          count: String(n),
          bridge: BRIDGE,
          subnet: SUBNET,
        };
        for (let repeat = 1; repeat <= opts.repeats; repeat++) {
          for (const variant of opts.variants) {
            const label = `N=${n} #${repeat} ${variantLabel(variant)}`;
            // The script first, right before this variant: the ratio is of two neighbours.
            const script = await runScript(lab, plan, ipForward, baseline, meter, label, kit);
            const profileDir =
              opts.profile && repeat === 1 ? path.join(opts.profile, `n${n}-${variantKey(variant)}`) : undefined;
            const runner = new Runner(kit, dirs.get(variant) as string, variant.driver, config, {
              label,
              ...(opts.parallel ? { parallel: opts.parallel } : {}),
              ...(variant.program === "ts-check" ? { typeCheck: true } : {}),
              ...(variant.noCheckpoints ? { noCheckpoints: true } : {}),
              ...(profileDir ? { profile: profileDir } : {}),
            });
            await runner.prepare();
            const ops = {} as Record<Op, OpMeasure>;
            for (const op of OPS) {
              ops[op] = await measure(runner, op, probe, subtree, [meter]);
              checkCounts(label, op, ops[op].counts, 3 * n + 4);
              if (op === "up") await expectCreated(lab, plan, `${label} up`);
            }
            await expectBaseline(kit, lab, baseline, `${label} destroy`);
            if (profileDir) profiles.push(profileDir);
            log(
              `${label}: script up ${fmtS(script.up)} down ${fmtS(script.down)}; ${OPS.map((op) => `${op} ${fmtS(ops[op].wallMs)}`).join(" ")} s`,
            );
            samples.push({ n, repeat, variant, script, ops });
          }
        }
      }
      meter.close();
      meters.splice(meters.indexOf(meter), 1);
      await lab.stop();
      labs.splice(labs.indexOf(lab), 1);
    }
    if (opts.hosts.length) hostSamples.push(...(await scaleAcrossHosts(kit, opts, probe, subtree, labs, meters)));
  } finally {
    for (const m of meters) m.close();
    for (const lab of labs) await lab.stop().catch(() => undefined);
    subtree.close();
    if (!process.env.PULUMI_NETNS_KEEP_SCRATCH) removeScratch();
  }
  const loadAfter = os.loadavg();
  const out = [
    machine(),
    `pulumi ${cliVersion}; npm run pulumi:install (cached): ${installMs.toFixed(0)} ms`,
    `load average before ${loadBefore[0].toFixed(2)}, after ${loadAfter[0].toFixed(2)}; niceness ${os.getPriority(process.pid)}`,
    "",
    renderTables(samples, hostSamples),
  ];
  if (profiles.length)
    out.push(
      "",
      "Profiles:",
      ...profiles.flatMap((d) =>
        fs
          .readdirSync(d)
          .sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10))
          .map((op) => profileSummary(path.join(d, op))),
      ),
    );
  process.stdout.write(`\n${out.join("\n")}\n`);
  if (opts.json)
    fs.writeFileSync(
      opts.json,
      `${JSON.stringify({ machine: machine(), cliVersion, installMs, loadBefore, loadAfter, samples, hostSamples }, null, 2)}\n`,
    );
}

async function runScript(
  lab: LabHost,
  plan: NetworkPlan,
  ipForward: string,
  baseline: string,
  meter: RemoteCpuMeter,
  label: string,
  kit: Kit,
): Promise<Sample["script"]> {
  const up = upScript(plan);
  const c0 = meter.seconds();
  const su = await runScriptOverSsh(lab.connection, up);
  const c1 = meter.seconds();
  await expectCreated(lab, plan, `${label} script`);
  const c2 = meter.seconds();
  const sd = await runScriptOverSsh(lab.connection, downScript(plan, ipForward));
  const c3 = meter.seconds();
  await expectBaseline(kit, lab, baseline, `${label} script down`);
  return {
    up: su.totalMs,
    upHandshake: su.handshakeMs,
    down: sd.totalMs,
    commands: commandCount(up),
    upCpu: c1 - c0,
    downCpu: c3 - c2,
  };
}

/** The lesson network on `h` lab hosts in one program, for each h in opts.hosts, interleaved per repeat. */
async function scaleAcrossHosts(
  kit: Kit,
  opts: Options,
  probe: ProcessProbe,
  subtree: SubtreeCpuMeter,
  labs: LabHost[],
  meters: RemoteCpuMeter[],
): Promise<HostSample[]> {
  const most = Math.max(...opts.hosts);
  log(`starting ${most} lab hosts ...`);
  const mine: LabHost[] = [];
  const hostMeters: RemoteCpuMeter[] = [];
  for (let i = 0; i < most; i++) {
    const lab = await kit.startLabHost({ name: `bench-h${i}-${process.pid}` });
    labs.push(lab);
    mine.push(lab);
    const meter = new RemoteCpuMeter(lab.pid);
    meters.push(meter);
    hostMeters.push(meter);
  }
  const baselines = await Promise.all(mine.map((lab) => kit.fingerprint(lab)));
  const out: HostSample[] = [];
  const dirs = new Map(
    opts.hostsVariants.flatMap((v) =>
      opts.hosts.map((h) => [
        `${variantKey(v)} ${h}`,
        variantProgram(`bench-hosts-${h}-${variantKey(v)}`, MULTI_HOST_PROGRAM, v.program),
      ]),
    ),
  );
  for (let repeat = 1; repeat <= opts.repeats; repeat++) {
    for (const [variant, h] of opts.hostsVariants.flatMap((v) => opts.hosts.map((h) => [v, h] as const))) {
      const label = `hosts=${h} #${repeat} ${variantLabel(variant)}`;
      const config: Record<string, string> = { hosts: String(h) };
      for (let i = 0; i < h; i++) {
        config[`host${i}`] = mine[i].connection.host;
        config[`port${i}`] = String(mine[i].connection.port);
        config[`privateKey${i}`] = mine[i].connection.privateKey;
      }
      const runner = new Runner(kit, dirs.get(`${variantKey(variant)} ${h}`) as string, variant.driver, config, {
        label,
        ...(opts.parallel ? { parallel: opts.parallel } : {}),
        ...(variant.program === "ts-check" ? { typeCheck: true } : {}),
        ...(variant.noCheckpoints ? { noCheckpoints: true } : {}),
      });
      await runner.prepare();
      const ops = {} as Record<Op, OpMeasure>;
      // Per host: the component, bridge, NAT rule, port forward, 2 namespaces, 2 veth pairs, 2 routes; and the stack.
      const created = 10 * h + 1;
      for (const op of OPS) {
        ops[op] = await measure(runner, op, probe, subtree, hostMeters.slice(0, h));
        checkCounts(label, op, ops[op].counts, created);
        if (op === "up")
          for (const lab of mine.slice(0, h)) {
            const names = JSON.parse((await lab.exec(["ip", "-j", "netns", "list"])).stdout || "[]") as Array<{
              name: string;
            }>;
            if (!["red", "blue"].every((x) => names.some((y) => y.name === x)))
              throw new Error(`${label}: ${lab.name} lacks red or blue after up`);
          }
      }
      for (const [i, lab] of mine.slice(0, h).entries())
        await expectBaseline(kit, lab, baselines[i], `${label} destroy`);
      log(`${label}: ${OPS.map((op) => `${op} ${fmtS(ops[op].wallMs)}`).join(" ")} s`);
      out.push({ variant, hosts: h, repeat, ops });
    }
  }
  for (const m of hostMeters) {
    m.close();
    meters.splice(meters.indexOf(m), 1);
  }
  for (const lab of mine) {
    await lab.stop();
    labs.splice(labs.indexOf(lab), 1);
  }
  return out;
}

/** Both ways must build the same thing: every namespace with its address and default route. */
async function expectCreated(lab: LabHost, plan: NetworkPlan, what: string): Promise<void> {
  const listed = JSON.parse((await lab.exec(["ip", "-j", "netns", "list"])).stdout || "[]") as Array<{ name: string }>;
  const names = new Set(listed.map((x) => x.name));
  const missing = plan.namespaces.filter((ns) => !names.has(ns.name));
  if (missing.length) throw new Error(`${what}: namespaces missing: ${missing.map((m) => m.name).join(" ")}`);
  // Spot-check the last namespace fully: address and default route through the gateway.
  const last = plan.namespaces[plan.namespaces.length - 1];
  const addrs = JSON.parse(
    (await lab.exec(["ip", "-n", last.name, "-j", "addr", "show", "dev", last.vethName])).stdout,
  );
  const local = addrs[0]?.addr_info?.find((a: { family: string }) => a.family === "inet")?.local;
  if (local !== last.address) throw new Error(`${what}: ${last.name} has ${local}, expected ${last.address}`);
  const routes = JSON.parse((await lab.exec(["ip", "-n", last.name, "-j", "route", "show", "default"])).stdout);
  if (routes[0]?.gateway !== plan.gateway)
    throw new Error(`${what}: ${last.name} default route ${JSON.stringify(routes)}`);
}

async function expectBaseline(kit: Kit, lab: LabHost, baseline: string, what: string): Promise<void> {
  const now = await kit.fingerprint(lab);
  if (now === baseline) return;
  const before = new Set(baseline.split("\n"));
  const after = new Set(now.split("\n"));
  const diff = [
    ...[...before].filter((l) => !after.has(l)).map((l) => `- ${l}`),
    ...[...after].filter((l) => !before.has(l)).map((l) => `+ ${l}`),
  ];
  throw new Error(`${what}: the lab host is not back to its state before up:\n${diff.slice(0, 20).join("\n")}`);
}

function machine(): string {
  const mem = (os.totalmem() / 2 ** 30).toFixed(1);
  const cpu = os.cpus()[0]?.model ?? "?";
  return `machine: ${os.cpus().length} cores (${cpu}), ${mem} GiB, Linux ${os.release()}, node ${process.version}`;
}

const fmtS = (ms: number) => (ms / 1000).toFixed(2);
const fmtX = (x: number) => `${x.toFixed(2)}×`;
const fmtC = (s: number) => (Number.isNaN(s) ? "-" : s.toFixed(1));
const med = (xs: number[]) => stats(xs).median;
function spread(xs: number[], f: (x: number) => string = fmtS): string {
  const st = stats(xs);
  return xs.length > 1 ? `${f(st.median)} (${f(st.min)}-${f(st.max)})` : f(st.median);
}

function groupBy<T>(xs: T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) m.set(key(x), [...(m.get(key(x)) ?? []), x]);
  return m;
}

/** CPU seconds on this machine for the operation: every process it started, and the driver. */
const localCpu = (m: OpMeasure) => ROLES.reduce((a, r) => a + m.cpu[r], 0) + m.cpu.driver + m.cpu.unsampled;
const cpuCells = (ms: OpMeasure[]) => [
  ...(["cli", "langhost", "program", "provider"] as const).map((r) => fmtC(med(ms.map((m) => m.cpu[r])))),
  fmtC(med(ms.map((m) => m.cpu.driver))),
  fmtC(med(ms.map((m) => m.cpu.other + m.cpu.unsampled))),
  fmtC(med(ms.map(localCpu))),
  fmtC(med(ms.map((m) => m.cpu.remote))),
];
const CPU_HEADER = [
  "CPU s: CLI/engine",
  "lang host",
  "program",
  "provider host",
  "driver",
  "other",
  "= here",
  "lab host",
];

function renderTables(samples: Sample[], hostSamples: HostSample[]): string {
  const parts: string[] = [];
  if (samples.length) {
    const rows: string[][] = [];
    for (const group of groupBy(samples, (s) => `${s.n} ${variantLabel(s.variant)}`).values()) {
      const first = group[0];
      const col = (op: Op) => group.map((g) => g.ops[op].wallMs);
      const ratio = (op: Op, base: (g: Sample) => number) => group.map((g) => g.ops[op].wallMs / base(g));
      rows.push([
        String(first.n),
        variantLabel(first.variant),
        spread(group.map((g) => g.script.up)),
        spread(col("up")),
        spread(
          ratio("up", (g) => g.script.up),
          fmtX,
        ),
        spread(col("no-op")),
        spread(col("refresh")),
        spread(group.map((g) => g.script.down)),
        spread(col("destroy")),
        spread(
          ratio("destroy", (g) => g.script.down),
          fmtX,
        ),
        OPS.map((op) => Math.max(...group.map((g) => g.ops[op].trace.commands))).join("/"),
        OPS.map((op) => Math.max(...group.map((g) => g.ops[op].cliCalls))).join("/"),
        `≤${Math.max(...group.flatMap((g) => OPS.map((op) => g.ops[op].trace.maxHandshakesPerProcessHost)))}`,
        med(group.map((g) => Math.max(...OPS.map((op) => g.ops[op].providerPeakMiB)))).toFixed(0),
      ]);
    }
    parts.push(
      markdown(
        [
          "N",
          "variant",
          "script up s",
          "up s",
          "up ×",
          "no-op up s",
          "refresh s",
          "script down s",
          "destroy s",
          "destroy ×",
          "remote cmds up/no-op/refresh/destroy",
          "CLI calls up/no-op/refresh/destroy",
          "handshakes /process/host",
          "provider RSS MiB",
        ],
        rows,
      ),
    );
    // CPU per process role, median per N, variant and operation.
    const cpuRows: string[][] = [];
    for (const group of groupBy(samples, (s) => `${s.n} ${variantLabel(s.variant)}`).values()) {
      const first = group[0];
      cpuRows.push([
        String(first.n),
        variantLabel(first.variant),
        "script up",
        spread(group.map((g) => g.script.up)),
        ...Array(7).fill("-"),
        fmtC(med(group.map((g) => g.script.upCpu))),
      ]);
      for (const op of OPS) {
        const ms = group.map((g) => g.ops[op]);
        cpuRows.push([
          String(first.n),
          variantLabel(first.variant),
          op,
          spread(ms.map((m) => m.wallMs)),
          ...cpuCells(ms),
        ]);
      }
      cpuRows.push([
        String(first.n),
        variantLabel(first.variant),
        "script down",
        spread(group.map((g) => g.script.down)),
        ...Array(7).fill("-"),
        fmtC(med(group.map((g) => g.script.downCpu))),
      ]);
    }
    parts.push(
      "CPU per process (medians): the pulumi CLI processes (engine and the Automation API's extra calls), the language host, the program (cmd/run), the provider host (cmd/dynamic-provider), the driver (this process: the Automation API or the CLI call), other = processes of neither kind plus what sampling missed (from the subtree's cpuacct group), lab host = its sshd cgroup:",
      markdown(["N", "variant", "op", "wall s", ...CPU_HEADER], cpuRows),
    );
    // Where the wall time goes, from the processes' start and end times.
    const tlRows: string[][] = [];
    for (const group of groupBy(samples, (s) => `${s.n} ${variantLabel(s.variant)}`).values()) {
      const first = group[0];
      for (const op of OPS) {
        const ms = group.map((g) => g.ops[op]);
        const m = (f: (x: OpMeasure) => number) => {
          const xs = ms.map(f).filter((x) => !Number.isNaN(x));
          return xs.length ? fmtS(med(xs)) : "-";
        };
        tlRows.push([
          String(first.n),
          variantLabel(first.variant),
          op,
          m((x) => x.wallMs),
          m((x) => x.timeline.cliStart),
          m((x) => x.timeline.providerStart - x.timeline.cliStart),
          m((x) => x.timeline.programStart - x.timeline.cliStart),
          m((x) => x.timeline.programEnd - x.timeline.programStart),
          m((x) => x.timeline.cliEnd - x.timeline.cliStart),
          m((x) => x.wallMs - x.timeline.cliEnd),
          ms.map((x) => x.load.toFixed(1)).join(" "),
        ]);
      }
    }
    parts.push(
      "Where the wall time goes (medians, s): before = from the call until the main pulumi process starts (the Automation API's config/select calls); provider / program start = from the main pulumi process's start; program run = cmd/run's lifetime (registrations, up only); pulumi = the main pulumi process's lifetime; after = from its exit until the call returns (outputs, history); load = 1-minute load average at the end of each repeat:",
      markdown(
        [
          "N",
          "variant",
          "op",
          "wall",
          "before",
          "provider start",
          "program start",
          "program run",
          "pulumi",
          "after",
          "load",
        ],
        tlRows,
      ),
    );
    // What the Automation API (and PulumiStack on top of it) adds over the CLI called directly.
    const autoRows: string[][] = [];
    for (const group of groupBy(
      samples,
      (s) => `${s.n} ${s.variant.program} ${Boolean(s.variant.noCheckpoints)}`,
    ).values()) {
      const cli = group.filter((g) => g.variant.driver === "cli");
      if (!cli.length) continue;
      for (const driver of ["auto", "lean"] as const) {
        const auto = group.filter((g) => g.variant.driver === driver);
        if (!auto.length) continue;
        for (const op of OPS) {
          const a = med(auto.map((g) => g.ops[op].wallMs));
          const c = med(cli.map((g) => g.ops[op].wallMs));
          const calls = (xs: Sample[]) => xs[0].ops[op].cliArgs.join(", ");
          autoRows.push([
            String(group[0].n),
            variantLabel(auto[0].variant),
            op,
            fmtS(a),
            fmtS(c),
            fmtS(a - c),
            `${fmtC(med(auto.map((g) => g.ops[op].cpu.cli)))} / ${fmtC(med(cli.map((g) => g.ops[op].cpu.cli)))}`,
            `${calls(auto)} / ${calls(cli)}`,
          ]);
        }
      }
    }
    if (autoRows.length)
      parts.push(
        "PulumiStack (and the Automation API alone: lean) against the CLI run directly, same program, medians; the pulumi calls as seen in the first repeat:",
        markdown(
          ["N", "variant", "op", "wall s", "CLI direct s", "added s", "pulumi CPU s / direct", "pulumi calls / direct"],
          autoRows,
        ),
      );
  }
  if (hostSamples.length) {
    const rows: string[][] = [];
    const fewest = Math.min(...hostSamples.map((x) => x.hosts));
    for (const group of groupBy(hostSamples, (s) => `${variantKey(s.variant)} ${s.hosts}`).values()) {
      const one = hostSamples.filter(
        (s) => s.hosts === fewest && variantKey(s.variant) === variantKey(group[0].variant),
      );
      for (const op of OPS) {
        const ms = group.map((g) => g.ops[op]);
        const ratios = group.map((g) => {
          const base = one.find((o) => o.repeat === g.repeat) ?? one[0];
          return g.ops[op].wallMs / base.ops[op].wallMs;
        });
        rows.push([
          variantLabel(group[0].variant),
          String(group[0].hosts),
          op,
          spread(ms.map((m) => m.wallMs)),
          spread(ratios, fmtX),
          String(Math.max(...ms.map((m) => m.trace.commands))),
          String(Math.max(...ms.map((m) => m.trace.handshakes))),
          ...cpuCells(ms),
        ]);
      }
    }
    parts.push(
      `The lesson network (2 namespaces, bridge, NAT, port forward) on ${fewest} and on more lab hosts, one program; × = wall time against ${fewest} host(s), same variant and repeat:`,
      markdown(
        ["variant", "hosts", "op", "wall s", `× ${fewest} host`, "remote cmds", "handshakes", ...CPU_HEADER],
        rows,
      ),
    );
  }
  parts.push("Targets (issue 9), at the largest N and host count measured:", targets(samples, hostSamples));
  return parts.join("\n\n");
}

/** The issue's targets against the medians at the largest N (per variant) and host count. */
function targets(samples: Sample[], hostSamples: HostSample[]): string {
  const rows: string[][] = [];
  const verdict = (ok: boolean) => (ok ? "met" : "**missed**");
  if (samples.length) {
    const n = Math.max(...samples.map((s) => s.n));
    for (const group of groupBy(
      samples.filter((s) => s.n === n),
      (s) => variantLabel(s.variant),
    ).values()) {
      const v = variantLabel(group[0].variant);
      const upX = med(group.map((g) => g.ops.up.wallMs / g.script.up));
      const limit = group[0].variant.program.startsWith("js") ? 1.0 : 1.2;
      const noop = med(group.map((g) => g.ops["no-op"].wallMs));
      const noopCmds = Math.max(...group.map((g) => g.ops["no-op"].trace.commands));
      const refresh = med(group.map((g) => g.ops.refresh.wallMs));
      const destroyX = med(group.map((g) => g.ops.destroy.wallMs / g.script.down));
      rows.push(
        [`N=${n} ${v}`, `up ≤ ${limit.toFixed(1)}× the script`, fmtX(upX), verdict(upX <= limit)],
        [
          `N=${n} ${v}`,
          "no-op up ≤ 5 s, 0 remote commands",
          `${fmtS(noop)} s, ${noopCmds} commands`,
          verdict(noop <= 5000 && noopCmds === 0),
        ],
        [`N=${n} ${v}`, "refresh ≤ 3 s", `${fmtS(refresh)} s`, verdict(refresh <= 3000)],
        [`N=${n} ${v}`, "destroy ≤ the script's teardown", fmtX(destroyX), verdict(destroyX <= 1)],
      );
    }
  }
  if (hostSamples.length) {
    const most = Math.max(...hostSamples.map((s) => s.hosts));
    const fewest = Math.min(...hostSamples.map((s) => s.hosts));
    for (const group of groupBy(
      hostSamples.filter((s) => s.hosts === most),
      (s) => variantKey(s.variant),
    ).values()) {
      const x = med(
        group.map((g) => {
          const base = hostSamples.find(
            (o) => o.hosts === fewest && o.repeat === g.repeat && variantKey(o.variant) === variantKey(g.variant),
          );
          return base ? g.ops.up.wallMs / base.ops.up.wallMs : Number.NaN;
        }),
      );
      rows.push([
        `${most} hosts ${variantLabel(group[0].variant)}`,
        `up on ${most} hosts ≤ 2× on ${fewest}`,
        fmtX(x),
        verdict(x <= 2),
      ]);
    }
  }
  return markdown(["where", "target", "median", ""], rows);
}

function markdown(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
