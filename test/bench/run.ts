// Benchmark: IsolatedNetwork through the real Pulumi CLI (`pulumi up` and
// friends, driven by the Automation API or directly) against the hand-written
// shell script over one SSH session. Method and results: BENCHMARKS.md.
//
// Usage: npm run bench [-- options]   (or: npx ts-node --transpile-only test/bench/run.ts)
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
//                        host (test/bench/cpu-profile.js), `pulumi --profiling` for the CLI (cli variants); summaries
//                        printed                                                   (env BENCH_PROFILE)
//   --json file          also write every measurement as JSON                      (env BENCH_JSON)
//   --nice -5            run the bench (and all it starts: CLI, hosts, lab hosts) at this niceness, so that
//                        other work on a shared machine distorts it less; negative needs root (env BENCH_NICE)
//   --pods 50            also the PodNetwork case (test/bench/pods.ts): 3 linked lab hosts, this many pods per node,
//                        mode routes; `up` and `destroy` of each variant against test/bench/podScript.ts
//                        on each node, --repeats rounds, alternating which side goes first; --profile: round 1 (env BENCH_PODS)
//   --pod-network        = --n "" --hosts "" --pods 50 --repeats 3 --variants ts-cli (only that case)
//   --quick              = --n 10,50 --repeats 1 --variants ts,js,ts-cli --hosts 1,20 (the default)
//   --full               = --n 10,50,200 --repeats 3 --variants ts,js,ts-cli,js-cli --hosts 1,20
//                          (the run in BENCHMARKS.md)

import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { NetworkPlan } from "../../components/plan";
import type { LabHost } from "../../provider/testing";
import { pulumiRoot, removeScratch, scratchProject, testingKit } from "../support/harness";
import { RemoteCpuMeter, SubtreeCpuMeter } from "./cpuacct";
import { checkCounts, type HostSample, measure, type OpMeasure, type Sample } from "./measure";
import { type Options, parseOptions, variantKey, variantLabel } from "./options";
import { benchPodNetwork, type PodSample, renderPodTable } from "./pods";
import { ProcessProbe } from "./probes";
import { profileSummary } from "./profile";
import { BRIDGE, MULTI_HOST_PROGRAM, nsName, PROGRAM, SUBNET, variantProgram } from "./programs";
import { fmtS, renderTables } from "./report";
import { type Kit, OPS, type Op, Runner } from "./runner";
import { commandCount, downScript, upScript } from "./script";
import { runScriptOverSsh } from "./ssh";

function log(line: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  if (opts.nice !== undefined) os.setPriority(process.pid, opts.nice);
  log(
    `bench: N=${opts.counts} repeats=${opts.repeats} variants: ${opts.variants.map(variantLabel).join(", ")}; hosts ${opts.hosts}${opts.pods ? `; PodNetwork 3×${opts.pods}` : ""}`,
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
  const { planNetwork, planPodNetwork } = require(require.resolve("pulumi-netns", { paths: [scratchProject()] })) as {
    planNetwork: typeof import("../../components/plan")["planNetwork"];
    planPodNetwork: typeof import("../../components/podPlan")["planPodNetwork"];
  };
  log(`installed in ${Date.now() - t1} ms`);

  const labs: LabHost[] = [];
  const samples: Sample[] = [];
  const hostSamples: HostSample[] = [];
  const podSamples: PodSample[] = [];
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
    if (opts.pods)
      podSamples.push(
        ...(await benchPodNetwork(
          kit,
          planPodNetwork,
          { ...opts, pods: opts.pods },
          probe,
          subtree,
          labs,
          meters,
          (lab) => new RemoteCpuMeter(lab.pid),
          log,
          profiles,
        )),
      );
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
    samples.length || hostSamples.length ? renderTables(samples, hostSamples) : "",
    podSamples.length ? `PodNetwork (3 nodes, mode routes), up and destroy:\n\n${renderPodTable(podSamples)}` : "",
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
      `${JSON.stringify({ machine: machine(), cliVersion, installMs, loadBefore, loadAfter, samples, hostSamples, podSamples }, null, 2)}\n`,
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

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
