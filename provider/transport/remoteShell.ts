import { randomBytes } from "node:crypto";
import type { Client, ClientChannel } from "ssh2";
import { quote } from "../shell";
import { CommandError } from "./errors";
import { ShellNoAnswer, shellStartFailed } from "./shellErrors";

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

// sbin directories hold ip and iptables; non-root logins often lack them in PATH.
const SHELL_SETUP =
  "export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; unset HISTFILE; umask 022\n";

interface Pending {
  command: string;
  resolve: (r: CommandResult) => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
}

/**
 * One long-lived `/bin/sh` on an SSH channel, speaking a small framed protocol:
 * each command is written to its stdin and followed by an end marker (with the
 * exit code) on stdout and on stderr. A command then costs a few milliseconds
 * instead of a new exec session (tens of ms) or a new connection (hundreds).
 * The marker carries a per-shell random nonce, so command output cannot forge it.
 */
export class RemoteShell {
  private stdout = "";
  private stderr = "";
  private pending: Pending | undefined;
  private closed = false;
  private readonly marker = `__PNETNS_${randomBytes(12).toString("hex")}`;
  /** The remote `/bin/sh`'s pid, so a later shell can wait for it after a drop. */
  private pid: number | undefined;
  /** The remote side said something: output, or an exit status (a drop gives neither). */
  private answered = false;

  private constructor(
    private readonly channel: ClientChannel,
    private readonly host: string,
  ) {
    channel.on("data", (chunk: Buffer) => {
      this.answered = true;
      this.stdout += chunk.toString("utf8");
      this.settle();
    });
    channel.stderr.on("data", (chunk: Buffer) => {
      this.answered = true;
      this.stderr += chunk.toString("utf8");
      this.settle();
    });
    channel.on("exit", () => {
      this.answered = true;
    });
    channel.on("close", () => this.onClose());
    channel.on("error", () => this.onClose());
  }

  /** Opens a shell (through `sudo -n` when asked) and waits until it answers. */
  static async open(client: Client, host: string, sudo: boolean): Promise<RemoteShell> {
    const channel = await new Promise<ClientChannel>((resolve, reject) => {
      client.exec(sudo ? "sudo -n /bin/sh" : "/bin/sh", (err, ch) => (err ? reject(err) : resolve(ch)));
    });
    const shell = new RemoteShell(channel, host);
    channel.write(SHELL_SETUP);
    try {
      // In the subshell `run` uses, $$ is still the long-lived shell's pid.
      const ready = await shell.run("echo $$", 30_000);
      const pid = Number(ready.stdout.trim());
      shell.pid = Number.isInteger(pid) && pid > 1 ? pid : undefined;
    } catch (e) {
      shell.close();
      // Only what the host said (nologin's message, sudo's refusal, an exit status) is about the login.
      if (!shell.answered) throw new ShellNoAnswer(host, e instanceof CommandError ? e.timeoutMs : undefined);
      const said = e instanceof CommandError ? `${e.stderr.trim()}\n${e.stdout.trim()}` : String(e);
      throw shellStartFailed(host, sudo, said);
    }
    return shell;
  }

  get alive(): boolean {
    return !this.closed;
  }

  get busy(): boolean {
    return this.pending !== undefined;
  }

  /** Runs one script in a subshell with stdin from /dev/null; resolves with its exit code. */
  run(script: string, timeoutMs: number): Promise<CommandResult> {
    if (this.closed)
      return Promise.reject(new CommandError(this.host, script, null, "", "the shell had already closed"));
    if (this.pending) return Promise.reject(new Error("RemoteShell.run called while busy"));
    return new Promise<CommandResult>((resolve, reject) => {
      const pending: Pending = { command: script, resolve, reject };
      this.pending = pending;
      pending.timer = setTimeout(() => {
        if (this.pending !== pending) return;
        this.pending = undefined;
        // The shell's state is unknown now: never reuse it.
        this.close();
        reject(new CommandError(this.host, script, null, this.stdout, "", this.pid, timeoutMs));
      }, timeoutMs);
      this.channel.write(
        `( eval ${quote(script)} ) </dev/null; __rc=$?; printf '\\n%s %d\\n' ${this.marker} "$__rc"; printf '\\n%s\\n' ${this.marker} >&2\n`,
      );
    });
  }

  private settle(): void {
    const pending = this.pending;
    if (!pending) return;
    const outEnd = this.stdout.indexOf(`\n${this.marker} `);
    const errEnd = this.stderr.indexOf(`\n${this.marker}\n`);
    if (outEnd < 0 || errEnd < 0) return;
    const tail = /^ (\d+)\n/.exec(this.stdout.slice(outEnd + 1 + this.marker.length));
    if (!tail) return;
    const result: CommandResult = {
      code: Number(tail[1]),
      stdout: this.stdout.slice(0, outEnd),
      stderr: this.stderr.slice(0, errEnd),
    };
    this.stdout = this.stdout.slice(outEnd + 1 + this.marker.length + tail[0].length);
    this.stderr = this.stderr.slice(errEnd + this.marker.length + 2);
    this.pending = undefined;
    clearTimeout(pending.timer);
    pending.resolve(result);
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    const pending = this.pending;
    this.pending = undefined;
    if (pending) {
      clearTimeout(pending.timer);
      pending.reject(new CommandError(this.host, pending.command, null, this.stdout, this.stderr, this.pid));
    }
  }

  close(): void {
    if (!this.closed) {
      try {
        this.channel.end();
        this.channel.close();
      } catch {
        // already gone
      }
    }
    this.onClose();
  }
}
