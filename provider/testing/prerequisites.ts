import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { LAB_ENV, LAB_PATH } from "./commands";
import { SSHD } from "./sshd";

/** The system tools a lab host needs on this machine, and the Debian package of each. */
const REQUIRED_COMMANDS: Record<string, string> = {
  ip: "iproute2",
  iptables: "iptables",
  "iptables-save": "iptables",
  sshd: "openssh-server",
  "ssh-keygen": "openssh-client",
  unshare: "util-linux",
  nsenter: "util-linux",
  setpriv: "util-linux",
  mount: "mount",
  sysctl: "procps",
  ping: "iputils-ping",
};

function findCommand(cmd: string): string | undefined {
  if (cmd === "sshd") return isExecutable(SSHD) ? SSHD : undefined;
  for (const dir of LAB_PATH.split(":")) {
    const p = path.join(dir, cmd);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Missing prerequisites as readable items (`[]` when the lab can run here). */
export function checkLabPrerequisites(): string[] {
  const missing: string[] = [];
  if (process.platform !== "linux") missing.push("a Linux machine (this is " + process.platform + ")");
  if (typeof process.getuid !== "function" || process.getuid() !== 0) missing.push("root (run as uid 0)");
  for (const [cmd, pkg] of Object.entries(REQUIRED_COMMANDS)) {
    if (!findCommand(cmd)) missing.push(`${cmd === "sshd" ? SSHD : cmd} (Debian package ${pkg})`);
  }
  // pdeathsig is what kills a lab when the node process dies without running exit handlers.
  if (findCommand("setpriv")) {
    const help = spawnSync("setpriv", ["--help"], { env: LAB_ENV, encoding: "utf8" });
    if (!`${help.stdout}${help.stderr}`.includes("--pdeathsig")) {
      missing.push("setpriv with --pdeathsig (Debian package util-linux >= 2.33)");
    }
  }
  return missing;
}

/** Throws what is missing, with the apt-get line that installs it. */
export function assertLabPrerequisites(): void {
  const missing = checkLabPrerequisites();
  if (missing.length === 0) return;
  const pkgs = new Set<string>();
  for (const item of missing) {
    const m = /\(Debian package ([a-z0-9.+-]+)/.exec(item);
    if (m) pkgs.add(m[1]);
  }
  let msg = `pulumi-netns lab host: missing prerequisites: ${missing.join(", ")}.`;
  if (pkgs.size > 0) {
    msg += ` Install with: apt-get update && apt-get install -y --no-install-recommends ${[...pkgs].join(" ")}`;
  }
  throw new Error(msg);
}
