import { randomBytes } from "node:crypto";
import { DEFAULT_COMMAND_TIMEOUT } from "../connection";
import { explainFailure } from "../kernel/explain";
import { lockWaitSeconds, underLock } from "../kernel/hostLock";
import { bestEffort, type Script, type Step, script } from "../kernel/script";
import { CommandError, type Remote } from "../transport";

/**
 * Runs scripts (../kernel/script) on a host: the one place that turns them
 * into shell text, splits their output per step, runs their undo, and deals
 * with a create whose connection dropped.
 */

/** Separates the outputs of a script's steps; it is never valid JSON or iptables output. */
const SECTION = "--pulumi-netns-section--";

/** Starts the stderr line that names a script's failed step. */
const FAILED_STEP = "--pulumi-netns-failed-step-- ";

/** Starts the first stdout line of everything the executor sends: the shell's start time, its identity. */
const SHELL_LINE = "--pulumi-netns-shell-- ";

/**
 * Prints SHELL_LINE and the start time (field 22 of /proc/PID/stat) of the
 * long-lived remote shell ($$) that runs the command, with builtins only. A
 * command that times out has printed it already, so the kill and the wait
 * after it act on that pid only while it is still the same process, never on
 * whatever reuses the pid later.
 */
const IDENTIFY = `read -r pnetns_self 2>/dev/null </proc/$$/stat; set -- \${pnetns_self##*) }; printf '%s\\n' "${SHELL_LINE}\${20}"`;

/** How long a create waits for the command a dropped connection left running (about 10 s). */
const ORPHAN_WAIT_POLLS = 200;
const ORPHAN_WAIT_SLEEP = "0.05";
/** The exit code of the wait when the command is still running at the bound. */
const STILL_RUNNING = 75;
/** The exit code of the ownership check when the make step of a creation is not known to have succeeded. */
const NOT_OURS = 76;

/**
 * The least time each cleanup command (kill, wait, undo) gets, whatever the
 * connection's commandTimeout: a short commandTimeout must not cut its own
 * cleanup short.
 */
const CLEANUP_MIN_MS = 30_000;

/** Runs every undo command, whatever each one's outcome. */
function undoText(undo: readonly string[]): string {
  return undo.map((u) => `{ ${u} ; }`).join("; ");
}

// Each step's output is kept in a variable and printed at the end: a script
// writes nothing while its steps run, so a dropped connection (whose closed
// stdout would kill the shell at its next write) cannot cut it short between
// two steps. A step runs in a subshell of its own, as every script does.
// A step that stops the script says which one it was (the last line of
// stderr), so that the error names that step's command, not the whole script.
function stepText(s: Step, i: number, undo: readonly string[], clear: string): string {
  const capture = `s${i}=$( { ${s.command} ; }${s.onFailure === "ignore" ? " 2>/dev/null" : ""} )`;
  if (s.onFailure === "ignore") return `${capture} || true`;
  const undoing = s.onFailure === "undo" && undo.length > 0 ? ` { ${undoText(undo)} ; } >/dev/null 2>&1;` : "";
  return `${capture} || { rc=$?;${undoing}${clear} printf '\\n%s\\n' "${FAILED_STEP}${i}" >&2; exit $rc; }`;
}

/** Whether the script is sent as its lone step's command (after IDENTIFY). */
function sentAsIs(s: Script, mark: string | undefined): boolean {
  return s.steps.length === 1 && s.steps[0].onFailure === "stop" && mark === undefined;
}

/** What a command printed, without the SHELL_LINE that IDENTIFY put first. */
function withoutIdentity(stdout: string): string {
  if (!stdout.startsWith(SHELL_LINE)) return stdout;
  const nl = stdout.indexOf("\n");
  return nl < 0 ? "" : stdout.slice(nl + 1);
}

/** The start time of the shell that ran a command, from what it printed first; undefined when it did not get that far. */
export function shellStart(stdout: string): string | undefined {
  if (!stdout.startsWith(SHELL_LINE)) return undefined;
  const start = stdout.slice(SHELL_LINE.length).split("\n", 1)[0];
  return /^\d+$/.test(start) ? start : undefined;
}

/**
 * The error of a failed script, told as its failed step's: in terms of the
 * script's lookups (field, value, fix) when the failure is a known one, else
 * the command the user can read and run.
 */
function failedStep(e: CommandError, s: Script, asIs: boolean): CommandError {
  const stdout = withoutIdentity(e.stdout);
  // A lone step that stops the script is sent as it is (see render): its error is already the step's.
  if (asIs) return explained(new CommandError(e.host, s.steps[0].command, e.code, stdout, e.stderr, e.shellPid), s);
  const lines = e.stderr.replace(/\n+$/, "").split("\n");
  const last = lines[lines.length - 1] ?? "";
  const step = last.startsWith(FAILED_STEP) ? s.steps[Number(last.slice(FAILED_STEP.length))] : undefined;
  if (!step) return new CommandError(e.host, stepsOf(s), e.code, stdout, e.stderr, e.shellPid);
  // The marker line starts with a newline of its own (the step's stderr may not end with one).
  const stderr = lines.slice(0, -1).join("\n").replace(/\n+$/, "");
  return explained(new CommandError(e.host, step.command, e.code, stdout, stderr, e.shellPid), s);
}

/** The script's steps' own commands, for an error that cannot name one: never the shell text around them. */
function stepsOf(s: Script): string {
  return s.steps.map((step) => step.command).join("; ");
}

/** The step's error with its message told in terms of the script's lookups, when explain knows the failure. */
function explained(e: CommandError, s: Script): CommandError {
  const told = explainFailure({ host: e.host, command: e.command, stderr: e.stderr }, s.lookups ?? []);
  if (!told) return e;
  // A fresh error: V8 writes the first line of e.stack from the message when it is first read.
  const error = new CommandError(e.host, e.command, e.code, e.stdout, e.stderr, e.shellPid);
  error.message = told;
  return error;
}

/** The file a creation leaves once its make step succeeded (see render); /run is root's. */
function markFile(nonce: string): string {
  return `/run/pulumi-netns-made.${nonce}`;
}

/**
 * The script as shell text, after IDENTIFY: a lone step that stops the script
 * is sent as it is. With `mark` (a creation whose outcome may become unknown),
 * the file `mark` exists from the moment its make step succeeded until the
 * client has read the script's output (it removes the file then), or the
 * script has undone its own failure: what the undo after an unknown outcome checks before it removes
 * anything, so that an object with that name that was not made by this script
 * (the user's own, or one whose make step was cut short) is never removed.
 */
/** The time each command of `remote` may run, in seconds. */
export const commandTimeoutOf = (remote: Remote) => remote.commandTimeoutSeconds ?? DEFAULT_COMMAND_TIMEOUT;

function render(s: Script, commandTimeoutSeconds: number, mark?: string): string {
  // IDENTIFY runs in the shell itself (its pid is the one killTree checks), outside the lock's sh -c.
  const body = renderBody(s, mark);
  return `${IDENTIFY}\n${s.lock ? underLock(s.lock, body, lockWaitSeconds(commandTimeoutSeconds)) : body}`;
}

/** The script's own text, without IDENTIFY. With `lock`, it runs in one `sh -c` under flock (./hostLock). */
function renderBody(s: Script, mark: string | undefined): string {
  if (sentAsIs(s, mark)) return s.guard ? `${s.guard}\n${s.steps[0].command}` : s.steps[0].command;
  const outputs = s.steps.map((_, i) => `"$s${i}"`).join(" ");
  const clear = mark ? ` rm -f ${mark};` : "";
  const lines: string[] = s.guard ? [s.guard] : [];
  s.steps.forEach((step, i) => {
    lines.push(stepText(step, i, s.undo, i > 0 ? clear : ""));
    if (i === 0 && mark) lines.push(`{ true >${mark} ; } 2>/dev/null || true`);
  });
  // The mark stays after a success: only the client, once it has read this output, removes it (runScript).
  // A script can run to its end and write its output while sshd is being cut, so the client never sees it.
  lines.push(`printf '%s\\n${SECTION}\\n' ${outputs}`);
  return lines.join("\n");
}

/** What a create tells the executor, so that a dropped connection leaves nothing half-made. */
export interface Making {
  /** What the script makes, for messages: `namespace "red"`. */
  what: string;
  /**
   * What the user can do when it may have been left on the host unrecorded,
   * for this kind of object: "remove it by hand (`ip netns delete red`) or set adopt: true".
   */
  leftover: string;
  /**
   * Takes the host back when the outcome is unknown; by default the script's
   * own undo. It gets the remote to use: one whose commands have the cleanup
   * bound and are killed when they run out of it.
   */
  undo?: (remote: Remote) => Promise<unknown>;
}

/**
 * Runs a script in one round trip and returns each step's output (without its
 * trailing newlines), in order; a script without steps sends nothing. A step
 * that fails stops it (after its undo, for an undone step), and the command
 * error reaches the caller.
 *
 * With `making`, the script makes something on the host. When the channel
 * closes before the script reports (exit code null: the connection dropped or
 * the command timed out), it may have run in full, in part or not at all, and
 * the engine will not record the object. So wait until the orphaned command
 * has finished (a command that ran out of time is killed first: it must not
 * keep making things after the error), run the undo (which must tolerate "not
 * found") over a fresh channel, and fail: the host is left as it was, as after any failed create,
 * and the next `up` does not trip over an unrecorded object. If the command is
 * still running after the bound, nothing is undone and the error says so.
 * For a creation (../kernel/script `creation`), the undo runs only when its
 * make step is known to have succeeded: an object of that name may be
 * someone else's, and is then left, and the error says so. The cleanup
 * commands get max(commandTimeout, CLEANUP_MIN_MS) each, and none of them is
 * left running after the error.
 */
export async function runScript(remote: Remote, s: Script, making?: Making): Promise<string[]> {
  if (s.steps.length === 0) return [];
  const mark = making && s.makes ? markFile(randomBytes(8).toString("hex")) : undefined;
  const asIs = sentAsIs(s, mark);
  let stdout: string;
  try {
    stdout = withoutIdentity((await remote.run(render(s, commandTimeoutOf(remote), mark))).stdout);
  } catch (e) {
    if (!(e instanceof CommandError)) throw e;
    if (e.code !== null) throw failedStep(e, s, asIs);
    // The step in flight is unknown: the error names the steps' own commands, never the shell text around them.
    const unfinished = new CommandError(
      e.host,
      stepsOf(s),
      null,
      withoutIdentity(e.stdout),
      e.stderr,
      e.shellPid,
      e.timeoutMs,
    );
    const bound = Math.max(e.timeoutMs ?? 0, CLEANUP_MIN_MS);
    const start = shellStart(e.stdout);
    let killed = "";
    if (e.timeoutMs !== undefined) killed = await stopTimedOut(remote, e.shellPid, start, bound);
    if (!making) {
      if (killed) unfinished.message += `\n${killed}`;
      throw unfinished;
    }
    const cleanup = boundRemote(remote, bound);
    const undo = making.undo ?? ((r: Remote) => r.run(undoText(s.undo)));
    return undoUnknownOutcome(cleanup, unfinished, { ...making, undo }, start, mark, killed);
  }
  // The outcome is known now: the made-mark has served (a file left by a drop here is harmless).
  if (mark) await remote.run(`rm -f ${mark}`, { allowFailure: true }).catch(() => undefined);
  if (asIs) return [stdout.replace(/\n+$/, "")];
  const parts = stdout.split(`\n${SECTION}\n`);
  return s.steps.map((_, i) => parts[i] ?? "");
}

/** Runs read-only commands in one round trip, as best-effort steps: one that fails yields what it printed, usually "". */
export function readAll(remote: Remote, commands: string[]): Promise<string[]> {
  return runScript(remote, script(commands.map(bestEffort)));
}

/**
 * A remote for cleanup: each command gets `ms`, and one that runs out of it
 * is killed before its error is thrown, so that it cannot act after the
 * error that reports it.
 */
function boundRemote(remote: Remote, ms: number): Remote {
  return {
    label: remote.label,
    hostKeys: () => remote.hostKeys(),
    async run(text, options = {}) {
      const own = !text.startsWith(IDENTIFY);
      try {
        const r = await remote.run(own ? `${IDENTIFY}\n${text}` : text, { ...options, timeoutMs: ms });
        return own ? { ...r, stdout: withoutIdentity(r.stdout) } : r;
      } catch (e) {
        if (!(e instanceof CommandError) || e.code !== null) throw e;
        const killed =
          e.timeoutMs !== undefined ? await stopTimedOut(remote, e.shellPid, shellStart(e.stdout), ms) : "";
        const command = own ? text : e.command;
        const error = new CommandError(
          e.host,
          command,
          null,
          withoutIdentity(e.stdout),
          e.stderr,
          e.shellPid,
          e.timeoutMs,
        );
        if (killed) error.message += `\n${killed}`;
        throw error;
      }
    },
  };
}

/** Succeeds when the remote shell `pid` is still the process that started at `start` (clock ticks after boot). */
const IS_SAME = `pnetns_is() { pnetns_w=$2; read -r pnetns_s 2>/dev/null </proc/"$1"/stat || return 1; set -- \${pnetns_s##*) }; [ "\${20}" = "$pnetns_w" ]; }`;

/**
 * Exits 0 once the remote shell `pid` runs no command any more: it exited (or
 * its pid is another process's now), or it sits idle (in a network partition
 * its sshd may never notice the drop). Each command runs in a subshell, a
 * child of that shell; where the kernel does not list children, the shell's
 * exit is what is waited for. Without the shell's start time, its pid is
 * trusted.
 */
function waitForIdle(pid: number | undefined, start: string | undefined): string {
  if (!pid) return "true";
  const children = `/proc/${pid}/task/${pid}/children`;
  const same = start ? `pnetns_is ${pid} ${start} && ` : "";
  const busy = `{ ${same}if [ -r ${children} ]; then [ -n "$(cat ${children} 2>/dev/null)" ]; else kill -0 ${pid} 2>/dev/null; fi; }`;
  const wait = `i=0; while ${busy}; do [ $i -ge ${ORPHAN_WAIT_POLLS} ] && exit ${STILL_RUNNING}; sleep ${ORPHAN_WAIT_SLEEP}; i=$((i+1)); done`;
  return start ? `${IS_SAME}; ${wait}` : wait;
}

/**
 * Kills the remote shell `pid` and everything it started, so that a command
 * that ran out of time makes nothing after the error; but only while `pid` is
 * still the shell that started at `start` (field 22 of /proc/PID/stat, as
 * IDENTIFY printed it): a pid reused by another process after the shell
 * exited is left alone. The check is made again once the process is stopped,
 * so that a pid reused between the check and the stop is let go on. Each
 * process is stopped before its children are listed, so none can start
 * another behind our back. Prints "killed" or "not-ours".
 */
export function killTree(pid: number, start: string): string {
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`killTree: ${pid} is not the pid of a remote shell`);
  if (!/^\d+$/.test(start)) throw new Error(`killTree: ${JSON.stringify(start)} is not a process start time`);
  const stop = `pnetns_stop() { kill -STOP "$1" 2>/dev/null || return 0; for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do pnetns_stop "$c"; done; echo "$1"; }`;
  const kill = `pids=$(pnetns_stop ${pid}); [ -z "$pids" ] || kill -KILL $pids 2>/dev/null; echo killed`;
  return (
    `${IS_SAME}; ${stop}; ` +
    `if pnetns_is ${pid} ${start} && kill -STOP ${pid} 2>/dev/null; then ` +
    `if pnetns_is ${pid} ${start}; then ${kill}; else kill -CONT ${pid} 2>/dev/null; echo not-ours; fi; ` +
    "else echo not-ours; fi"
  );
}

/**
 * Kills a timed-out command's shell; returns "" when it is dead, else what the
 * error should add (the command may still be running).
 */
async function stopTimedOut(
  remote: Remote,
  pid: number | undefined,
  start: string | undefined,
  ms: number,
): Promise<string> {
  if (!pid || !start)
    return "Its shell could not be identified on the host, so it was not killed: it may still be running.";
  try {
    await remote.run(killTree(pid, start), { timeoutMs: ms });
    return "";
  } catch (k) {
    return `Killing it failed (${(k as Error).message.split("\n")[0]}): it may still be running.`;
  }
}

/** Always throws: the create failed, and the error says whether the host was put back. */
async function undoUnknownOutcome(
  cleanup: Remote,
  e: CommandError,
  { what, leftover, undo }: Making & { undo: (remote: Remote) => Promise<unknown> },
  start: string | undefined,
  mark: string | undefined,
  killed: string,
): Promise<never> {
  const note = killed ? `\n${killed}` : "";
  let ours = true;
  try {
    await cleanup.run(waitForIdle(e.shellPid, start));
    if (mark) {
      const check = await cleanup.run(`if [ -e ${mark} ]; then rm -f ${mark}; else exit ${NOT_OURS}; fi`, {
        allowFailure: true,
      });
      ours = check.code === 0;
    }
    if (ours) await undo(cleanup);
  } catch (u) {
    const why =
      u instanceof CommandError && u.code === STILL_RUNNING
        ? "the command was still running on the host after about 10 s"
        : `undoing it failed too (${(u as Error).message})`;
    throw new Error(
      `${e.message}${note}\nThe outcome is unknown, and ${why}: ` +
        `${what} may exist on ${cleanup.label} without being recorded: ${leftover}.`,
    );
  }
  if (!ours)
    throw new Error(
      `${e.message}${note}\nThe outcome is unknown, and ${what} was not removed: making it had not been seen to succeed, ` +
        `so one on ${cleanup.label} may be someone else's (it existed before) or half-made. ` +
        `Check it; if it is not yours to keep, ${leftover}.`,
    );
  throw new Error(
    `${e.message}${note}\nThe outcome was unknown, so ${what} was removed again; nothing is left half-made. Run up again.`,
  );
}
