// CPU accounted by cgroup v1 cpuacct groups: the lab host's SSH side, and the bench's own process subtree.

import * as fs from "node:fs";

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

/** Where `pid` is in the cpuacct hierarchy ("/" for the root group). */
function cpuacctGroupOf(pid: number | "self"): string {
  const line = fs
    .readFileSync(`/proc/${pid}/cgroup`, "utf8")
    .split("\n")
    .find((l) => l.split(":")[1]?.split(",").includes("cpuacct"));
  return line?.split(":")[2] || "/";
}

/** Moves `pid` into the group at `home` (a path as cpuacctGroupOf gives it). */
function moveTo(home: string, pid: number | string): void {
  fs.writeFileSync(`${CPUACCT}${home === "/" ? "" : home}/cgroup.procs`, String(pid));
}

/** Removes the group at `dir`, sending the processes still in it to `home` first; never throws. */
function removeGroup(dir: string | undefined, home: string): void {
  if (!dir || !fs.existsSync(dir)) return;
  try {
    for (const pid of fs.readFileSync(`${dir}/cgroup.procs`, "utf8").split("\n").filter(Boolean))
      try {
        moveTo(home, pid);
      } catch {
        // exited meanwhile
      }
    fs.rmdirSync(dir);
  } catch (e) {
    process.stderr.write(`bench: could not remove ${dir}: ${(e as Error).message}\n`);
  }
}

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
    this.home = cpuacctGroupOf(this.sshd);
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
    removeGroup(this.dir, this.home);
    this.dir = undefined;
  }
}

/**
 * All CPU this process and everything it starts spend during an operation:
 * this process moves itself into a cpuacct cgroup of its own for the
 * operation, so the CLI and every process under it (short-lived ones
 * included) are charged there as they run. Minus this process's own CPU
 * (the Automation API's side: event log, output parsing), what the
 * ProcessProbe's roles do not cover is CPU it could not sample. NaN without
 * cgroup v1 cpuacct.
 */
export class SubtreeCpuMeter {
  private dir: string | undefined;
  private home = "/";

  constructor() {
    if (!fs.existsSync(`${CPUACCT}/cpuacct.usage`)) return;
    this.home = cpuacctGroupOf("self");
    const dir = `${CPUACCT}/pulumi-netns-bench-${process.pid}-cli`;
    fs.mkdirSync(dir, { recursive: true });
    this.dir = dir;
  }

  /** Runs `work` with this process in the group: CPU seconds of the whole subtree, and of this process alone. */
  async measure<T>(work: () => Promise<T>): Promise<{ result: T; subtree: number; self: number }> {
    const dir = this.dir;
    if (!dir) return { result: await work(), subtree: Number.NaN, self: Number.NaN };
    const usage = () => Number(fs.readFileSync(`${dir}/cpuacct.usage`, "utf8")) / 1e9;
    fs.writeFileSync(`${dir}/cgroup.procs`, String(process.pid));
    const before = usage();
    const self0 = process.cpuUsage();
    try {
      const result = await work();
      const selfUs = process.cpuUsage(self0);
      return { result, subtree: usage() - before, self: (selfUs.user + selfUs.system) / 1e6 };
    } finally {
      this.leave();
    }
  }

  private leave(): void {
    try {
      moveTo(this.home, process.pid);
    } catch (e) {
      process.stderr.write(`bench: could not leave the cpuacct group: ${(e as Error).message}\n`);
    }
  }

  /** Removes the group (its processes, if any are left, go home first); never throws. */
  close(): void {
    removeGroup(this.dir, this.home);
    this.dir = undefined;
  }
}
