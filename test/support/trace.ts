import * as fs from "node:fs";

/**
 * The one reader of the PULUMI_NETNS_TRACE file that provider/transport/trace.ts
 * writes: one JSON line per event of a provider process (a remote command, an SSH
 * handshake, a shell opened, a connection error, a failed attempt to connect).
 */
export type TraceEvent = {
  /** When the event was written (ms since the epoch); a command's end. */
  t: number;
  /** The process that wrote it: one provider host per Pulumi operation. */
  pid: number;
  event: "command" | "handshake" | "shell-open" | "connection-error" | "dial-failed";
  /** `user@host:port` */
  host: string;
  /** A command's round trip or a handshake's duration. */
  ms?: number;
  /** A command's exit code; null when its shell died before reporting one. */
  code?: number | null;
  command?: string;
  message?: string;
  shells?: number;
  /** A failed dial: which attempt, and what happened. */
  attempt?: number;
  what?: string;
};

/** The events in `file` (none when it does not exist), from byte `offset` on: what was written since then. */
export function traceEvents(file: string, offset = 0): TraceEvent[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file)
    .subarray(offset)
    .toString("utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as TraceEvent);
}
