/**
 * Hosts whose dial retries ran out in this process, with the error they ended
 * in. The provider host process lives for one engine operation and serves
 * every resource of it: once one resource has waited through the whole retry
 * cycle for a host that does not answer, every later operation on that host
 * fails at once with the same error, instead of waiting through the cycle
 * again (a refresh of a stack on a dead host took a cycle per resource).
 */
const gaveUp = new Map<string, string>();

/** Said after the first error, for every operation that did not dial again. */
export const ALREADY_FAILED = "(This host already failed in this operation: not dialed again.)";

/** The error the dial to `path` (hops, "host:port > host:port") ended in, if it ran out of retries. */
export function gaveUpOn(path: string): string | undefined {
  return gaveUp.get(path);
}

export function recordGaveUp(path: string, message: string): void {
  gaveUp.set(path, message);
}

/** Tests and tools that start from nothing (closeAllRemotes). */
export function forgetGaveUp(): void {
  gaveUp.clear();
}
