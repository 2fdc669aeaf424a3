import { strict as assert } from "node:assert";
import { EventEmitter } from "node:events";
import type { Client } from "ssh2";
import { RemoteShell } from "../../../../provider/transport/remoteShell";

/** A channel that, once the start-up command is written, does what `then` says. */
function fakeClient(then: (ch: EventEmitter & { stderr: EventEmitter }) => void): Client {
  const ch = Object.assign(new EventEmitter(), {
    stderr: new EventEmitter(),
    writes: 0,
    write() {
      // The set-up line, then `echo $$`.
      if (++ch.writes === 2) setImmediate(() => then(ch));
      return true;
    },
    end() {},
    close() {
      ch.emit("close");
    },
  });
  return { exec: (_cmd: string, cb: (err: Error | undefined, c: unknown) => void) => cb(undefined, ch) } as never;
}

describe("transport/remoteShell: a shell that does not start", () => {
  it("does not blame the login shell when the channel closes without any answer (a drop)", async () => {
    const client = fakeClient((ch) => ch.emit("close"));
    await assert.rejects(RemoteShell.open(client, "root@h:22", false), (e: unknown) => {
      const message = (e as Error).message;
      assert.doesNotMatch(message, /login shell|connection\.user/, message);
      assert.match(message, /closed before the shell answered/, message);
      return true;
    });
  });

  it("blames the login shell when the host answered (nologin's message and exit status 1)", async () => {
    const client = fakeClient((ch) => {
      ch.emit("data", Buffer.from("This account is currently not available.\n"));
      ch.emit("exit", 1);
      ch.emit("close");
    });
    await assert.rejects(RemoteShell.open(client, "nobody@h:22", false), (e: unknown) => {
      const message = (e as Error).message;
      assert.match(message, /cannot start \/bin\/sh on nobody@h:22: This account is currently not available\./);
      assert.match(message, /login shell of connection\.user/);
      return true;
    });
  });
});
