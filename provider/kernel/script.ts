/**
 * What this package sends to a host, in five words with one meaning each,
 * across provider/:
 *
 * - **command**: one shell command line (a string) whose every word was
 *   validated and is quoted: built by `command()` (../shell) or by a
 *   `Namespace` (./namespace). A command may test, loop or redirect inside
 *   itself; it never strings other commands' failures together.
 * - **ip arguments** (`IpArgs`): the words of one `ip` command after
 *   `ip [-n NS]`. Kernel modules spell changes this way, so that a namespace
 *   can run several of them as one `ip -batch` process.
 * - **step**: one command of a script. Steps run in order, the first that
 *   fails stops the script, and the script fails with its exit code. What a
 *   step prints comes back as that step's output.
 * - **best-effort step**: a step whose failure is ignored (its stderr too): it
 *   cannot stop the script, and its output is whatever it printed, usually
 *   nothing. Reads run this way; so does a cleanup after a failure.
 * - **undo**: commands that take the host back to before a script, each
 *   tolerating what is already gone. They run when an undone step fails, and
 *   after a dropped connection left the outcome of a create unknown.
 *
 * A **script** is steps plus their undo: the value below. Only the executor
 * (../impl/executor) turns a script into shell text and runs it.
 */

import type { Lookup } from "./explain";

/** The words of one `ip` command after `ip [-n NS]`. */
export type IpArgs = Array<string | number>;

/** What a failing step does to the script. */
export type OnFailure = "stop" | "undo" | "ignore";

export interface Step {
  readonly command: string;
  /** stop: the script fails; undo: the undo runs first; ignore: the script goes on (best effort). */
  readonly onFailure: OnFailure;
}

export interface Script {
  readonly steps: readonly Step[];
  readonly undo: readonly string[];
  /** The resource's fields its commands look up, so that a failure is told in their terms (./explain). */
  readonly lookups?: readonly Lookup[];
  /** A file on the host whose flock the whole script holds (see ./hostLock). */
  readonly lock?: string;
  /**
   * A command run first, under the lock: when it fails, the script exits with
   * its code before any step (./hostLock's check that the host is as planned).
   */
  readonly guard?: string;
  /**
   * Set by `creation`: the first step makes the object, and only once it has
   * succeeded is an object of that name ours to undo.
   */
  readonly makes?: boolean;
}

/** The script, its failures told in terms of these fields. */
export function lookingUp(s: Script, lookups: readonly Lookup[]): Script {
  return { ...s, lookups };
}

/** A step that stops the script when it fails. */
export const step = (command: string): Step => ({ command, onFailure: "stop" });

/** A step whose failure is ignored. */
export const bestEffort = (command: string): Step => ({ command, onFailure: "ignore" });

export function script(steps: Step[], undo: string[] = []): Script {
  return { steps, undo };
}

/** Commands run in order, stopping at the first that fails. */
export function sequence(...commands: string[]): Script {
  return script(commands.map(step));
}

/** Commands run in order; if one fails, `undo` runs and the host is as it was. */
export function allOrNothing(commands: string[], undo: string[]): Script {
  return script(
    commands.map((command) => ({ command, onFailure: "undo" })),
    undo,
  );
}

/**
 * Makes an object with `make`, then runs `then`; if one of those fails, `undo`
 * removes the object again. When `make` itself fails, nothing was made (its
 * name may belong to something that is not ours), so nothing is undone; when
 * its outcome is unknown (a dropped connection, a timeout), the executor
 * undoes only if it is known to have succeeded.
 */
export function creation(make: string, then: string[], undo: string[]): Script {
  return { ...script([step(make), ...allOrNothing(then, undo).steps], undo), makes: true };
}
