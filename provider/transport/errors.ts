/** A remote command that exited non-zero, or whose channel closed before it finished (code null). */
export class CommandError extends Error {
  constructor(
    readonly host: string,
    readonly command: string,
    readonly code: number | null,
    readonly stdout: string,
    readonly stderr: string,
    /** The remote shell's pid when the channel closed (code null): it may still be finishing the command. */
    readonly shellPid?: number,
    /** Set when the command ran out of time (code null): it may still be running on the host. */
    readonly timeoutMs?: number,
  ) {
    const what =
      timeoutMs !== undefined
        ? `did not finish within ${timeoutMs / 1000} s (connection.commandTimeout; raise it for a slow host)`
        : code === null
          ? "did not finish (the channel closed; exit code null)"
          : `failed with exit code ${code}`;
    const shown = command.length > 400 ? `${command.slice(0, 397)}...` : command;
    const err = stderr.trim();
    super(`command on ${host} ${what}: ${shown}${err ? `\n${err}` : ""}`);
    this.name = "CommandError";
  }
}

/** The host presented a key other than the pinned or recorded one. Never retried. */
export class HostKeyMismatchError extends Error {
  constructor(host: string, expected: string, actual: string, actualType: string) {
    super(
      `host key mismatch for ${host}: expected ${expected}, but the host presented ${actual} (${actualType}). ` +
        "Refusing to connect: if the host was rebuilt, update connection.hostKey (or replace the resource).",
    );
    this.name = "HostKeyMismatchError";
  }
}

/** Dialing, authentication or session setup failed. */
export class ConnectError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = "ConnectError";
  }
}
