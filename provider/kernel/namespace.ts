import { command, quote } from "../shell";
import type { IpArgs } from "./script";

/** Where iproute2 keeps named namespaces (a compile-time constant of iproute2). */
const NETNS_RUN_DIR = "/var/run/netns";

/** What `printPresence` prints for a namespace that exists. */
const PRESENT = "present";

// `ip -batch` splits its lines itself (on blanks, with its own quoting and `#`
// comments), so a batch takes only plain tokens; validated names and addresses are.
const BATCH_TOKEN = /^[A-Za-z0-9_.:/-]+$/;

/**
 * Where commands run: a named network namespace or the host's own. Passed as
 * a value (as CNI passes a `NetNS`), so no builder takes a namespace name.
 */
export interface Namespace {
  /** The namespace's name; undefined for the host's own. */
  readonly name: string | undefined;
  /** `ip` in this namespace. */
  ip(...args: IpArgs): string;
  /**
   * Several `ip` commands as one `ip -batch` process instead of one process
   * each (a process start costs the host about 2 ms of CPU, more than the
   * command itself). Like a chain of steps, it stops at the first command that
   * fails and exits non-zero, with the kernel's error on stderr. `options` go
   * before `-batch` and apply to every line (`-j`, `-d` for the shows in it).
   */
  ipBatch(lines: IpArgs[], options?: string[]): string;
  /** Any other command in this namespace (`ip netns exec`). */
  exec(...argv: Array<string | number>): string;
  /** A shell test that is true when the namespace exists (always, for the host's own). */
  exists(): string;
  /** Runs `command` only if the namespace exists (and succeeds when it does not). */
  ifExists(command: string): string;
  /** A read that prints whether the namespace exists; see `isPresent`. */
  printPresence(): string;
}

/** A named namespace, or the host's own when `name` is absent. */
export function at(name: string | undefined): Namespace {
  const place: Namespace = {
    name,
    ip: (...args) => (name ? command("ip", "-n", name, ...args) : command("ip", ...args)),
    ipBatch(lines, options = []) {
      if (lines.length === 1) return place.ip(...options, ...lines[0]);
      if (lines.length === 0) return "true";
      const text = lines.map((line) => {
        const bad = line.find((t) => !BATCH_TOKEN.test(String(t)));
        if (bad !== undefined) throw new Error(`not a plain token for ip -batch: ${JSON.stringify(bad)}`);
        return line.join(" ");
      });
      return `printf '%s\\n' ${text.map(quote).join(" ")} | ${place.ip(...options, "-batch", "-")}`;
    },
    exec: (...argv) => (name ? command("ip", "netns", "exec", name, ...argv) : command(...argv)),
    exists: () => (name ? `[ -e ${quote(`${NETNS_RUN_DIR}/${name}`)} ]` : "true"),
    ifExists: (cmd) => (name ? `if ${place.exists()}; then ${cmd}; fi` : cmd),
    printPresence: () => place.ifExists(`echo ${PRESENT}`),
  };
  return place;
}

/** The lines of an `ip -batch` command `ipBatch` wrote (undefined for any other command), to name the one that failed. */
export function batchLines(command: string): string[] | undefined {
  // Every line is one quoted word (it has blanks and never a quote: plain tokens only).
  const lines = /^printf '%s\\n' ((?:'[^']*' )+)\| ip /.exec(command)?.[1];
  return lines === undefined ? undefined : [...lines.matchAll(/'([^']*)'/g)].map((m) => m[1]);
}

/** Whether the output of `printPresence` says the namespace exists. */
export function isPresent(output: string): boolean {
  return output.trim() === PRESENT;
}
