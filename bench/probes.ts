import * as fs from "node:fs";

const TICKS_PER_SECOND = 100; // USER_HZ, 100 on Linux

/** utime + stime of a process in seconds, from /proc/PID/stat. */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces) start at ") ".
  const f = stat.slice(stat.lastIndexOf(") ") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / TICKS_PER_SECOND;
}

/** The lab's sshd listener: the process in the lab's network namespace that OpenSSH titles "[listener]". */
function sshdListenerPid(labPid: number): number {
  const netns = fs.readlinkSync(`/proc/${labPid}/ns/net`);
  for (const p of fs.readdirSync("/proc").filter((x) => /^\d+$/.test(x))) {
    try {
      if (fs.readlinkSync(`/proc/${p}/ns/net`) !== netns) continue;
      // OpenSSH retitles its listener "sshd: /usr/sbin/sshd ... [listener] ..."; older ones keep the argv.
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, "utf8");
      if (cmd.includes("[listener]") || cmd.startsWith("/usr/sbin/sshd\0")) return Number(p);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error("no sshd listener found in the lab's network namespace");
}

const CPUACCT = "/sys/fs/cgroup/cpuacct";

/**
 * All CPU the lab host spends serving SSH: its sshd listener is moved into a
 * cpuacct cgroup of its own, which every session, remote shell and `ip` it
 * forks inherits, and the kernel charges their CPU time there as it runs
 * (short-lived and orphaned processes included). Reads NaN where cgroup v1
 * cpuacct is not mounted.
 */
export class RemoteCpuMeter {
  private dir: string | undefined;
  private sshd = 0;
  /** The listener's cpuacct group before the move, to put it back. */
  private home = "/";

  constructor(labPid: number) {
    if (!fs.existsSync(`${CPUACCT}/cpuacct.usage`)) return;
    this.sshd = sshdListenerPid(labPid);
    const line = fs
      .readFileSync(`/proc/${this.sshd}/cgroup`, "utf8")
      .split("\n")
      .find((l) => l.split(":")[1]?.split(",").includes("cpuacct"));
    this.home = line?.split(":")[2] || "/";
    const dir = `${CPUACCT}/pulumi-netns-bench-${process.pid}-${labPid}`;
    fs.mkdirSync(dir, { recursive: true });
    this.dir = dir;
    try {
      fs.writeFileSync(`${dir}/cgroup.procs`, String(this.sshd));
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** CPU seconds charged so far. */
  seconds(): number {
    return this.dir ? Number(fs.readFileSync(`${this.dir}/cpuacct.usage`, "utf8")) / 1e9 : Number.NaN;
  }

  /** Moves what is left back to the listener's own group and removes ours; never throws. */
  close(): void {
    const dir = this.dir;
    this.dir = undefined;
    if (!dir || !fs.existsSync(dir)) return;
    try {
      for (const pid of fs.readFileSync(`${dir}/cgroup.procs`, "utf8").split("\n").filter(Boolean))
        try {
          fs.writeFileSync(`${CPUACCT}${this.home === "/" ? "" : this.home}/cgroup.procs`, pid);
        } catch {
          // exited meanwhile
        }
      fs.rmdirSync(dir);
    } catch (e) {
      process.stderr.write(`bench: could not remove ${dir}: ${(e as Error).message}\n`);
    }
  }
}

/**
 * Samples the runner's processes of one program directory: the runner child
 * (command line names runnerChild) and the dynamic provider host (names
 * cmd/dynamic-provider), both with cwd = the program directory. The runner
 * SIGKILLs the provider host when the operation ends, so it cannot report on
 * exit: this samples /proc every `intervalMs` and keeps, per process, the
 * largest VmHWM (the kernel's own high-water mark of resident memory, which
 * only grows) and the last CPU time seen (at most `intervalMs` before the end).
 */
export class ProcessProbe {
  private timer: NodeJS.Timeout | undefined;
  private readonly peaks = new Map<number, number>();
  private readonly cpu = new Map<number, { role: "host" | "child"; seconds: number }>();
  private readonly skip = new Set<number>();

  constructor(
    private readonly programDir: string,
    private readonly intervalMs = 25,
  ) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
  }

  /** Stops sampling: provider host peak VmHWM (MiB, 0 if none was seen) and CPU seconds per role. */
  stop(): { peakMiB: number; hostCpuS: number; childCpuS: number } {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const sum = (role: string) =>
      [...this.cpu.values()].filter((c) => c.role === role).reduce((a, c) => a + c.seconds, 0);
    return { peakMiB: Math.max(0, ...this.peaks.values()) / 1024, hostCpuS: sum("host"), childCpuS: sum("child") };
  }

  private sample(): void {
    let pids: string[];
    try {
      pids = fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p));
    } catch {
      return;
    }
    for (const p of pids) {
      const pid = Number(p);
      if (this.skip.has(pid)) continue;
      try {
        // Read every time: right after fork a node child still shows its parent's
        // command line (the host's, the child's), so only processes that are not
        // node at all are skipped for good.
        const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
        if (!cmd.includes("node")) this.skip.add(pid);
        const role = cmd.includes("cmd/dynamic-provider") ? "host" : cmd.includes("runnerChild") ? "child" : undefined;
        if (!role || fs.readlinkSync(`/proc/${pid}/cwd`) !== this.programDir) continue;
        this.cpu.set(pid, { role, seconds: cpuSeconds(pid) });
        if (role === "host") {
          const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
          const kb = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
          this.peaks.set(pid, Math.max(kb, this.peaks.get(pid) ?? 0));
        }
      } catch {
        // gone meanwhile
      }
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

/** Counts the JSON lines the transport wrote to $PULUMI_NETNS_TRACE. */
export function summarizeTrace(file: string): TraceSummary {
  const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
  const s: TraceSummary = { handshakes: 0, commands: 0, commandMs: 0, processes: 0, maxHandshakesPerProcessHost: 0 };
  const pids = new Set<number>();
  const perHost = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const e = JSON.parse(line) as { event: string; pid: number; host: string; ms: number };
    pids.add(e.pid);
    if (e.event === "handshake") {
      s.handshakes++;
      const k = `${e.pid} ${e.host}`;
      perHost.set(k, (perHost.get(k) ?? 0) + 1);
    } else if (e.event === "command") {
      s.commands++;
      s.commandMs += e.ms;
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
