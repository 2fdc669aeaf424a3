import {
  CHANGED,
  guarded,
  LOCK_FILE,
  LOCK_TIMEOUT,
  LOCK_WAIT_SECONDS,
  lockWaitSeconds,
  ownerDigest,
} from "../kernel/hostLock";
import type { Script } from "../kernel/script";
import { CommandError, type Remote } from "../transport";
import { commandTimeoutOf, type Making, readAll, runScript } from "./executor";

/**
 * A check that refuses a commit from what the host has (impl/collisions):
 * run on the same read the commit is planned from, and guarded by the same
 * digest, so that no other commit can slip in between the check and the change.
 */
export interface HostCheck {
  /** Read commands (run in the commit's namespace) whose outputs `refuse` judges. */
  reads: string[];
  /** Shell text run in the commit's namespace whose output changes whenever what `refuse` judges does. */
  watch: string;
  /** Throws, naming both sides, when the host has something the commit collides with. */
  refuse(outputs: string[]): void;
}

/** How often a commit is planned again after another owner's commit changed the host in between. */
const COMMIT_ATTEMPTS = 20;

export interface Plan<T> {
  script: Script;
  making?: Making;
  result: T;
}

/**
 * Reads the owner digest (covering what the checks judge), then `reads` and
 * the checks' reads; runs the checks, plans, and runs the plan under the host lock
 * if the digest is unchanged (kernel/hostLock); else reads, checks and plans
 * again. Returns the plan's result and the script's step outputs.
 */
export async function lockedCommit<T>(
  remote: Remote,
  ns: string | undefined,
  reads: string[],
  plan: (outputs: string[]) => Plan<T>,
  checks: HostCheck[] = [],
): Promise<{ result: T; outputs: string[] }> {
  const watched = checks.map((c) => c.watch);
  const checkReads = checks.flatMap((c) => c.reads);
  for (let attempt = 1; ; attempt++) {
    // The digest is read first: another owner's commit landing between it and the plan's reads then
    // fails the guard. Read last, such a commit would match it while the plan was made without it, and
    // two leavers could each see the other and neither put the host back.
    const [digest, ...outputs] = await readAll(remote, [ownerDigest(ns, watched), ...reads, ...checkReads]);
    let at = reads.length;
    for (const c of checks) {
      c.refuse(outputs.slice(at, at + c.reads.length));
      at += c.reads.length;
    }
    const { script: s, making, result } = plan(outputs.slice(0, reads.length));
    try {
      const stepOutputs = await runScript(remote, guarded(s, ns, digest, watched), making);
      return { result, outputs: stepOutputs };
    } catch (e) {
      if (e instanceof CommandError && e.code === CHANGED && attempt < COMMIT_ATTEMPTS) continue;
      if (e instanceof CommandError && e.code === CHANGED) throw new Error(keptChanging(remote));
      if (e instanceof CommandError && e.code === LOCK_TIMEOUT) throw new Error(lockHeld(remote));
      throw e;
    }
  }
}

/** Every attempt's guard found the host changed since its read: nothing ran, and the steps are not the story. */
function keptChanging(remote: Remote): string {
  return (
    `the addresses, routes or iptables rules on ${remote.label} changed between reading them and committing, ` +
    `${COMMIT_ATTEMPTS} times in a row; nothing was changed. Something on the host keeps rewriting them ` +
    "(another pulumi-netns operation, a CNI plugin, a firewall manager): run up again once it is quiet."
  );
}

/** The lock wait ran out: how long it waited, and, when connection.commandTimeout cut it short, that too. */
function lockHeld(remote: Remote): string {
  const waited = lockWaitSeconds(commandTimeoutOf(remote));
  const cut =
    waited < LOCK_WAIT_SECONDS
      ? ` (the wait is kept within connection.commandTimeout, ${commandTimeoutOf(remote)} s: raise it to wait up to ${LOCK_WAIT_SECONDS} s)`
      : "";
  return (
    `another pulumi-netns operation on ${remote.label} held ${LOCK_FILE} for ${waited} s${cut}; nothing was changed. ` +
    `Run up again; if it persists, see which process holds it (fuser -v ${LOCK_FILE}).`
  );
}
