import { at } from "./namespace";

/**
 * A reachability check as one command, and what it printed read back: ICMP
 * echo with `ping`, or a TCP connect with bash's `/dev/tcp` under `timeout`
 * (no tool beyond iputils, coreutils and bash on the host). The command always
 * exits 0: its first line says what the check saw, the rest is the check's own
 * output, so a failed check is an observation, never a failed step.
 */

export interface ProbeSpec {
  /** Where the check runs; undefined: the host's own namespace. */
  namespace?: string;
  target: string;
  /** Absent: ICMP echo; present: a TCP connect. */
  port?: number;
  timeoutMs: number;
}

export interface ProbeResult {
  reachable: boolean;
  /** Round trip (ICMP) or connect time (TCP), where reachable. */
  rttMs?: number;
  /** What was seen, in words: "reply in 0.05 ms", "no reply within 2000 ms", "Connection refused". */
  seen: string;
}

/** Starts the first line of the check's output. */
const MARK = "pulumi-netns-probe";
/** The exit code the TCP check gives when the connect itself failed. */
const CONNECT_FAILED = 7;
/** coreutils `timeout`'s exit code when the command ran out of time. */
const TIMED_OUT = 124;

// $1 the address, $2 the port (arguments, never part of the script text).
const TCP_CONNECT =
  's=$(date +%s%N); { exec 3<>"/dev/tcp/$1/$2"; } || exit 7; e=$(date +%s%N); echo "us=$(( (e - s) / 1000 ))"';

/** The check as one command line, every value quoted. */
export function probeCommand(spec: ProbeSpec): string {
  const ns = at(spec.namespace);
  const seconds = spec.timeoutMs / 1000;
  const check =
    spec.port === undefined
      ? // ping's -W is whole seconds on every iputils; `timeout` bounds the whole (name lookups included).
        ns.exec("timeout", seconds + 1, "ping", "-n", "-c", "1", "-W", Math.max(1, Math.ceil(seconds)), spec.target)
      : ns.exec("timeout", seconds, "bash", "-c", TCP_CONNECT, "probe", spec.target, spec.port);
  return `out=$(${check} 2>&1); rc=$?; printf '%s rc=%s\\n%s\\n' ${MARK} "$rc" "$out"`;
}

/** What the output of `probeCommand` says. */
export function parseProbe(text: string, spec: ProbeSpec): ProbeResult {
  const lines = text.split("\n");
  const first = lines.findIndex((l) => l.startsWith(`${MARK} rc=`));
  if (first < 0) return { reachable: false, seen: `no answer from the check (${oneLine(text) || "no output"})` };
  const rc = Number(lines[first].slice(`${MARK} rc=`.length));
  const out = lines
    .slice(first + 1)
    .map((l) => l.trim())
    .filter((l) => l !== "");
  if (rc === TIMED_OUT) return { reachable: false, seen: `no answer within ${spec.timeoutMs} ms` };
  return spec.port === undefined ? parsePing(rc, out, spec) : parseConnect(rc, out, spec);
}

function parsePing(rc: number, out: string[], spec: ProbeSpec): ProbeResult {
  const reply = out.map((l) => /\btime[=<]([\d.]+) ?ms\b/.exec(l)).find((m) => m !== null);
  if (rc === 0 && reply) {
    const rttMs = Number(reply[1]);
    return { reachable: true, rttMs, seen: `echo reply in ${rttMs} ms` };
  }
  // An ICMP error from a router ("From 10.0.0.1 icmp_seq=1 Destination Host Unreachable") or ping's own.
  const error = out.find((l) => /^From |unreachable|cannot|unknown|invalid|not permitted|denied/i.test(l));
  if (rc === 1) return { reachable: false, seen: error ? oneLine(error) : `no echo reply within ${spec.timeoutMs} ms` };
  return { reachable: false, seen: oneLine(error ?? out[out.length - 1] ?? `ping exited with ${rc}`) };
}

function parseConnect(rc: number, out: string[], spec: ProbeSpec): ProbeResult {
  const us = out.map((l) => /^us=(\d+)$/.exec(l)).find((m) => m !== null);
  if (rc === 0 && us) {
    const rttMs = Math.round(Number(us[1]) / 10) / 100;
    return { reachable: true, rttMs, seen: `TCP connection to port ${spec.port} accepted in ${rttMs} ms` };
  }
  const last = out[out.length - 1] ?? "";
  if (rc === CONNECT_FAILED) {
    // bash: "probe: line 1: /dev/tcp/10.0.0.2/80: Connection refused" (and "probe: connect: ..." before it).
    const why = /: ([^:]+)$/.exec(last)?.[1] ?? last;
    return { reachable: false, seen: `TCP connect to port ${spec.port}: ${oneLine(why)}` };
  }
  return { reachable: false, seen: oneLine(last || `the TCP check exited with ${rc}`) };
}

/** A line of the host's output, safe and short in an error message. */
function oneLine(text: string): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > 160 ? `${line.slice(0, 157)}...` : line;
}
