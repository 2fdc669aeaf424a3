/**
 * Tells the user, as it happens, what the provider is waiting for (a retried
 * connection). A dynamic provider's host has no connection to the engine's
 * log (pulumi.log there prints "info: [runtime] ..." on stdout), but the
 * engine shows each line the provider host writes to stdout or stderr in
 * `pulumi up`'s output at once, so a line on stderr is what reaches the user.
 */
let sink: (line: string) => void = (line) => process.stderr.write(`[pulumi-netns] ${line}\n`);

export function progress(line: string): void {
  sink(line);
}

/** Replaces where progress lines go (tests collect them); returns the previous sink. */
export function setProgressSink(next: (line: string) => void): (line: string) => void {
  const previous = sink;
  sink = next;
  return previous;
}
