import * as fs from "node:fs";

/**
 * Peak RSS of the dynamic provider host. The runner's child spawns
 * `node <sdk>/cmd/dynamic-provider/index.js` with cwd = the program directory
 * and SIGKILLs it when the operation ends, so the host cannot report on exit.
 * Instead this samples /proc every `intervalMs` for processes whose command
 * line names cmd/dynamic-provider and whose cwd is the program directory, and
 * keeps the largest VmHWM (the kernel's own high-water mark of resident
 * memory, which only grows). The last sample is at most `intervalMs` before
 * the kill, and VmHWM already covers everything before it.
 */
export class ProviderRssProbe {
  private timer: NodeJS.Timeout | undefined;
  private readonly peaks = new Map<number, number>();
  private readonly skip = new Set<number>();

  constructor(
    private readonly programDir: string,
    private readonly intervalMs = 25,
  ) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
  }

  /** Stops sampling; returns the peak VmHWM in MiB over all matching processes (0 if none was seen). */
  stop(): { peakMiB: number; hosts: number } {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const peak = Math.max(0, ...this.peaks.values());
    return { peakMiB: peak / 1024, hosts: this.peaks.size };
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
        if (!this.peaks.has(pid)) {
          const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
          // Right after fork a node child still shows its parent's command line, so
          // only processes that are not node at all are skipped for good.
          if (!cmd.includes("node")) this.skip.add(pid);
          if (!cmd.includes("cmd/dynamic-provider") || fs.readlinkSync(`/proc/${pid}/cwd`) !== this.programDir)
            continue;
        }
        const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
        const kb = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
        this.peaks.set(pid, Math.max(kb, this.peaks.get(pid) ?? 0));
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
