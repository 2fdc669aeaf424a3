import * as fs from "node:fs";
import * as path from "node:path";
import { traceEvents } from "../support/trace";

const TICKS_PER_SECOND = 100; // USER_HZ, 100 on Linux

/** Who a process is, from its command line. */
export type Role = "cli" | "langhost" | "program" | "provider" | "other";
export const ROLES: Role[] = ["cli", "langhost", "program", "provider", "other"];

function roleOf(cmd: string): Role {
  const argv = cmd.split("\0");
  if (path.basename(argv[0] ?? "") === "pulumi") return "cli";
  if (cmd.includes("cmd/dynamic-provider")) return "provider";
  if (cmd.includes("/cmd/run")) return "program";
  if (cmd.includes("language-host.js")) return "langhost";
  return "other";
}

/** `up`, `stack output`, `config set-all`, ... from a pulumi command line (flags and their values skipped). */
function subcommand(args: string[]): string {
  const words: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--profiling" || a === "--tracing") i++;
    else if (a.startsWith("-")) {
      if (words.length) break;
    } else {
      words.push(a);
      if (!["stack", "config", "plugin"].includes(a)) break;
    }
  }
  return words.join(" ");
}

function statFields(pid: number): string[] {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces) start at ") ": [0] state, [1] ppid, [11] utime, [12] stime.
  return stat.slice(stat.lastIndexOf(") ") + 2).split(" ");
}

/** When a process ran, in ms since the probe started (end: the last sample that saw it alive). */
export interface Span {
  role: Role;
  pid: number;
  startMs: number;
  endMs: number;
  cpu: number;
  /** For pulumi processes: the subcommand. */
  args?: string;
}

/** Seconds since boot, the clock of /proc/PID/stat's starttime. */
function uptime(): number {
  return Number(fs.readFileSync("/proc/uptime", "utf8").split(" ")[0]);
}

export interface ProbeResult {
  /** CPU seconds per role: the pulumi CLI processes (engine), the language host, the program (cmd/run), the provider host. */
  cpu: Record<Role, number>;
  /** Distinct `pulumi` processes seen: CLI invocations during the operation. */
  cliCalls: number;
  /** Largest VmHWM of a provider host, MiB (0 if none was seen). */
  providerPeakMiB: number;
  /** Every process seen, by start time. */
  spans: Span[];
  /** CPU seconds this process spent sampling (part of the driver's CPU). */
  probeCpuS: number;
}

/**
 * Samples this process's descendants (the CLI the Automation API or
 * PulumiStack.cli starts, and what it starts: the language host, its node
 * child running the program, the dynamic provider host) every `intervalMs`
 * from /proc, and keeps per process the last CPU time seen (at most
 * `intervalMs` before it exits) and, for provider hosts, the largest VmHWM
 * (the kernel's high-water mark of resident memory, which only grows). Only
 * descendants of this process count, so other test runs on the machine do
 * not. A fresh fork shows its parent's command line until it execs, so the
 * role is read again every sample.
 */
interface Proc {
  pid: number;
  /** /proc/PID/stat starttime: with the pid, what tells a process from a later one given the same pid. */
  startTicks: number;
  role: Role;
  seconds: number;
  hwmKiB: number;
  startMs: number;
  endMs: number;
  args?: string;
}

export class ProcessProbe {
  private timer: NodeJS.Timeout | undefined;
  /** Our live processes by pid, and those that exited (pids wrap around quickly on a busy machine). */
  private readonly ours = new Map<number, Proc>();
  /** By "pid starttime": a readdir of /proc can skip a live process while others come and go. */
  private readonly gone = new Map<string, Proc>();
  /** Pids of other processes, forgotten once they leave /proc. */
  private readonly foreign = new Set<number>();
  /** performance.now() and seconds since boot at start(), to place /proc's start times. */
  private t0 = 0;
  private boot0 = 0;
  private probeUs = 0;

  constructor(private readonly intervalMs = 50) {}

  start(): void {
    this.ours.clear();
    this.gone.clear();
    this.foreign.clear();
    this.probeUs = 0;
    this.t0 = performance.now();
    this.boot0 = uptime();
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
  }

  stop(): ProbeResult {
    this.sample();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const all = [...this.gone.values(), ...this.ours.values()];
    const cpu = Object.fromEntries(ROLES.map((r) => [r, 0])) as Record<Role, number>;
    let hwm = 0;
    for (const p of all) {
      cpu[p.role] += p.seconds;
      if (p.role === "provider") hwm = Math.max(hwm, p.hwmKiB);
    }
    const spans = all
      .map((p) => ({
        role: p.role,
        pid: p.pid,
        startMs: p.startMs,
        endMs: p.endMs,
        cpu: p.seconds,
        ...(p.args ? { args: p.args } : {}),
      }))
      .sort((a, b) => a.startMs - b.startMs);
    return {
      cpu,
      cliCalls: all.filter((p) => p.role === "cli").length,
      providerPeakMiB: hwm / 1024,
      spans,
      probeCpuS: this.probeUs / 1e6,
    };
  }

  private sample(): void {
    const before = process.cpuUsage();
    try {
      this.sampleNow();
    } finally {
      const used = process.cpuUsage(before);
      this.probeUs += used.user + used.system;
    }
  }

  private sampleNow(): void {
    let pids: number[];
    try {
      pids = fs
        .readdirSync("/proc")
        .filter((p) => /^\d+$/.test(p))
        .map(Number);
    } catch {
      return;
    }
    const present = new Set(pids);
    const justGone = new Set<number>();
    for (const [pid, p] of this.ours)
      if (!present.has(pid)) {
        this.gone.set(`${pid} ${p.startTicks}`, p);
        this.ours.delete(pid);
        justGone.add(pid);
      }
    for (const pid of this.foreign) if (!present.has(pid)) this.foreign.delete(pid);
    const stats = new Map<number, string[]>();
    const fresh: number[] = [];
    for (const pid of pids) {
      if (this.foreign.has(pid) || pid === process.pid) continue;
      if (this.ours.has(pid)) {
        this.read(pid);
        continue;
      }
      try {
        stats.set(pid, statFields(pid));
        fresh.push(pid);
      } catch {
        // gone meanwhile
      }
    }
    // A new process is ours if its parent chain reaches this process through processes seen now or before
    // (a parent the listing missed this time included).
    const isOurs = (pid: number, depth = 0): boolean => {
      const parent = Number(stats.get(pid)?.[1]);
      if (Number.isNaN(parent) || depth > 32) return false;
      if (parent === process.pid || this.ours.has(parent) || justGone.has(parent)) return true;
      return isOurs(parent, depth + 1);
    };
    for (const pid of fresh) {
      const f = stats.get(pid) as string[];
      const back = this.gone.get(`${pid} ${f[19]}`);
      if (back) {
        // Not gone after all: the listing missed it once.
        this.gone.delete(`${pid} ${f[19]}`);
        this.ours.set(pid, back);
        this.read(pid);
      } else if (isOurs(pid)) {
        this.ours.set(pid, {
          pid,
          startTicks: Number(f[19]),
          role: "other",
          seconds: 0,
          hwmKiB: 0,
          startMs: (Number(f[19]) / TICKS_PER_SECOND - this.boot0) * 1000,
          endMs: Number.NaN,
        });
        this.read(pid);
      } else this.foreign.add(pid);
    }
  }

  private read(pid: number): void {
    const p = this.ours.get(pid);
    if (!p) return;
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
      const f = statFields(pid);
      if (Number(f[19]) !== p.startTicks) {
        // Ours exited and its pid went to a new process: judge that one afresh next time.
        this.gone.set(`${pid} ${p.startTicks}`, p);
        this.ours.delete(pid);
        return;
      }
      // A zombie (exited, not yet reaped) has an empty command line but its final CPU times.
      if (cmd) p.role = roleOf(cmd);
      if (cmd && p.role === "cli") p.args = subcommand(cmd.split("\0").slice(1));
      p.seconds = (Number(f[11]) + Number(f[12])) / TICKS_PER_SECOND;
      if (f[0] !== "Z") p.endMs = performance.now() - this.t0;
      if (p.role === "provider") {
        const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
        p.hwmKiB = Math.max(p.hwmKiB, Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0));
      }
    } catch {
      // gone meanwhile
    }
  }
}

export interface TraceSummary {
  handshakes: number;
  commands: number;
  /** Sum of the commands' round-trip times as the transport measured them. */
  commandMs: number;
  /** Provider-host processes that wrote to the trace. */
  processes: number;
  /** Largest number of handshakes one process made to one host. */
  maxHandshakesPerProcessHost: number;
}

/** Counts the JSON lines the transport wrote to $PULUMI_NETNS_TRACE (the file, or the part written since `offset`). */
export function summarizeTrace(file: string, offset = 0): TraceSummary {
  const s: TraceSummary = { handshakes: 0, commands: 0, commandMs: 0, processes: 0, maxHandshakesPerProcessHost: 0 };
  const pids = new Set<number>();
  const perHost = new Map<string, number>();
  for (const e of traceEvents(file, offset)) {
    pids.add(e.pid);
    if (e.event === "handshake") {
      s.handshakes++;
      const k = `${e.pid} ${e.host}`;
      perHost.set(k, (perHost.get(k) ?? 0) + 1);
    } else if (e.event === "command") {
      s.commands++;
      s.commandMs += e.ms ?? 0;
    }
  }
  s.processes = pids.size;
  s.maxHandshakesPerProcessHost = Math.max(0, ...perHost.values());
  return s;
}

/** Median and spread (min-max) of repeated measurements. */
export function stats(xs: number[]): { median: number; min: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1] };
}
