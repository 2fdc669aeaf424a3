import {
  type Connection,
  DEFAULT_DIAL_ERROR_LIMIT,
  DEFAULT_PER_DIAL_TIMEOUT,
  DEFAULT_PORT,
  DEFAULT_USER,
} from "../connection";

/**
 * What a failed attempt to connect means, and what the user can do about it.
 * Pure: it reads the error ssh2 (or the socket under it) gave and the
 * connection's settings, never a secret's value.
 *
 * Only what can heal by itself is retried: a host that does not answer in
 * time, or a connection cut during the handshake. A name that does not
 * resolve, a refused port, a refused login or an unusable key fail at once.
 */
export interface DialFailure {
  /** Retrying may help (the host did not answer, or the connection was cut). */
  readonly retryable: boolean;
  /** The host may be gone (nothing answers, or nothing by that name): say how to let go of it. */
  readonly hostMayBeGone: boolean;
  /** The login itself failed (the host answered). */
  readonly authentication: boolean;
  /** What happened, for one line of progress: "timed out after 15 s". */
  readonly what: string;
  /** What to check or change, naming the connection's fields. */
  readonly advice: string;
}

export type SocketError = Error & {
  code?: string;
  level?: string;
  /** ssh2's channel open failure reason (SSH_OPEN_*: 1 prohibited, 2 connect failed, 4 resource shortage). */
  reason?: number | string;
  /** Set by the session when the jump host (this label) failed to open the forward to this hop. */
  forwardedBy?: string;
};

function methodsTried(conn: Connection, field: string): string {
  const tried: string[] = [];
  if (conn.privateKey) tried.push(`the key in ${field}.privateKey`);
  if (conn.password) tried.push(`${field}.password`);
  if (!conn.privateKey && !conn.password)
    tried.push(
      conn.agentSocketPath
        ? `the keys of the ssh-agent at ${conn.agentSocketPath} (${field}.agentSocketPath)`
        : process.env.SSH_AUTH_SOCK
          ? "the keys of the ssh-agent at $SSH_AUTH_SOCK"
          : `nothing (no privateKey, no password, no agentSocketPath in ${field} and no $SSH_AUTH_SOCK)`,
    );
  return tried.join(" and ");
}

/** What the jump host answered when asked to open a channel to this hop (no socket error code: ssh2's reason). */
function forwardFailure(err: SocketError, conn: Connection, field: string): DialFailure {
  const jump = err.forwardedBy ?? "the jump host";
  const target = `${JSON.stringify(conn.host)} port ${conn.port ?? DEFAULT_PORT}`;
  const said = err.message.replace(/^\(SSH\) Channel open failure:\s*/, "");
  const seen = `as seen from the jump host ${jump} (${field}.proxy)`;
  const base = { hostMayBeGone: false, authentication: false };
  if (Number(err.reason) === 1 || /prohibited/i.test(said))
    return {
      ...base,
      retryable: false,
      what: `the jump host ${jump} refused to forward to ${target} (${said})`,
      advice: `Check that sshd on the jump host allows TCP forwarding to it (AllowTcpForwarding, PermitOpen), and ${field}.host and ${field}.port.`,
    };
  if (/name resolution|not known|nodename|no address|resolve/i.test(said))
    return {
      ...base,
      retryable: false,
      hostMayBeGone: true,
      what: `the name ${JSON.stringify(conn.host)} does not resolve ${seen}: ${said}`,
      advice: `Check ${field}.host for a typo, or give the host's IP address as the jump host reaches it.`,
    };
  if (/refused/i.test(said))
    return {
      ...base,
      retryable: false,
      hostMayBeGone: true,
      what: `${target} refused the connection ${seen}: no SSH server listens there`,
      advice: `Check ${field}.port (and ${field}.host) and that sshd runs on the host.`,
    };
  if (Number(err.reason) === 4 || /timed out|unreachable|no route|shortage|closed channel unexpectedly/i.test(said))
    return {
      ...base,
      retryable: true,
      hostMayBeGone: !/shortage/i.test(said),
      what: `the jump host ${jump} cannot reach ${target}: ${said}`,
      advice: `Check that the host is up and that the jump host has a route to it (${field}.host, ${field}.port).`,
    };
  return {
    ...base,
    retryable: false,
    what: `the jump host ${jump} cannot open a connection to ${target}: ${said}`,
    advice: `Check ${field}.host and ${field}.port, as the jump host reaches them.`,
  };
}

/**
 * `field`: the caller's name for this hop (`connection`, `connection.proxy`,
 * ...), so that a jump host's failure names the jump host's fields.
 */
export function classifyDialError(e: Error, conn: Connection, field = "connection"): DialFailure {
  const err = e as SocketError;
  const host = JSON.stringify(conn.host);
  const port = conn.port ?? DEFAULT_PORT;
  const user = conn.user ?? DEFAULT_USER;
  if (err.forwardedBy !== undefined || /^\(SSH\) Channel open failure/.test(err.message))
    return forwardFailure(err, conn, field);
  if (err.level === "client-authentication")
    return {
      retryable: false,
      hostMayBeGone: false,
      authentication: true,
      what: `the host refused the login of user ${JSON.stringify(user)} with ${methodsTried(conn, field)}`,
      advice:
        `Check ${field}.user, that the public half of the key is in ~${user}/.ssh/authorized_keys on the host ` +
        `(or that ${field}.password is right and sshd allows passwords), and that sshd's AllowUsers/PermitRootLogin admit the user.`,
    };
  // A key that cannot be parsed or decrypted (wrong passphrase) will not get better by retrying.
  if (/cannot parse privatekey|passphrase/i.test(err.message))
    return {
      retryable: false,
      hostMayBeGone: false,
      authentication: true,
      what: `${field}.privateKey cannot be used: ${err.message}`,
      advice: `Check that ${field}.privateKey is the whole key file and ${field}.privateKeyPassword its passphrase.`,
    };
  // ssh2 cannot reach the agent's socket (missing, or not a socket): no retry brings it back.
  if (/failed to connect to agent/i.test(err.message)) {
    const socket = conn.agentSocketPath
      ? `${JSON.stringify(conn.agentSocketPath)} (${field}.agentSocketPath)`
      : `${JSON.stringify(process.env.SSH_AUTH_SOCK ?? "")} ($SSH_AUTH_SOCK, used as no ${field}.privateKey, password or agentSocketPath is set)`;
    return {
      retryable: false,
      hostMayBeGone: false,
      authentication: true,
      what: `no ssh-agent answers at ${socket}`,
      advice: conn.agentSocketPath
        ? `Check ${field}.agentSocketPath: it must be the socket of a running ssh-agent (\`echo $SSH_AUTH_SOCK\` where the agent runs).`
        : `Start an ssh-agent and export SSH_AUTH_SOCK for the program, or set ${field}.agentSocketPath, ${field}.privateKey or ${field}.password.`,
    };
  }
  if (err.code === "ENOTFOUND" || err.code === "EAI_AGAIN" || err.code === "EAI_NONAME")
    return {
      retryable: false,
      hostMayBeGone: true,
      authentication: false,
      what: `the name ${host} does not resolve (${err.code})`,
      advice: `Check ${field}.host for a typo, or give the host's IP address.`,
    };
  if (err.code === "ECONNREFUSED")
    return {
      retryable: false,
      hostMayBeGone: true,
      authentication: false,
      what: `${host} refused the connection to port ${port}: no SSH server listens there`,
      advice: `Check ${field}.port and that sshd runs on the host.`,
    };
  const timeout = conn.perDialTimeout ?? DEFAULT_PER_DIAL_TIMEOUT;
  if (err.level === "client-timeout" || err.code === "ETIMEDOUT")
    return {
      retryable: true,
      hostMayBeGone: true,
      authentication: false,
      what: `timed out after ${timeout} s`,
      advice:
        "The host does not answer: check that it is up and that no firewall drops port " +
        `${port}; on a slow link raise ${field}.perDialTimeout (now ${timeout} s) or ${field}.dialErrorLimit ` +
        `(now ${conn.dialErrorLimit ?? DEFAULT_DIAL_ERROR_LIMIT}).`,
    };
  if (err.code === "EHOSTUNREACH" || err.code === "ENETUNREACH")
    return {
      retryable: true,
      hostMayBeGone: true,
      authentication: false,
      what: `the host is unreachable (${err.code})`,
      advice: "Check that the host is up and that this machine has a route to it.",
    };
  return { retryable: true, hostMayBeGone: false, authentication: false, what: `failed: ${err.message}`, advice: "" };
}

/** One line of progress for an attempt that failed and will be retried. */
export function retryLine(label: string, attempt: number, limit: number, f: DialFailure, delayMs: number): string {
  return `connecting to ${label}: attempt ${attempt} of ${limit} ${f.what}; retrying in ${(delayMs / 1000).toFixed(1)} s`;
}

/**
 * What to do when the host will never answer again: the engine cannot delete
 * (or read) what is on it, so the resources go from the state by hand.
 */
export function hostGoneAdvice(label: string): string {
  return (
    `If ${label} is gone for good (and what was made on it with it), remove its resources from the stack's state: ` +
    "`pulumi state delete '<urn>' --target-dependents --yes` for each (`pulumi stack --show-urns` lists the URNs), " +
    "and from the program, or point connection.host at the host's new address."
  );
}

/** The error after the last attempt: what happened, how often, and what to do. */
export function dialFailedMessage(label: string, attempts: number, f: DialFailure): string {
  const head = f.authentication
    ? `authentication to ${label} failed`
    : `cannot connect to ${label}${attempts > 1 ? ` after ${attempts} attempts` : ""}`;
  const what = attempts > 1 ? `the last one ${f.what}` : f.what;
  // hostGoneAdvice is added by the operation when it applies (a resource in the state): impl/opErrors.ts.
  return `${head}: ${what}.${f.advice ? ` ${f.advice}` : ""}`;
}
