import { strict as assert } from "node:assert";
import {
  classifyDialError,
  dialFailedMessage,
  hostGoneAdvice,
  retryLine,
} from "../../../../provider/transport/dialErrors";

const KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LWtleS1ib2R5LXNlY3JldA==\n-----END OPENSSH PRIVATE KEY-----\n";
const conn = { host: "h.example", port: 2222, user: "ops", privateKey: KEY, password: "hunter2-secret" };
const socketError = (code: string, message = `connect ${code}`) =>
  Object.assign(new Error(message), { code, level: "client-socket" });
const LABEL = "ops@h.example:2222";

// What each failure ssh2 reports means: retried only when it can heal, and told with the field to check.
describe("transport/dialErrors: which connection failures are retried, and what their errors say", () => {
  const cases: Array<[string, Error, boolean, RegExp]> = [
    [
      "a name that does not resolve",
      socketError("ENOTFOUND", "getaddrinfo ENOTFOUND h.example"),
      false,
      /the name "h\.example" does not resolve \(ENOTFOUND\)\. Check connection\.host/,
    ],
    ["a resolver that cannot answer", socketError("EAI_AGAIN"), false, /does not resolve \(EAI_AGAIN\)/],
    [
      "a refused port",
      socketError("ECONNREFUSED"),
      false,
      /refused the connection to port 2222: no SSH server listens there\. Check connection\.port/,
    ],
    [
      "a refused login",
      Object.assign(new Error("All configured authentication methods failed"), { level: "client-authentication" }),
      false,
      /^authentication to ops@h\.example:2222 failed: the host refused the login of user "ops" with the key in connection\.privateKey and connection\.password\. Check connection\.user.*~ops\/\.ssh\/authorized_keys/,
    ],
    [
      "a key with the wrong passphrase",
      new Error("Cannot parse privateKey: Encrypted private OpenSSH key detected, but no passphrase given"),
      false,
      /connection\.privateKey cannot be used.*connection\.privateKeyPassword/,
    ],
    [
      "a handshake that never comes",
      Object.assign(new Error("Timed out while waiting for handshake"), { level: "client-timeout" }),
      true,
      /timed out after 15 s\. The host does not answer.*perDialTimeout \(now 15 s\).*dialErrorLimit \(now 10\)/,
    ],
    ["an unreachable host", socketError("EHOSTUNREACH"), true, /the host is unreachable \(EHOSTUNREACH\)/],
    ["a connection reset mid-handshake", socketError("ECONNRESET", "read ECONNRESET"), true, /failed: read ECONNRESET/],
  ];
  for (const [what, error, retryable, message] of cases) {
    it(`${what}: ${retryable ? "retried" : "fails at once"}, and the error says what to check (no secret)`, () => {
      const f = classifyDialError(error, conn);
      assert.equal(f.retryable, retryable);
      const text = dialFailedMessage(LABEL, 1, f);
      assert.match(text, message);
      for (const secret of ["hunter2-secret", "c2VjcmV0LWtleS1ib2R5LXNlY3JldA=="])
        assert.ok(!text.includes(secret), text);
    });
  }

  it("says what happened and what to check, but not how to let go of the host: that depends on the operation (impl/opErrors.ts)", () => {
    const timedOut = classifyDialError(socketError("ETIMEDOUT"), conn);
    const gone = dialFailedMessage(LABEL, 3, timedOut);
    assert.match(gone, /^cannot connect to ops@h\.example:2222 after 3 attempts: the last one timed out after 15 s/);
    assert.doesNotMatch(gone, /gone for good|pulumi state delete/);
    assert.equal(timedOut.hostMayBeGone, true);
    assert.match(
      hostGoneAdvice(LABEL),
      /If ops@h\.example:2222 is gone for good.*`pulumi state delete '<urn>' --target-dependents --yes`.*`pulumi stack --show-urns`/,
    );
    const auth = Object.assign(new Error("All configured authentication methods failed"), {
      level: "client-authentication",
    });
    assert.equal(classifyDialError(auth, conn).hostMayBeGone, false);
  });

  it("names the agent when no key or password is given, and says when there is nothing to log in with", () => {
    const auth = Object.assign(new Error("All configured authentication methods failed"), {
      level: "client-authentication",
    });
    const agent = classifyDialError(auth, { host: "h", agentSocketPath: "/run/agent.sock" });
    assert.match(agent.what, /ssh-agent at \/run\/agent\.sock \(connection\.agentSocketPath\)/);
    const saved = process.env.SSH_AUTH_SOCK;
    delete process.env.SSH_AUTH_SOCK;
    try {
      assert.match(classifyDialError(auth, { host: "h" }).what, /with nothing \(no privateKey, no password/);
    } finally {
      if (saved !== undefined) process.env.SSH_AUTH_SOCK = saved;
    }
  });

  // ssh2's error when the jump host cannot open the forward: no socket code, a reason and the server's text.
  const openFailure = (reason: number, description: string) =>
    Object.assign(new Error(`(SSH) Channel open failure: ${description}`), { reason, forwardedBy: "root@jump:22" });
  const forwards: Array<[string, Error, boolean, RegExp]> = [
    [
      "a target port refused behind the jump host",
      openFailure(2, "Connection refused"),
      false,
      /"h\.example" port 2222 refused the connection as seen from the jump host root@jump:22 \(connection\.proxy\).*Check connection\.port/,
    ],
    [
      "a target name the jump host cannot resolve",
      openFailure(2, "Temporary failure in name resolution"),
      false,
      /the name "h\.example" does not resolve as seen from the jump host root@jump:22.*Check connection\.host/,
    ],
    [
      "a forward the jump host's sshd does not allow",
      openFailure(1, "administratively prohibited: open failed"),
      false,
      /the jump host root@jump:22 refused to forward to "h\.example" port 2222.*AllowTcpForwarding/,
    ],
    ["a target the jump host cannot reach in time", openFailure(2, "Connection timed out"), true, /cannot reach/],
  ];
  for (const [what, error, retryable, message] of forwards) {
    it(`${what}: ${retryable ? "retried" : "fails at once"}, said as seen from the jump host`, () => {
      const f = classifyDialError(error, conn);
      assert.equal(f.retryable, retryable);
      assert.match(dialFailedMessage(LABEL, 1, f), message);
    });
  }

  it("fails at once on an ssh-agent socket that cannot be reached, naming agentSocketPath or $SSH_AUTH_SOCK", () => {
    const noAgent = new Error("Failed to connect to agent");
    const given = classifyDialError(noAgent, { host: "h", agentSocketPath: "/tmp/nope.sock" });
    assert.equal(given.retryable, false);
    assert.match(dialFailedMessage("root@h:22", 1, given), /"\/tmp\/nope\.sock" \(connection\.agentSocketPath\)/);
    const saved = process.env.SSH_AUTH_SOCK;
    process.env.SSH_AUTH_SOCK = "/tmp/gone.sock";
    try {
      const defaulted = classifyDialError(noAgent, { host: "h" });
      assert.equal(defaulted.retryable, false);
      assert.match(dialFailedMessage("root@h:22", 1, defaulted), /"\/tmp\/gone\.sock" \(\$SSH_AUTH_SOCK/);
    } finally {
      if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
      else process.env.SSH_AUTH_SOCK = saved;
    }
  });

  it("names the jump host's fields (at any depth) in a jump host's failure", () => {
    const field = "connection.proxy.proxy";
    const passphrase = new Error("Cannot parse privateKey: OpenSSH key integrity check failed -- bad passphrase?");
    const key = dialFailedMessage(LABEL, 1, classifyDialError(passphrase, conn, field));
    assert.match(
      key,
      /connection\.proxy\.proxy\.privateKey cannot be used.*connection\.proxy\.proxy\.privateKeyPassword/,
    );
    const login = Object.assign(new Error("All configured authentication methods failed"), {
      level: "client-authentication",
    });
    const auth = dialFailedMessage(LABEL, 1, classifyDialError(login, conn, field));
    assert.match(auth, /Check connection\.proxy\.proxy\.user.*connection\.proxy\.proxy\.password/);
    for (const text of [key, auth]) assert.doesNotMatch(text, /(^|[^.y])connection\.(privateKey|user|password)/);
  });

  it("shows a retried attempt as one line: which attempt of how many, what happened, when the next comes", () => {
    const f = classifyDialError(Object.assign(new Error("Timed out"), { level: "client-timeout" }), {
      host: "h",
      perDialTimeout: 4,
    });
    assert.equal(
      retryLine("root@h:22", 2, 3, f, 800),
      "connecting to root@h:22: attempt 2 of 3 timed out after 4 s; retrying in 0.8 s",
    );
  });
});
