/**
 * The labs started by this process (not detached), and the exit and signal
 * handlers that stop them when the process ends without stopping them itself.
 */

export interface LiveLab {
  readonly name: string;
  stop(): Promise<void>;
  /** Stops the lab blocking, for `exit` handlers, which cannot wait. */
  stopSync(): void;
}

const liveLabs = new Map<string, LiveLab>();
let handlersInstalled = false;

function onExit(): void {
  for (const lab of [...liveLabs.values()]) lab.stopSync();
}

function onSignal(signal: NodeJS.Signals): void {
  onExit();
  uninstallHandlers();
  // Only re-raise when nobody else handles the signal, to keep its default meaning.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

/** Installed before a lab starts, so a signal during its launch still cleans up. */
export function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", onExit);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}

function uninstallHandlers(): void {
  if (!handlersInstalled) return;
  handlersInstalled = false;
  process.removeListener("exit", onExit);
  process.removeListener("SIGINT", onSignal);
  process.removeListener("SIGTERM", onSignal);
}

/** Takes the handlers away once no lab of this process is left, so they keep nothing alive. */
export function uninstallExitHandlersIfIdle(): void {
  if (liveLabs.size === 0) uninstallHandlers();
}

export function liveLab(name: string): LiveLab | undefined {
  return liveLabs.get(name);
}

export function addLiveLab(lab: LiveLab): void {
  liveLabs.set(lab.name, lab);
}

export function removeLiveLab(name: string): void {
  liveLabs.delete(name);
  uninstallExitHandlersIfIdle();
}

/** Stops every lab started by this process. */
export async function stopAllLabHosts(): Promise<void> {
  await Promise.all([...liveLabs.values()].map((lab) => lab.stop()));
}
