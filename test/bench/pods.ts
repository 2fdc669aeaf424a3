// The PodNetwork case of the bench (--pods / --pod-network): a PodNetwork of three nodes (mode "routes") through
// the real engine against the hand-written script of test/bench/podScript.ts on each node, side by side in one run.

import * as os from "node:os";
import * as path from "node:path";
import type { PodNetworkPlan, PodNetworkSpec } from "../../components/podPlan";
import type { LabHost, LabSegment } from "../../provider/testing";
import type { RemoteCpuMeter, SubtreeCpuMeter } from "./cpuacct";
import { measure, type OpMeasure } from "./measure";
import { type Options, type Variant, variantKey, variantLabel } from "./options";
import { podBenchSpec, podDownScript, podUpScript } from "./podScript";
import { type ProcessProbe, stats } from "./probes";
import { podProgram } from "./programs";
import { fmtS } from "./report";
import { type Kit, type Op, Runner } from "./runner";
import { commandCount } from "./script";
import { runScriptOverSsh } from "./ssh";

/** The nodes: three lab hosts on one segment, as test/integration/podNetwork.test.ts links them. */
const NODES = 3;
const SEGMENT = "192.0.2.0/24";
/** Only up and destroy: the case is about `up` (and both sides must leave the nodes as they were). */
const POD_OPS: Op[] = ["up", "destroy"];

export interface PodSample {
  round: number;
  podsPerNode: number;
  variant: Variant;
  /** Which side ran first in this round (they alternate). */
  first: "script" | "pulumi";
  script: { up: number; down: number; commands: number; handshakes: number; upCpuRemote: number; load: number };
  ops: Record<"up" | "destroy", OpMeasure>;
}

type Log = (line: string) => void;

export async function benchPodNetwork(
  kit: Kit,
  planPodNetwork: (spec: PodNetworkSpec) => PodNetworkPlan,
  opts: Options & { pods: number },
  probe: ProcessProbe,
  subtree: SubtreeCpuMeter,
  labs: LabHost[],
  meters: RemoteCpuMeter[],
  newMeter: (lab: LabHost) => RemoteCpuMeter,
  log: Log,
  /** Where the profiled operations' directories go (with --profile: the first round of each variant). */
  profiles: string[],
): Promise<PodSample[]> {
  log(`PodNetwork: starting ${NODES} lab hosts (FORWARD policy DROP, as Docker leaves hosts) and linking them ...`);
  const mine: LabHost[] = [];
  for (let i = 0; i < NODES; i++) {
    const lab = await kit.startLabHost({ name: `bench-pod${i + 1}-${process.pid}`, forwardPolicyDrop: true });
    labs.push(lab);
    mine.push(lab);
  }
  let segment: LabSegment | undefined;
  const hostMeters: RemoteCpuMeter[] = [];
  try {
    segment = await kit.linkLabHosts(mine, { subnet: SEGMENT });
    const seg = segment;
    for (const lab of mine) {
      const m = newMeter(lab);
      meters.push(m);
      hostMeters.push(m);
    }
    const plan = planPodNetwork(
      podBenchSpec(
        opts.pods,
        mine.map((lab) => seg.addressOf(lab)),
      ),
    );
    const baselines = await Promise.all(mine.map((lab) => kit.fingerprint(lab)));
    const ipForward = await Promise.all(
      mine.map(async (lab) => (await lab.exec(["cat", "/proc/sys/net/ipv4/ip_forward"])).stdout.trim()),
    );
    const config: Record<string, string> = {};
    for (const [i, lab] of mine.entries()) {
      config[`host${i}`] = lab.connection.host;
      config[`port${i}`] = String(lab.connection.port);
      config[`privateKey${i}`] = lab.connection.privateKey;
    }
    // Per node: bridge, pods × (namespace, veth pair, route), a route to each other node, the MasqueradeRule;
    // and the component and the stack.
    const created = plan.nodes.reduce((a, n) => a + 2 + 3 * n.pods.length + n.routes.length, 0) + 2;
    const dirs = new Map(
      opts.variants.map((v) => [v, podProgram(`bench-pods-${opts.pods}-${variantKey(v)}`, plan, v.program)]),
    );
    const out: PodSample[] = [];
    for (let round = 1; round <= opts.repeats; round++)
      for (const [vi, variant] of opts.variants.entries()) {
        const programDir = dirs.get(variant) as string;
        const profileDir =
          opts.profile && round === 1 ? path.join(opts.profile, `pods${opts.pods}-${variantKey(variant)}`) : undefined;
        const label = `PodNetwork ${NODES}×${opts.pods} #${round} ${variantLabel(variant)}`;
        // Alternate who goes first, so a drift in the machine's load favours neither side.
        const first = (round + vi) % 2 === 1 ? "script" : "pulumi";
        let script: PodSample["script"] | undefined;
        let ops: PodSample["ops"] | undefined;
        const runScriptSide = async () => {
          script = await scriptSide(mine, plan, ipForward, baselines, hostMeters, label, kit, log);
        };
        const runPulumiSide = async () => {
          const runner = new Runner(kit, programDir, variant.driver, config, {
            label,
            ...(opts.parallel ? { parallel: opts.parallel } : {}),
            ...(variant.noCheckpoints ? { noCheckpoints: true } : {}),
            ...(profileDir ? { profile: profileDir } : {}),
          });
          await runner.prepare();
          const done = {} as PodSample["ops"];
          for (const op of POD_OPS as Array<"up" | "destroy">) {
            log(`${label}: pulumi ${op} of ${created} resources ...`);
            const ticker = progress(runner, op, label, log);
            try {
              done[op] = await measure(runner, op, probe, subtree, hostMeters);
            } finally {
              clearInterval(ticker);
            }
            const c = done[op].counts;
            if (op === "up" && c.create !== created)
              throw new Error(`${label}: up created ${c.create}, not ${created}`);
            if (op === "destroy" && c.delete !== created)
              throw new Error(`${label}: destroy deleted ${c.delete}, not ${created}`);
            log(
              `${label}: pulumi ${op} ${fmtS(done[op].wallMs)} s, ${done[op].trace.commands} remote commands, ${done[op].trace.handshakes} handshakes`,
            );
            if (op === "up") await expectPodNetwork(mine, plan, `${label} pulumi up`);
          }
          await expectBaselines(kit, mine, baselines, `${label} pulumi destroy`);
          if (profileDir) profiles.push(profileDir);
          ops = done;
        };
        if (first === "script") {
          await runScriptSide();
          await runPulumiSide();
        } else {
          await runPulumiSide();
          await runScriptSide();
        }
        const s = script as PodSample["script"];
        const o = ops as PodSample["ops"];
        log(`${label}: up ${fmtS(o.up.wallMs)} s vs script ${fmtS(s.up)} s (${(o.up.wallMs / s.up).toFixed(1)}×)`);
        out.push({ round, podsPerNode: opts.pods, variant, first, script: s, ops: o });
      }
    return out;
  } finally {
    for (const m of hostMeters) {
      m.close();
      meters.splice(meters.indexOf(m), 1);
    }
    await segment?.remove().catch(() => undefined);
    for (const lab of mine) {
      await lab.stop().catch(() => undefined);
      labs.splice(labs.indexOf(lab), 1);
    }
  }
}

/** Every 15 s of a long operation: how far it is, from the remote commands traced so far. */
function progress(runner: Runner, op: Op, label: string, log: Log): NodeJS.Timeout {
  const offset = runner.traceOffset();
  const t0 = performance.now();
  return setInterval(() => {
    const t = runner.traceSince(offset);
    log(`${label}: pulumi ${op} running ${fmtS(performance.now() - t0)} s, ${t.commands} remote commands so far`);
  }, 15_000);
}

/** The script on all three nodes at once (one SSH session each), checked, then torn down the same way. */
async function scriptSide(
  labs: LabHost[],
  plan: PodNetworkPlan,
  ipForward: string[],
  baselines: string[],
  meters: RemoteCpuMeter[],
  label: string,
  kit: Kit,
  log: Log,
): Promise<PodSample["script"]> {
  const ups = plan.nodes.map((_, i) => podUpScript(plan, i));
  const cpu = () => meters.reduce((a, m) => a + m.seconds(), 0);
  log(`${label}: script up on ${labs.length} nodes ...`);
  const c0 = cpu();
  const t0 = performance.now();
  await Promise.all(labs.map((lab, i) => runScriptOverSsh(lab.connection, ups[i])));
  const up = performance.now() - t0;
  const upCpuRemote = cpu() - c0;
  const load = os.loadavg()[0];
  await expectPodNetwork(labs, plan, `${label} script up`);
  const t1 = performance.now();
  await Promise.all(labs.map((lab, i) => runScriptOverSsh(lab.connection, podDownScript(plan, i, ipForward[i]))));
  const down = performance.now() - t1;
  await expectBaselines(kit, labs, baselines, `${label} script down`);
  log(`${label}: script up ${fmtS(up)} s, down ${fmtS(down)} s`);
  return {
    up,
    down,
    commands: ups.reduce((a, s) => a + commandCount(s), 0),
    handshakes: labs.length,
    upCpuRemote,
    load,
  };
}

/**
 * Both sides must build a network that works the same way: every pod's
 * namespace on its node, and the first pod of node 1 reaches the last pod of
 * the last node (across the segment: node routes, bridges, FORWARD accepts).
 */
async function expectPodNetwork(labs: LabHost[], plan: PodNetworkPlan, what: string): Promise<void> {
  for (const [i, node] of plan.nodes.entries()) {
    const listed = JSON.parse((await labs[i].exec(["ip", "-j", "netns", "list"])).stdout || "[]") as Array<{
      name: string;
    }>;
    const names = new Set(listed.map((x) => x.name));
    const missing = node.pods.filter((p) => !names.has(p.name)).map((p) => p.name);
    if (missing.length) throw new Error(`${what}: ${node.name} lacks pods ${missing.join(" ")}`);
  }
  const from = plan.nodes[0].pods[0];
  const last = plan.nodes[plan.nodes.length - 1];
  const to = last.pods[last.pods.length - 1];
  const r = await labs[0].exec(["ping", "-c", "1", "-W", "2", to.address], {
    namespace: from.name,
    allowFailure: true,
  });
  if (r.code !== 0)
    throw new Error(`${what}: ${from.name} (node 1) cannot ping ${to.name} at ${to.address}: ${r.stdout}`);
}

async function expectBaselines(kit: Kit, labs: LabHost[], baselines: string[], what: string): Promise<void> {
  for (const [i, lab] of labs.entries()) {
    const now = await kit.fingerprint(lab);
    if (now === baselines[i]) continue;
    const before = new Set(baselines[i].split("\n"));
    const after = new Set(now.split("\n"));
    const diff = [
      ...[...before].filter((l) => !after.has(l)).map((l) => `- ${l}`),
      ...[...after].filter((l) => !before.has(l)).map((l) => `+ ${l}`),
    ];
    throw new Error(`${what}: ${lab.name} is not back to its state before up:\n${diff.slice(0, 20).join("\n")}`);
  }
}

/** The case's table: per round, and the medians (the ratio is the median of the rounds' engine/script ratios). */
export function renderPodTable(samples: PodSample[]): string {
  if (!samples.length) return "";
  const rows = samples.map((s) => [
    `${NODES}×${s.podsPerNode}`,
    variantLabel(s.variant),
    String(s.round),
    s.first,
    fmtS(s.script.up),
    fmtS(s.ops.up.wallMs),
    `${(s.ops.up.wallMs / s.script.up).toFixed(1)}×`,
    fmtS(s.script.down),
    fmtS(s.ops.destroy.wallMs),
    `${s.script.commands}/${s.script.handshakes}`,
    `${s.ops.up.trace.commands}/${s.ops.up.trace.handshakes}`,
    `${s.ops.destroy.trace.commands}/${s.ops.destroy.trace.handshakes}`,
    `${s.ops.up.load.toFixed(1)}`,
  ]);
  const head =
    "| nodes×pods | variant | round | first | script up s | `up` s | up × | script down s | `destroy` s | script cmds/handshakes | up cmds/handshakes | destroy cmds/handshakes | load |";
  return [
    head,
    `|${" --- |".repeat(rows[0].length)}`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
    "",
    ...[...new Set(samples.map((s) => variantLabel(s.variant)))].map((v) => {
      const of = samples.filter((s) => variantLabel(s.variant) === v);
      const ratio = stats(of.map((s) => s.ops.up.wallMs / s.script.up));
      const median = (xs: number[]) => fmtS(stats(xs).median);
      return (
        `${v}: up engine/script median ${ratio.median.toFixed(1)}× (${ratio.min.toFixed(1)}-${ratio.max.toFixed(1)}×) over ${of.length} rounds;` +
        ` median up ${median(of.map((s) => s.ops.up.wallMs))} s vs script ${median(of.map((s) => s.script.up))} s;` +
        ` median destroy ${median(of.map((s) => s.ops.destroy.wallMs))} s vs script ${median(of.map((s) => s.script.down))} s`
      );
    }),
  ].join("\n");
}
