// One measured operation, and the samples the bench collects from them.

import * as os from "node:os";
import type { OperationCounts } from "../../provider/testing";
import type { RemoteCpuMeter, SubtreeCpuMeter } from "./cpuacct";
import type { Variant } from "./options";
import { type ProcessProbe, ROLES, type Role, type Span, type TraceSummary } from "./probes";
import type { Op, Runner } from "./runner";

export interface OpMeasure {
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

export interface Sample {
  n: number;
  repeat: number;
  variant: Variant;
  script: { up: number; upHandshake: number; down: number; commands: number; upCpu: number; downCpu: number };
  ops: Record<Op, OpMeasure>;
}

export interface HostSample {
  variant: Variant;
  hosts: number;
  repeat: number;
  ops: Record<Op, OpMeasure>;
}

/** Measures one operation: wall time, CPU per process role here and on the lab hosts, remote commands, RSS. */
export async function measure(
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

export function checkCounts(label: string, op: Op, c: OperationCounts, created: number): void {
  const changed = c.create + c.update + c.replace + c.delete;
  if (op === "up" && c.create !== created) throw new Error(`${label}: up created ${c.create}, expected ${created}`);
  if (op === "no-op" && changed !== 0) throw new Error(`${label}: no-op up changed ${JSON.stringify(c)}`);
  if (op === "refresh" && c.update + c.delete !== 0)
    throw new Error(`${label}: refresh saw drift ${JSON.stringify(c)}`);
  if (op === "destroy" && c.delete !== created)
    throw new Error(`${label}: destroy deleted ${c.delete}, not ${created}`);
}
