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
