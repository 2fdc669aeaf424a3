import { appendFileSync } from "node:fs";

/** Trace files that could not be written: warned about once, then skipped. */
const unwritable = new Set<string>();

/**
 * Appends one JSON line per event to $PULUMI_NETNS_TRACE (commands, handshakes,
 * connection errors) and, with PULUMI_NETNS_DEBUG=1, prints it on stderr.
 * Tests and benchmarks count what was sent from this file. Commands never
 * carry secrets: credentials travel only in the SSH handshake. A file that
 * cannot be written costs the event, never the connection or command it is
 * about: trace is called from inside the transport's handlers.
 */
export function trace(event: Record<string, unknown>): void {
  const file = process.env.PULUMI_NETNS_TRACE;
  const debug = process.env.PULUMI_NETNS_DEBUG === "1";
  if (!file && !debug) return;
  const line = JSON.stringify({ t: Date.now(), pid: process.pid, ...event });
  if (file && !unwritable.has(file)) {
    try {
      appendFileSync(file, `${line}\n`);
    } catch (e) {
      unwritable.add(file);
      process.stderr.write(
        `[pulumi-netns] cannot write the trace to ${file} (PULUMI_NETNS_TRACE): ${(e as Error).message}; tracing to it stops\n`,
      );
    }
  }
  if (debug) process.stderr.write(`[pulumi-netns] ${line}\n`);
}
