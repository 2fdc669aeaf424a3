// Benchmark: IsolatedNetwork through the runner against the hand-written shell
// script over one SSH session. Method and results: BENCHMARKS.md.
//
// Usage: npm run bench [-- options]   (or: npx ts-node --transpile-only bench/run.ts)
//   --n 10,50,200        namespace counts            (env BENCH_N)
//   --repeats 3          repeats of each pair        (env BENCH_REPEATS)
//   --parallel default   runner parallelism list; "default" = 4 x cores (env BENCH_PARALLEL)
//   --heavy-n 50         counts also run on a lab host whose login shell sleeps 150 ms; "" for none (env BENCH_HEAVY_N)
//   --shells default,8   PULUMI_NETNS_SHELLS_PER_HOST for the provider host; "default" = unset (env BENCH_SHELLS)
//   --program ts,js      the program as index.ts (ts-node, as `pulumi up` runs it) and/or plain index.js (env BENCH_PROGRAM)
//   --json file          also write every measurement as JSON (env BENCH_JSON)
//   --quick              = --n 10,50,200 --repeats 1 --parallel default --heavy-n 50 (the default; ~4 min)
//   --full               = --n 10,50,200 --repeats 3 --parallel default,16 --shells default,8 --program ts,js
//                          --heavy-n 50 (the run in BENCHMARKS.md; ~25 min)

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { NetworkPlan } from "../components/plan";
import type { LabHost, LocalStack, OperationResult } from "../provider/testing";
import { removeScratch, scratchProject, testingKit, writeProgram } from "../test/integration/harness";
import { ProcessProbe, RemoteCpuMeter, stats, summarizeTrace, type TraceSummary } from "./probes";
import { commandCount, downScript, upScript } from "./script";
import { runScriptOverSsh } from "./ssh";

interface Options {
  counts: number[];
  repeats: number;
  parallels: Array<number | "default">;
  heavyCounts: number[];
  shells: Array<number | "default">;
  programs: Array<"ts" | "js">;
  json?: string;
}

function parseList(text: string): string[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

function parseOptions(argv: string[]): Options {
  const env = process.env;
  const o: Record<string, string | undefined> = {
    n: env.BENCH_N ?? "10,50,200",
    repeats: env.BENCH_REPEATS ?? "1",
    parallel: env.BENCH_PARALLEL ?? "default",
    "heavy-n": env.BENCH_HEAVY_N ?? "50",
    shells: env.BENCH_SHELLS ?? "default",
    program: env.BENCH_PROGRAM ?? "ts",
    json: env.BENCH_JSON,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--quick")
      Object.assign(o, {
        n: "10,50,200",
        repeats: "1",
        parallel: "default",
        shells: "default",
        program: "ts",
        "heavy-n": "50",
      });
    else if (a === "--full")
      Object.assign(o, {
        n: "10,50,200",
        repeats: "3",
        parallel: "default,16",
        shells: "default,8",
        program: "ts,js",
        "heavy-n": "50",
      });
    else if (a.startsWith("--")) {
      const [k, v] = a.includes("=")
        ? [a.slice(2, a.indexOf("=")), a.slice(a.indexOf("=") + 1)]
        : [a.slice(2), argv[++i]];
      if (!(k in o)) throw new Error(`unknown option --${k}`);
      o[k] = v ?? "";
    } else throw new Error(`unexpected argument ${a}`);
  }
  const ints = (s: string | undefined) =>
    parseList(s ?? "").map((x) => {
      const n = Number(x);
      if (!Number.isInteger(n) || n < 1 || n > 999) throw new Error(`not a namespace count (1-999): ${x}`);
      return n;
    });
  return {
    counts: ints(o.n),
    repeats: Math.max(1, Number(o.repeats) || 1),
    parallels: parseList(o.parallel ?? "").map((p) => (p === "default" ? "default" : Number(p))),
    heavyCounts: ints(o["heavy-n"]),
    shells: parseList(o.shells ?? "").map((x) => {
      if (x === "default") return "default";
      const n = Number(x);
      if (!Number.isInteger(n) || n < 1 || n > 9) throw new Error(`--shells: not 1-9 or "default": ${x}`);
      return n;
    }),
    programs: parseList(o.program ?? "").map((x) => {
      if (x !== "ts" && x !== "js") throw new Error(`--program: not ts or js: ${x}`);
      return x;
    }),
    json: o.json,
  };
}

const SUBNET = "10.99.0.0/16";
const BRIDGE = "v-bench-0";

const PROGRAM = `
import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";

const cfg = new pulumi.Config();
const connection = {
  host: cfg.require("host"),
  port: cfg.requireNumber("port"),
  user: "root",
  privateKey: cfg.requireSecret("privateKey"),
};
const count = cfg.requireNumber("count");
const net = new netns.IsolatedNetwork("bench", {
  connection,
  bridge: cfg.require("bridge"),
  subnet: cfg.require("subnet"),
  namespaces: Array.from({ length: count }, (_, i) => ({ name: "ns" + String(i + 1).padStart(3, "0") })),
});
export const gateway = net.gateway;
`;

/** The same program as CommonJS, run by node without ts-node. */
const PROGRAM_JS = PROGRAM.replace(
  'import * as pulumi from "@pulumi/pulumi";',
  'const pulumi = require("@pulumi/pulumi");',
)
  .replace('import * as netns from "pulumi-netns";', 'const netns = require("pulumi-netns");')
  .replace("export const gateway = net.gateway;", "exports.gateway = net.gateway;");

const nsName = (i: number) => `ns${String(i + 1).padStart(3, "0")}`;

interface OpMeasure {
  wallMs: number;
  /** The child's own view: SDK load, provider host start + Configure, engine work. */
  timings?: OperationResult["timings"];
  trace: TraceSummary;
  rssMiB: number;
  /** CPU seconds of the runner child (SDK, program, engine), of the provider host, and on the lab host (sshd, shells, ip). */
  cpu: { child: number; host: number; remote: number };
  counts: OperationResult["counts"];
}

interface Variant {
  parallel: number;
  shells: number | "default";
  program: "ts" | "js";
}

const variantLabel = (v: Variant) => `p=${v.parallel} shells=${v.shells} ${v.program}`;

interface Sample {
  lab: "plain" | "heavy";
  n: number;
  repeat: number;
  script: { up: number; upHandshake: number; down: number; commands: number; upCpu: number; downCpu: number };
  runs: Array<{ variant: Variant; up: OpMeasure; noop: OpMeasure; refresh: OpMeasure; destroy: OpMeasure }>;
}

function log(line: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const cores = os.cpus().length;
  const parallels = opts.parallels.map((p) => (p === "default" ? 4 * cores : p));
  const variants: Variant[] = opts.programs.flatMap((program) =>
    opts.shells.flatMap((shells) => parallels.map((parallel) => ({ parallel, shells, program }))),
  );
  log(
    `bench: N=${opts.counts} heavy N=${opts.heavyCounts} repeats=${opts.repeats} variants: ${variants.map(variantLabel).join(", ")}`,
  );
  log("packing and installing pulumi-netns into a scratch project ...");
  const t0 = Date.now();
  scratchProject();
  const kit = testingKit();
  const { planNetwork } = require(require.resolve("pulumi-netns", { paths: [scratchProject()] })) as {
    planNetwork: typeof import("../components/plan")["planNetwork"];
  };
  log(`installed in ${Date.now() - t0} ms`);

  const labs: LabHost[] = [];
  const samples: Sample[] = [];
  const loadBefore = os.loadavg();
  try {
    const kinds: Array<{ kind: "plain" | "heavy"; counts: number[] }> = [
      { kind: "plain", counts: opts.counts },
      { kind: "heavy", counts: opts.heavyCounts },
    ];
    for (const { kind, counts } of kinds) {
      if (counts.length === 0) continue;
      const lab = await kit.startLabHost({ name: `bench-${kind}-${process.pid}`, heavyShell: kind === "heavy" });
      labs.push(lab);
      const baseline = await kit.fingerprint(lab);
      const ipForward = (await lab.exec(["cat", "/proc/sys/net/ipv4/ip_forward"])).stdout.trim();
      for (const n of counts) {
        const plan = planNetwork({
          bridge: BRIDGE,
          subnet: SUBNET,
          namespaces: Array.from({ length: n }, (_, i) => ({ name: nsName(i) })),
        });
        const dir = writeProgram(`bench-${kind}-${n}`, PROGRAM);
        const jsDir = writeProgram(`bench-${kind}-${n}-js`, PROGRAM_JS);
        fs.renameSync(path.join(jsDir, "index.ts"), path.join(jsDir, "index.js"));
        for (let repeat = 1; repeat <= opts.repeats; repeat++) {
          const sample = await pair(
            kit,
            lab,
            plan,
            { ts: dir, js: jsDir },
            variants,
            ipForward,
            baseline,
            kind,
            n,
            repeat,
          );
          samples.push(sample);
          printSample(sample);
        }
      }
      await lab.stop();
      labs.splice(labs.indexOf(lab), 1);
    }
  } finally {
    for (const lab of labs) await lab.stop().catch(() => undefined);
    if (!process.env.PULUMI_NETNS_KEEP_SCRATCH) removeScratch();
  }
  const loadAfter = os.loadavg();
  const table = renderTable(samples);
  process.stdout.write(
    `\n${machine()}\nload average before ${loadBefore[0].toFixed(2)}, after ${loadAfter[0].toFixed(2)}\n\n${table}\n`,
  );
  if (opts.json) fs.writeFileSync(opts.json, `${JSON.stringify({ machine: machine(), samples }, null, 2)}\n`);
}

async function pair(
  kit: typeof import("../provider/testing"),
  lab: LabHost,
  plan: NetworkPlan,
  dirs: { ts: string; js: string },
  variants: Variant[],
  ipForward: string,
  baseline: string,
  kind: "plain" | "heavy",
  n: number,
  repeat: number,
): Promise<Sample> {
  const label = `${kind} N=${n} #${repeat}`;
  // The script: up, then down, then the host must be as before.
  const up = upScript(plan);
  const down = downScript(plan, ipForward);
  const meter = new RemoteCpuMeter(lab.pid);
  const remoteCpu = async <T>(work: () => Promise<T>): Promise<{ result: T; cpu: number }> => {
    const before = meter.seconds();
    const result = await work();
    return { result, cpu: meter.seconds() - before };
  };
  try {
    return await measurePair();
  } finally {
    meter.close();
  }

  async function measurePair(): Promise<Sample> {
    const { result: su, cpu: upCpu } = await remoteCpu(() => runScriptOverSsh(lab.connection, up));
    await expectCreated(lab, plan, `${label} script`);
    const { result: sd, cpu: downCpu } = await remoteCpu(() => runScriptOverSsh(lab.connection, down));
    await expectBaseline(kit, lab, baseline, `${label} script down`);
    log(
      `${label}: script up ${su.totalMs.toFixed(0)} ms (handshake ${su.handshakeMs.toFixed(0)}), down ${sd.totalMs.toFixed(0)} ms`,
    );
    const sample: Sample = {
      lab: kind,
      n,
      repeat,
      script: {
        up: su.totalMs,
        upHandshake: su.handshakeMs,
        down: sd.totalMs,
        commands: commandCount(up),
        upCpu,
        downCpu,
      },
      runs: [],
    };
    const config = {
      host: lab.connection.host,
      port: String(lab.connection.port),
      privateKey: lab.connection.privateKey,
      count: String(n),
      bridge: BRIDGE,
      subnet: SUBNET,
    };
    for (const variant of variants) {
      const { parallel } = variant;
      const dir = dirs[variant.program];
      const vlabel = `${label} ${variantLabel(variant)}`;
      const stateDir = path.join(dir, ".pulumi-state");
      fs.rmSync(stateDir, { recursive: true, force: true });
      let opIndex = 0;
      const measure = async (op: "up" | "refresh" | "destroy"): Promise<OpMeasure> => {
        const traceFile = path.join(dir, `trace-${parallel}-${repeat}-${++opIndex}.jsonl`);
        const lines: string[] = [];
        const env: NodeJS.ProcessEnv = { PULUMI_NETNS_TRACE: traceFile };
        if (variant.shells !== "default") env.PULUMI_NETNS_SHELLS_PER_HOST = String(variant.shells);
        const stack: LocalStack = new kit.LocalStack({
          programDir: dir,
          config,
          parallel,
          log: (l) => lines.push(l),
          env,
        });
        const probe = new ProcessProbe(dir);
        probe.start();
        const started = performance.now();
        const { result, cpu: remote } = await remoteCpu(async () => {
          const r = await stack[op]();
          return { r, wallMs: performance.now() - started, seen: probe.stop() };
        });
        const { r: opResult, wallMs, seen } = result;
        if (!opResult.ok) throw new Error(`${vlabel} ${op} failed: ${opResult.error}\n${lines.slice(-20).join("\n")}`);
        const m: OpMeasure = {
          wallMs,
          timings: opResult.timings,
          trace: summarizeTrace(traceFile),
          rssMiB: seen.peakMiB,
          cpu: { child: seen.childCpuS, host: seen.hostCpuS, remote },
          counts: opResult.counts,
        };
        fs.rmSync(traceFile, { force: true });
        return m;
      };
      const mUp = await measure("up");
      // 3 per namespace, the bridge, the NAT rule, the component and the stack.
      if (mUp.counts.create !== 3 * n + 4)
        throw new Error(`${vlabel}: up created ${mUp.counts.create}, expected ${3 * n + 4}`);
      await expectCreated(lab, plan, `${vlabel} up`);
      const mNoop = await measure("up");
      const c = mNoop.counts;
      if (c.create + c.update + c.replace + c.delete !== 0)
        throw new Error(`${vlabel}: no-op up changed ${JSON.stringify(c)}`);
      const mRefresh = await measure("refresh");
      if (mRefresh.counts.update + mRefresh.counts.delete !== 0)
        throw new Error(`${vlabel}: refresh saw drift ${JSON.stringify(mRefresh.counts)}`);
      const mDestroy = await measure("destroy");
      await expectBaseline(kit, lab, baseline, `${vlabel} destroy`);
      log(
        `${vlabel}: up ${mUp.wallMs.toFixed(0)} no-op ${mNoop.wallMs.toFixed(0)} refresh ${mRefresh.wallMs.toFixed(0)} destroy ${mDestroy.wallMs.toFixed(0)} ms`,
      );
      sample.runs.push({ variant, up: mUp, noop: mNoop, refresh: mRefresh, destroy: mDestroy });
    }
    return sample;
  }
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

async function expectBaseline(
  kit: typeof import("../provider/testing"),
  lab: LabHost,
  baseline: string,
  what: string,
): Promise<void> {
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

function printSample(s: Sample): void {
  log(`${s.lab} N=${s.n} #${s.repeat} done`);
}

const fmtS = (ms: number) => (ms / 1000).toFixed(2);
function spread(xs: number[], f: (x: number) => string = fmtS): string {
  const st = stats(xs);
  return xs.length > 1 ? `${f(st.median)} (${f(st.min)}-${f(st.max)})` : f(st.median);
}

function renderTable(samples: Sample[]): string {
  const rows: string[][] = [];
  const header = [
    "lab",
    "N",
    "variant",
    "script up s",
    "up s",
    "up ×",
    "no-op up s",
    "refresh s (engine)",
    "script down s",
    "destroy s",
    "destroy ×",
    "handshakes",
    "cmds up/no-op/refresh/destroy",
    "cmd ms up (sum)",
    "RSS MiB",
    "up CPU s: script / child+host+remote",
    "destroy CPU s: script / child+host+remote",
  ];
  const groups = new Map<string, Sample[]>();
  for (const s of samples) {
    const k = `${s.lab} ${s.n}`;
    groups.set(k, [...(groups.get(k) ?? []), s]);
  }
  for (const group of groups.values()) {
    const first = group[0];
    for (const [i, run] of first.runs.entries()) {
      const runs = group.map((g) => g.runs[i]);
      const scriptUp = group.map((g) => g.script.up);
      const scriptDown = group.map((g) => g.script.down);
      const ratio = (xs: number[], base: number[]) => xs.map((x, j) => x / base[j]);
      const med = (xs: number[]) => stats(xs).median;
      const handshakes = runs.flatMap((r) =>
        [r.up, r.noop, r.refresh, r.destroy].map((m) => m.trace.maxHandshakesPerProcessHost),
      );
      rows.push([
        first.lab,
        String(first.n),
        variantLabel(run.variant),
        spread(scriptUp),
        spread(runs.map((r) => r.up.wallMs)),
        spread(
          ratio(
            runs.map((r) => r.up.wallMs),
            scriptUp,
          ),
          (x) => `${x.toFixed(1)}×`,
        ),
        spread(runs.map((r) => r.noop.wallMs)),
        `${spread(runs.map((r) => r.refresh.wallMs))} (${fmtS(med(runs.map((r) => r.refresh.timings?.programMs ?? Number.NaN)))})`,
        spread(scriptDown),
        spread(runs.map((r) => r.destroy.wallMs)),
        spread(
          ratio(
            runs.map((r) => r.destroy.wallMs),
            scriptDown,
          ),
          (x) => `${x.toFixed(1)}×`,
        ),
        `≤${Math.max(...handshakes)}/process`,
        [run.up, run.noop, run.refresh, run.destroy].map((m) => m.trace.commands).join("/"),
        med(runs.map((r) => r.up.trace.commandMs)).toFixed(0),
        med(runs.map((r) => Math.max(r.up.rssMiB, r.noop.rssMiB, r.refresh.rssMiB, r.destroy.rssMiB))).toFixed(0),
        `${med(group.map((g) => g.script.upCpu)).toFixed(1)} / ${med(runs.map((r) => r.up.cpu.child)).toFixed(1)}+${med(
          runs.map((r) => r.up.cpu.host),
        ).toFixed(1)}+${med(runs.map((r) => r.up.cpu.remote)).toFixed(1)}`,
        `${med(group.map((g) => g.script.downCpu)).toFixed(1)} / ${med(runs.map((r) => r.destroy.cpu.child)).toFixed(1)}+${med(
          runs.map((r) => r.destroy.cpu.host),
        ).toFixed(1)}+${med(runs.map((r) => r.destroy.cpu.remote)).toFixed(1)}`,
      ]);
    }
  }
  const detail: string[][] = [];
  for (const s of samples)
    for (const r of s.runs)
      for (const [op, m] of Object.entries({ up: r.up, "no-op": r.noop, refresh: r.refresh, destroy: r.destroy }))
        detail.push([
          s.lab,
          String(s.n),
          String(s.repeat),
          variantLabel(r.variant),
          op,
          fmtS(m.wallMs),
          fmtS(m.timings?.sdkLoadMs ?? Number.NaN),
          fmtS(m.timings?.hostStartMs ?? Number.NaN),
          fmtS(m.timings?.programMs ?? Number.NaN),
          String(m.trace.handshakes),
          String(m.trace.commands),
          fmtS(m.trace.commandMs),
          m.rssMiB.toFixed(0),
          m.cpu.child.toFixed(2),
          m.cpu.host.toFixed(2),
          m.cpu.remote.toFixed(2),
        ]);
  return `${markdown(header, rows)}\n\nPer operation (where the time goes):\n\n${markdown(
    [
      "lab",
      "N",
      "#",
      "variant",
      "op",
      "wall s",
      "SDK load s",
      "host start s",
      "engine s",
      "handshakes",
      "commands",
      "Σ cmd s",
      "RSS MiB",
      "child CPU s",
      "host CPU s",
      "remote CPU s",
    ],
    detail,
  )}`;
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
