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

type SocketError = Error & { code?: string; level?: string };

function methodsTried(conn: Connection): string {
  const tried: string[] = [];
  if (conn.privateKey) tried.push("the key in connection.privateKey");
  if (conn.password) tried.push("connection.password");
  if (!conn.privateKey && !conn.password)
    tried.push(
      conn.agentSocketPath
        ? `the keys of the ssh-agent at ${conn.agentSocketPath} (connection.agentSocketPath)`
        : process.env.SSH_AUTH_SOCK
          ? "the keys of the ssh-agent at $SSH_AUTH_SOCK"
          : "nothing (no privateKey, no password, no agentSocketPath and no $SSH_AUTH_SOCK)",
    );
  return tried.join(" and ");
}

export function classifyDialError(e: Error, conn: Connection): DialFailure {
  const err = e as SocketError;
  const host = JSON.stringify(conn.host);
  const port = conn.port ?? DEFAULT_PORT;
  const user = conn.user ?? DEFAULT_USER;
  if (err.level === "client-authentication")
    return {
      retryable: false,
      hostMayBeGone: false,
      authentication: true,
      what: `the host refused the login of user ${JSON.stringify(user)} with ${methodsTried(conn)}`,
      advice:
        `Check connection.user, that the public half of the key is in ~${user}/.ssh/authorized_keys on the host ` +
        "(or that connection.password is right and sshd allows passwords), and that sshd's AllowUsers/PermitRootLogin admit the user.",
    };
  // A key that cannot be parsed or decrypted (wrong passphrase) will not get better by retrying.
  if (/cannot parse privatekey|passphrase/i.test(err.message))
    return {
      retryable: false,
      hostMayBeGone: false,
      authentication: true,
      what: `connection.privateKey cannot be used: ${err.message}`,
      advice:
        "Check that connection.privateKey is the whole key file and connection.privateKeyPassword its passphrase.",
    };
  if (err.code === "ENOTFOUND" || err.code === "EAI_AGAIN" || err.code === "EAI_NONAME")
    return {
      retryable: false,
      hostMayBeGone: true,
      authentication: false,
      what: `the name ${host} does not resolve (${err.code})`,
      advice: "Check connection.host for a typo, or give the host's IP address.",
    };
  if (err.code === "ECONNREFUSED")
    return {
      retryable: false,
      hostMayBeGone: true,
      authentication: false,
      what: `${host} refused the connection to port ${port}: no SSH server listens there`,
      advice: "Check connection.port and that sshd runs on the host.",
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
        `${port}; on a slow link raise connection.perDialTimeout (now ${timeout} s) or connection.dialErrorLimit ` +
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
