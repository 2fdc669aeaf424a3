import { strict as assert } from "node:assert";
import { shellStartFailed } from "../../../../provider/transport/shellErrors";

const NOLOGIN =
  "Could not chdir to home directory /nonexistent: No such file or directory\nThis account is currently not available.";

// Finding: a user without a login shell got "cannot start /bin/sh on …: Could not chdir …", naming no field
// and dropping the rest of what the host said.
describe("transport/shellErrors: a shell that does not start names connection.user and keeps what the host said", () => {
  it("an account without a login shell (nologin): connection.user, the login shell, the whole answer", () => {
    const e = shellStartFailed("nobody@h:22", false, NOLOGIN);
    assert.match(e.message, /^cannot start \/bin\/sh on nobody@h:22: Could not chdir to home directory/);
    assert.match(e.message, /This account is currently not available\./);
    assert.match(e.message, /connection\.user/);
    assert.match(e.message, /no login shell/);
    assert.equal(e.retryable, false);
  });

  it("through sudo: names connection.sudo and passwordless sudo, and the login shell when the host says so", () => {
    const nosudo = shellStartFailed("ops@h:22", true, "sudo: a password is required");
    assert.match(
      nosudo.message,
      /through "sudo -n" on ops@h:22: sudo: a password is required\. connection\.user needs passwordless sudo \(NOPASSWD\) for connection\.sudo: true\.$/,
    );
    assert.match(
      shellStartFailed("nobody@h:22", true, NOLOGIN).message,
      /connection\.sudo: true\. sshd runs commands through the login shell of connection\.user/,
    );
  });

  it("a long answer is cut, an empty one says the channel closed", () => {
    assert.ok(shellStartFailed("u@h:22", false, "x".repeat(5000)).message.length < 1400);
    assert.match(shellStartFailed("u@h:22", false, "\n").message, /on u@h:22: the channel closed\./);
  });
});
