import { type Connection, DEFAULT_PORT } from "../connection";
import { ConnectError } from "./errors";

/** More than this of the host's answer is cut (a login banner can be long). */
const MAX_SAID = 1_000;

/**
 * The shell did not start: the login worked, but the command never answered.
 * `said` is everything the host wrote (sshd's stderr, and the login shell's
 * output: nologin writes "This account is currently not available." on
 * stdout). sshd runs every command through connection.user's login shell, so
 * an account without one (nologin, false) fails here, not at login.
 */
export function shellStartFailed(label: string, sudo: boolean, said: string): ConnectError {
  const text = said.trim().replace(/\s*\n\s*/g, " / ");
  const shown = text.length > MAX_SAID ? `${text.slice(0, MAX_SAID - 3)}...` : text;
  const loginShell =
    "sshd runs commands through the login shell of connection.user: the account may have no login shell " +
    "(/usr/sbin/nologin, /bin/false) or be locked. Check connection.user";
  if (sudo) {
    const noShell = /not available|nologin|chdir/i.test(text) ? ` ${loginShell}.` : "";
    return new ConnectError(
      `cannot run commands as root through "sudo -n" on ${label}: ${shown || "the shell closed"}. ` +
        `connection.user needs passwordless sudo (NOPASSWD) for connection.sudo: true.${noShell}`,
      false,
    );
  }
  return new ConnectError(
    `cannot start /bin/sh on ${label}: ${shown || "the channel closed"}. ${loginShell}, ` +
      "or log in as another user (with connection.sudo: true if it is not root).",
    false,
  );
}

/**
 * The shell never answered (no output, no exit status): its channel closed,
 * or it stayed silent, without the login shell having said anything. Not a
 * login problem by itself: the session decides what it means (a connection
 * that dropped meanwhile, or a host that closed the channel).
 */
export class ShellNoAnswer extends Error {
  constructor(
    readonly host: string,
    /** Set when it stayed silent until the start-up bound (ms). */
    readonly timeoutMs?: number,
  ) {
    super(
      timeoutMs !== undefined
        ? `the shell did not answer within ${timeoutMs / 1000} s`
        : "the channel closed before the shell answered",
    );
    this.name = "ShellNoAnswer";
  }
}

/**
 * The connection died (or went silent) while a shell opened on it: as a dial
 * that times out, the host may be gone; nothing about the login.
 */
export function shellConnectionLost(label: string, conn: Connection, field: string, what: string): ConnectError {
  const port = conn.port ?? DEFAULT_PORT;
  return new ConnectError(
    `cannot open a shell on ${label}: the connection stopped answering while the shell opened (${what}). ` +
      `The host does not answer: check that it is up and that no firewall drops port ${port}, ` +
      `and that ${field}.host and ${field}.port name it.`,
    true,
    true,
  );
}
