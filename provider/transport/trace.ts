import { appendFileSync } from "node:fs";

/**
 * Appends one JSON line per event to $PULUMI_NETNS_TRACE (commands, handshakes,
 * connection errors) and, with PULUMI_NETNS_DEBUG=1, prints it on stderr.
 * Tests and benchmarks count what was sent from this file. Commands never
 * carry secrets: credentials travel only in the SSH handshake.
 */
export function trace(event: Record<string, unknown>): void {
  const file = process.env.PULUMI_NETNS_TRACE;
  const debug = process.env.PULUMI_NETNS_DEBUG === "1";
  if (!file && !debug) return;
  const line = JSON.stringify({ t: Date.now(), pid: process.pid, ...event });
  if (file) appendFileSync(file, `${line}\n`);
  if (debug) process.stderr.write(`[pulumi-netns] ${line}\n`);
}
