import { command, quote } from "../shell";
import { CommandError, type CommandResult, type Remote } from "../transport";

/** Where iproute2 keeps named namespaces (a compile-time constant of iproute2). */
export const NETNS_RUN_DIR = "/var/run/netns";

/** Separates the parts of a multi-part read; it is never valid JSON or iptables output. */
export const SECTION = "--pulumi-netns-section--";

/** The arguments of one `ip` command after `ip [-n NS]`. */
export type IpArgs = Array<string | number>;

// `ip -batch` splits its lines itself (on blanks, with its own quoting and `#`
// comments), so a batch takes only plain tokens; validated names and addresses are.
const BATCH_TOKEN = /^[A-Za-z0-9_.:/-]+$/;

/**
 * Several `ip` commands in one namespace as one `ip -batch` process instead of
 * one process each (a process start costs the host about 2 ms of CPU, more than
 * the command itself). Like a chain of `&&`, it stops at the first command that
 * fails and exits non-zero, with the kernel's error on stderr. `options` go
 * before `-batch` and apply to every line (`-j`, `-d` for the shows in it).
 */
export function ipBatch(namespace: string | undefined, ops: IpArgs[], options: string[] = []): string {
  if (ops.length === 1) return ip(namespace, ...options, ...ops[0]);
  if (ops.length === 0) return "true";
  const lines = ops.map((op) => {
    const bad = op.find((t) => !BATCH_TOKEN.test(String(t)));
    if (bad !== undefined) throw new Error(`not a plain token for ip -batch: ${JSON.stringify(bad)}`);
    return op.join(" ");
  });
  return `printf '%s\\n' ${lines.map(quote).join(" ")} | ${ip(namespace, ...options, "-batch", "-")}`;
}

/** `ip` in a named namespace, or in the host's own when `namespace` is absent. */
export function ip(namespace: string | undefined, ...args: Array<string | number>): string {
  return namespace ? command("ip", "-n", namespace, ...args) : command("ip", ...args);
}

/** Any other command in a named namespace (`ip netns exec`), or on the host. */
export function inNamespace(namespace: string | undefined, ...argv: Array<string | number>): string {
  return namespace ? command("ip", "netns", "exec", namespace, ...argv) : command(...argv);
}

/** A shell test that is true when the namespace exists (always true for the host's own). */
export function namespaceExists(namespace: string | undefined): string {
  return namespace ? `[ -e ${quote(`${NETNS_RUN_DIR}/${namespace}`)} ]` : "true";
}

/**
 * Runs several read-only scripts in one round trip and returns each one's
 * stdout. A part whose script fails yields "" (callers treat that as absent).
 */
export async function readSections(remote: Remote, scripts: string[]): Promise<string[]> {
  const joined = scripts.map((s) => `{ ${s} ; } 2>/dev/null || true; echo ${SECTION}`).join("\n");
  const result = await remote.run(joined);
  const parts = result.stdout.split(`${SECTION}\n`);
  return scripts.map((_, i) => parts[i] ?? "");
}

/**
 * Wraps steps so that, if any fails, `undo` runs and the script exits with the
 * failing step's code: the host is left as it was and its error text reaches
 * the user through the command error.
 */
export function allOrNothing(steps: string[], undo: string): string {
  if (steps.length === 0) return "true";
  return `{ ${steps.join(" && ")} ; } || { rc=$?; { ${undo} ; } >/dev/null 2>&1; exit $rc; }`;
}

/** Runs steps in order in one round trip, stopping at the first that fails; nothing to do sends nothing. */
export async function runSteps(remote: Remote, steps: string[]): Promise<void> {
  if (steps.length > 0) await remote.run(steps.join(" && "));
}

/** How long a create waits for the command a dropped connection left running (about 10 s). */
const ORPHAN_WAIT_POLLS = 200;
const ORPHAN_WAIT_SLEEP = "0.05";
/** The exit code of the wait when the command is still running at the bound. */
const STILL_RUNNING = 75;

/**
 * Exits 0 once the remote shell `pid` runs no command any more: it exited, or
 * it sits idle (in a network partition its sshd may never notice the drop).
 * Each command runs in a subshell, a child of that shell; where the kernel
 * does not list children, the shell's exit is what is waited for.
 */
function waitForIdle(pid: number | undefined): string {
  if (!pid) return "true";
  const children = `/proc/${pid}/task/${pid}/children`;
  const busy = `{ if [ -r ${children} ]; then [ -n "$(cat ${children} 2>/dev/null)" ]; else kill -0 ${pid} 2>/dev/null; fi; }`;
  return `i=0; while ${busy}; do [ $i -ge ${ORPHAN_WAIT_POLLS} ] && exit ${STILL_RUNNING}; sleep ${ORPHAN_WAIT_SLEEP}; i=$((i+1)); done`;
}

/**
 * Runs a script that makes something on the host. When the channel closes
 * before the script reports (exit code null: the connection dropped or the
 * command timed out), it may have run in full, in part or not at all, and the
 * engine will not record the object. So wait until the orphaned command has
 * finished, run `undo` (which must tolerate "not found") over a fresh channel,
 * and fail: the host is left as it was, as after any failed create, and the
 * next `up` does not trip over an unrecorded object. If the command is still
 * running after the bound, nothing is undone and the error says so.
 */
export async function runUndoable(
  remote: Remote,
  script: string,
  undo: () => Promise<unknown>,
  what: string,
): Promise<CommandResult> {
  try {
    return await remote.run(script);
  } catch (e) {
    if (!(e instanceof CommandError) || e.code !== null) throw e;
    try {
      await remote.run(waitForIdle(e.shellPid));
      await undo();
    } catch (u) {
      const why =
        u instanceof CommandError && u.code === STILL_RUNNING
          ? "the command was still running on the host after about 10 s"
          : `undoing it failed too (${(u as Error).message})`;
      throw new Error(
        `${e.message}\nThe outcome is unknown, and ${why}: ` +
          `${what} may exist on ${remote.label} without being recorded. Remove it by hand, or set adopt: true.`,
      );
    }
    throw new Error(
      `${e.message}\nThe outcome was unknown, so ${what} was removed again; nothing is left half-made. Run up again.`,
    );
  }
}
