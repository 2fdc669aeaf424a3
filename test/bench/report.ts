// The bench's report: markdown tables of the samples, and the targets.

import type { HostSample, OpMeasure, Sample } from "./measure";
import { variantKey, variantLabel } from "./options";
import { ROLES, stats } from "./probes";
import { OPS, type Op } from "./runner";

export const fmtS = (ms: number) => (ms / 1000).toFixed(2);
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

export function renderTables(samples: Sample[], hostSamples: HostSample[]): string {
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

/** The targets against the medians at the largest N (per variant) and host count. */
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
