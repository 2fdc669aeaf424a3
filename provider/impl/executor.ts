import { explainFailure } from "../kernel/explain";
import { underLock } from "../kernel/hostLock";
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

/** How long a create waits for the command a dropped connection left running (about 10 s). */
const ORPHAN_WAIT_POLLS = 200;
const ORPHAN_WAIT_SLEEP = "0.05";
/** The exit code of the wait when the command is still running at the bound. */
const STILL_RUNNING = 75;

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
function stepText(s: Step, i: number, undo: readonly string[]): string {
  const capture = `s${i}=$( { ${s.command} ; }${s.onFailure === "ignore" ? " 2>/dev/null" : ""} )`;
  if (s.onFailure === "ignore") return `${capture} || true`;
  const undoing = s.onFailure === "undo" && undo.length > 0 ? ` { ${undoText(undo)} ; } >/dev/null 2>&1;` : "";
  return `${capture} || { rc=$?;${undoing} printf '\\n%s\\n' "${FAILED_STEP}${i}" >&2; exit $rc; }`;
}

/**
 * The error of a failed script, told as its failed step's: in terms of the
 * script's lookups (field, value, fix) when the failure is a known one, else
 * the command the user can read and run.
 */
function failedStep(e: CommandError, s: Script): CommandError {
  // A lone step that stops the script is sent as it is (see render): its error is already the step's.
  if (s.steps.length === 1 && s.steps[0].onFailure === "stop") return explained(e, s);
  const lines = e.stderr.replace(/\n+$/, "").split("\n");
  const last = lines[lines.length - 1] ?? "";
  const step = last.startsWith(FAILED_STEP) ? s.steps[Number(last.slice(FAILED_STEP.length))] : undefined;
  if (!step) return e;
  // The marker line starts with a newline of its own (the step's stderr may not end with one).
  const stderr = lines.slice(0, -1).join("\n").replace(/\n+$/, "");
  return explained(new CommandError(e.host, step.command, e.code, e.stdout, stderr, e.shellPid), s);
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

/** The script as shell text: a lone step that stops the script is sent as it is. */
function render(s: Script): string {
  if (s.lock) return underLock(s.lock, render({ ...s, lock: undefined }));
  if (s.steps.length === 1 && s.steps[0].onFailure === "stop") return s.steps[0].command;
  const outputs = s.steps.map((_, i) => `"$s${i}"`).join(" ");
  return [...s.steps.map((step, i) => stepText(step, i, s.undo)), `printf '%s\\n${SECTION}\\n' ${outputs}`].join("\n");
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
  /** Takes the host back when the outcome is unknown; by default the script's own undo. */
  undo?: () => Promise<unknown>;
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
 */
export async function runScript(remote: Remote, s: Script, making?: Making): Promise<string[]> {
  if (s.steps.length === 0) return [];
  let stdout: string;
  try {
    stdout = (await remote.run(render(s))).stdout;
  } catch (e) {
    if (e instanceof CommandError && e.code !== null) throw failedStep(e, s);
    if (!(e instanceof CommandError)) throw e;
    if (e.timeoutMs !== undefined) await stopTimedOut(remote, e.shellPid);
    if (!making) throw e;
    return undoUnknownOutcome(remote, e, making.undo ?? (() => remote.run(undoText(s.undo))), making);
  }
  if (s.steps.length === 1 && s.steps[0].onFailure === "stop") return [stdout.replace(/\n+$/, "")];
  const parts = stdout.split(`\n${SECTION}\n`);
  return s.steps.map((_, i) => parts[i] ?? "");
}

/** Runs read-only commands in one round trip, as best-effort steps: one that fails yields what it printed, usually "". */
export function readAll(remote: Remote, commands: string[]): Promise<string[]> {
  return runScript(remote, script(commands.map(bestEffort)));
}

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
 * Kills the remote shell `pid` and everything it started, so that a command
 * that ran out of time makes nothing after the error. Each process is stopped
 * before its children are listed, so none can start another behind our back.
 */
export function killTree(pid: number): string {
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`killTree: ${pid} is not the pid of a remote shell`);
  const stop = `pnetns_stop() { kill -STOP "$1" 2>/dev/null || return 0; for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do pnetns_stop "$c"; done; echo "$1"; }`;
  return `${stop}; pids=$(pnetns_stop ${pid}); [ -z "$pids" ] || kill -KILL $pids 2>/dev/null; true`;
}

/** Best effort: when it fails (the connection is gone too), waiting for the shell in undoUnknownOutcome says so. */
async function stopTimedOut(remote: Remote, pid: number | undefined): Promise<void> {
  if (!pid) return;
  await remote.run(killTree(pid)).catch(() => undefined);
}

/** Always throws: the create failed, and the error says whether the host was put back. */
async function undoUnknownOutcome(
  remote: Remote,
  e: CommandError,
  undo: () => Promise<unknown>,
  { what, leftover }: Making,
): Promise<never> {
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
        `${what} may exist on ${remote.label} without being recorded: ${leftover}.`,
    );
  }
  throw new Error(
    `${e.message}\nThe outcome was unknown, so ${what} was removed again; nothing is left half-made. Run up again.`,
  );
}
