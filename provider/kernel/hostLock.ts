import { quote } from "../shell";
import { at } from "./namespace";
import { OWNER_PREFIX } from "./ownership";
import type { Script } from "./script";
import { printRecords, SYSCTLS } from "./sysctl";

/**
 * Every read-modify-write of owner rules and sysctls (create, repair and
 * delete of a rule set) commits under one host-wide `flock` on this file, and
 * only if what its plan was made from is unchanged: the tables, the owner
 * comments and the sysctls, as one checksum (`ownerDigest`). Another owner's
 * commit in between changes the checksum, the guard exits `CHANGED`, and the
 * caller reads and plans again. So two stacks on one host never both record
 * (or put back) a sysctl from the same read. flock is util-linux's.
 */
export const LOCK_FILE = "/run/pulumi-netns.lock";
export const LOCK_WAIT_SECONDS = 60;
/** What a locked script keeps of its command's time for its own work, at least. */
const WORK_MARGIN_SECONDS = 10;
/** The guard's exit code: the host's owner state changed since the plan's read. */
export const CHANGED = 73;
/** flock's exit code when another owner held the lock for the whole wait (`lockWaitSeconds`). */
export const LOCK_TIMEOUT = 74;

const OWNER_PATTERN = `${OWNER_PREFIX}[a-z]*/[0-9a-f]*/[a-z0-9=,]*`;

/**
 * Prints a checksum of the tables, owner comments and sysctls of a namespace
 * (read it with readAll), and of what `watched` print: shell text run in that
 * namespace, for the collision checks of a commit (what they judge is part of
 * what the plan was made from).
 */
export function ownerDigest(ns: string | undefined, watched: readonly string[] = []): string {
  const sysctls = Object.values(SYSCTLS).join(" ");
  const more = watched.map((w) => ` { ${w} ; };`).join("");
  const owners = `grep -o -e '^[*][a-z]*' -e '${OWNER_PATTERN}'`;
  // The IPv6 tables' lines marked "6" (IPv6 owners' claims live there); a host without ip6tables adds nothing.
  const ipv6 = `ip6tables-save 2>/dev/null | ${owners} | sed 's/^/6/'`;
  // The sysctl records too (sysctl.ts): whether one exists decides who writes it.
  const body = `{ { iptables-save 2>/dev/null | ${owners}; ${ipv6}; } | sort; cat ${sysctls}; ${printRecords()};${more} } | cksum`;
  return at(ns).exec("sh", "-c", body);
}

/** The command that fails with CHANGED unless the digest (of the same `watched`) is still `seen` (what `ownerDigest` printed earlier). */
export function unchangedSince(ns: string | undefined, seen: string, watched: readonly string[] = []): string {
  const digest = seen.trim();
  if (!/^(\d+ \d+)?$/.test(digest)) throw new Error(`not an owner digest: ${JSON.stringify(seen)}`);
  return `[ "$(${ownerDigest(ns, watched)} 2>/dev/null)" = ${quote(digest)} ] || exit ${CHANGED}`;
}

/**
 * `s` run under the host lock, after the guard `unchangedSince` (before its
 * first step: a creation's first step stays its make step).
 */
export function guarded(s: Script, ns: string | undefined, seen: string, watched: readonly string[] = []): Script {
  return { ...s, guard: unchangedSince(ns, seen, watched), lock: LOCK_FILE };
}

/**
 * How long a script waits for the lock when its command may run for
 * `commandTimeoutSeconds` (connection.commandTimeout): LOCK_WAIT_SECONDS, but
 * never so long that the command's timeout fires first (then the error would
 * say the command was slow, not that another operation held the lock): it
 * leaves WORK_MARGIN_SECONDS, or half of a short timeout, for the work.
 */
export function lockWaitSeconds(commandTimeoutSeconds: number): number {
  const fits = Math.max(commandTimeoutSeconds - WORK_MARGIN_SECONDS, commandTimeoutSeconds / 2);
  return Math.min(LOCK_WAIT_SECONDS, Math.round(fits * 10) / 10);
}

/** Shell text that runs `text` while holding the lock on `file`, waiting at most `waitSeconds` for it. */
export function underLock(file: string, text: string, waitSeconds: number): string {
  return `flock -w ${waitSeconds} -E ${LOCK_TIMEOUT} ${quote(file)} sh -c ${quote(text)}`;
}
