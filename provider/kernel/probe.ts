import { at } from "./namespace";

/**
 * A reachability check as one command, and what it printed read back: ICMP
 * echo with `ping`, or a TCP connect with bash's `/dev/tcp` under `timeout`
 * (no tool beyond iputils, coreutils and bash on the host). The command always
 * exits 0: its first line says what the check saw, the rest is the check's own
 * output, so a failed check is an observation, never a failed step.
 *
 * A check that could not run (no such namespace, a tool missing, not
 * permitted) saw nothing: it is told apart from "unreachable", never taken
 * for it, else `expect: "unreachable"` would pass without checking anything.
 */

export interface ProbeSpec {
  /** Where the check runs; undefined: the host's own namespace. */
  namespace?: string;
  target: string;
  /** Absent: ICMP echo; present: a TCP connect. */
  port?: number;
  timeoutMs: number;
}

/** What the check saw. */
export interface Observation {
  reachable: boolean;
  /** Round trip (ICMP) or connect time (TCP), where reachable. */
  rttMs?: number;
  /** What was seen, in words: "reply in 0.05 ms", "no reply within 2000 ms", "Connection refused". */
  seen: string;
}

/** The check did not run, so it saw nothing: what was missing, and the fix. */
export interface CouldNotCheck {
  couldNotCheck: string;
  fix: string;
}

export type ProbeResult = Observation | CouldNotCheck;

export const couldNotCheck = (r: ProbeResult): r is CouldNotCheck => "couldNotCheck" in r;

/** Starts the first line of the check's output. */
const MARK = "pulumi-netns-probe";
/** The exit code the TCP check gives when the connect itself failed. */
const CONNECT_FAILED = 7;
/** coreutils `timeout`'s exit code when the command ran out of time. */
const TIMED_OUT = 124;

// $1 the address, $2 the port (arguments, never part of the script text).
const TCP_CONNECT =
  's=$(date +%s%N); { exec 3<>"/dev/tcp/$1/$2"; } || exit 7; e=$(date +%s%N); echo "us=$(( (e - s) / 1000 ))"';

/** What a check needs on the host, besides its namespace. */
function toolsFor(spec: ProbeSpec): string[] {
  return [...(spec.namespace ? ["ip"] : []), "timeout", ...(spec.port === undefined ? ["ping"] : ["bash", "date"])];
}

/** Where each tool comes from, for the fix. */
const PACKAGE_OF: Record<string, string> = {
  ip: "iproute2",
  timeout: "coreutils",
  date: "coreutils",
  ping: "iputils-ping (iputils)",
  bash: "bash",
};

/**
 * The check as one command line, every value quoted. First it looks for what
 * the check needs (the namespace, the tools) and prints what is missing
 * instead of running a check that could only fail.
 */
export function probeCommand(spec: ProbeSpec): string {
  const ns = at(spec.namespace);
  const seconds = spec.timeoutMs / 1000;
  const check =
    spec.port === undefined
      ? // ping's -W is whole seconds on every iputils; `timeout` bounds the whole (name lookups included).
        ns.exec("timeout", seconds + 1, "ping", "-n", "-c", "1", "-W", Math.max(1, Math.ceil(seconds)), spec.target)
      : ns.exec("timeout", seconds, "bash", "-c", TCP_CONNECT, "probe", spec.target, spec.port);
  const precheck =
    `m=; ${ns.exists()} || m=namespace; ` +
    `for t in ${toolsFor(spec).join(" ")}; do command -v "$t" >/dev/null 2>&1 || m="$m\${m:+ }$t"; done`;
  const run = `out=$(${check} 2>&1); rc=$?; printf '%s rc=%s\\n%s\\n' ${MARK} "$rc" "$out"`;
  return `${precheck}; if [ -n "$m" ]; then printf '%s missing=%s\\n' ${MARK} "$m"; else ${run}; fi`;
}

/** What the output of `probeCommand` says. */
export function parseProbe(text: string, spec: ProbeSpec): ProbeResult {
  const lines = text.split("\n");
  const missing = lines.find((l) => l.startsWith(`${MARK} missing=`));
  if (missing !== undefined) return missingOnHost(missing.slice(`${MARK} missing=`.length).trim().split(" "), spec);
  const first = lines.findIndex((l) => l.startsWith(`${MARK} rc=`));
  if (first < 0)
    return {
      couldNotCheck: `the check did not run (${oneLine(text) || "no output"})`,
      fix: RUN_BY_HAND,
    };
  const rc = Number(lines[first].slice(`${MARK} rc=`.length));
  const out = lines
    .slice(first + 1)
    .map((l) => l.trim())
    .filter((l) => l !== "");
  if (rc === TIMED_OUT) return { reachable: false, seen: `no answer within ${spec.timeoutMs} ms` };
  if (rc === NOT_FOUND || rc === NOT_EXECUTABLE) return notRun(rc, oneLine(out[out.length - 1] ?? ""));
  return spec.port === undefined ? parsePing(rc, out, spec) : parseConnect(rc, out, spec);
}

/** The shell's exit codes for a command not found, and one found but not executable. */
const NOT_FOUND = 127;
const NOT_EXECUTABLE = 126;
const RUN_BY_HAND = "run the same check by hand on the host (as the connection's user) to see why";
const AS_ROOT = "the check needs root: connect as root or set connection.sudo: true";

function missingOnHost(missing: string[], spec: ProbeSpec): CouldNotCheck {
  const tools = missing.filter((m) => m !== "namespace");
  const said: string[] = [];
  const fixes: string[] = [];
  if (missing.includes("namespace")) {
    said.push(`namespace ${JSON.stringify(spec.namespace)} does not exist`);
    fixes.push(
      `make it first (a Namespace named ${JSON.stringify(spec.namespace)}, and dependsOn it on the Probe) or correct namespace`,
    );
  }
  if (tools.length > 0) {
    said.push(`the host has no ${tools.map((t) => `\`${t}\``).join(", ")}`);
    fixes.push(`install ${[...new Set(tools.map((t) => PACKAGE_OF[t] ?? t))].join(", ")} on the host`);
  }
  return { couldNotCheck: said.join(" and "), fix: fixes.join("; ") };
}

/**
 * ping refused its socket (no CAP_NET_RAW, no ping group): nothing was sent. Unlike "sendmsg: Operation
 * not permitted", a firewall's drop of what was sent, which is an observation.
 */
const NO_SOCKET = /\bsocket: (operation not permitted|permission denied)/i;

function notRun(rc: number, last: string): CouldNotCheck {
  const permission = rc === NOT_EXECUTABLE || NO_SOCKET.test(last);
  return {
    couldNotCheck: `the check could not run (exit ${rc}${last ? `: ${last}` : ""})`,
    fix: permission ? AS_ROOT : RUN_BY_HAND,
  };
}

function parsePing(rc: number, out: string[], spec: ProbeSpec): ProbeResult {
  const reply = out.map((l) => /\btime[=<]([\d.]+) ?ms\b/.exec(l)).find((m) => m !== null);
  if (rc === 0 && reply) {
    const rttMs = Number(reply[1]);
    return { reachable: true, rttMs, seen: `echo reply in ${rttMs} ms` };
  }
  // An ICMP error from a router ("From 10.0.0.1 icmp_seq=1 Destination Host Unreachable") or ping's own.
  const error = out.find((l) => /^From |unreachable|cannot|unknown|invalid|not permitted|denied/i.test(l));
  const socketRefused = out.find((l) => NO_SOCKET.test(l));
  if (socketRefused) return notRun(rc, oneLine(socketRefused));
  if (rc === 1) return { reachable: false, seen: error ? oneLine(error) : `no echo reply within ${spec.timeoutMs} ms` };
  // ping's 2 is its own error ("connect: Network is unreachable": no route, an observation); anything else
  // (ip netns exec's 255 for a namespace gone since the precheck) is no check at all.
  if (rc !== 2) return notRun(rc, oneLine(out[out.length - 1] ?? ""));
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
  // Every failed connect exits CONNECT_FAILED: anything else is not an answer from the target.
  return notRun(rc, oneLine(last));
}

/** A line of the host's output, safe and short in an error message. */
function oneLine(text: string): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > 160 ? `${line.slice(0, 157)}...` : line;
}
