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

/** Where the expected keys came from, as the error says it. */
const EXPECTED_FROM = {
  pin: (field: string) => `pinned in ${field}.hostKey`,
  state: () => "recorded in this resource's knownHostKeys",
  stack: () => "recorded by other resources of this stack for this host",
} as const;

/**
 * The host presented a key other than the pinned or recorded one. Never
 * retried. Says the way out of a legitimate change: pin the new key (which
 * replaces the recorded one), `pulumi up`, then remove the pin if wanted.
 */
export class HostKeyMismatchError extends Error {
  constructor(
    host: string,
    /** The caller's field for this hop: `connection`, `connection.proxy`, ... */
    field: string,
    expected: { fingerprints: readonly string[]; source: keyof typeof EXPECTED_FROM },
    /** What the host presented: its type is what a bare-fingerprint pin may ask for next. */
    readonly presented: { fingerprint: string; type: string },
  ) {
    const shown = presented.fingerprint;
    const fix =
      expected.source === "pin"
        ? `If the host's key changed on purpose, check ${shown} on the host itself and set ${field}.hostKey to it.`
        : `If the host's key changed on purpose, check ${shown} on the host itself, set ${field}.hostKey to it ` +
          "on every resource on this host and run `pulumi up`: the pinned key replaces the recorded one " +
          "(the pin may be removed after that up).";
    super(
      `host key mismatch for ${host}: expected ${expected.fingerprints.join(" or ")} ` +
        `(${EXPECTED_FROM[expected.source](field)}), but the host presented ${shown} (${presented.type}). ` +
        `Refusing to connect: nothing was sent to it. ${fix}`,
    );
    this.name = "HostKeyMismatchError";
  }
}

/** Dialing, authentication or session setup failed. */
export class ConnectError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    /**
     * Nothing answered (or nothing by that name): the host may be gone. What to
     * do about it depends on the operation (impl/opErrors.ts adds it).
     */
    readonly hostMayBeGone = false,
  ) {
    super(message);
    this.name = "ConnectError";
  }
}
