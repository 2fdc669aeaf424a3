import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  CommandError,
  ConnectError,
  closeAllRemotes,
  HostKeyMismatchError,
  openRemote,
} from "../../provider/transport";
import { strayKey } from "../security/support";
import { traceEvents } from "../support/trace";
import { suiteLab } from "./support";

describe("transport: one pooled SSH connection, persistent framed shells", function () {
  this.timeout(120_000);
  const { lab, connection: conn } = suiteLab("it-transport");
  const endpoint = () => `${lab().connection.host}:22`;
  let traceFile: string;

  before(() => {
    traceFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pnetns-trace-")), "trace.jsonl");
    process.env.PULUMI_NETNS_TRACE = traceFile;
  });

  after(() => {
    delete process.env.PULUMI_NETNS_TRACE;
    fs.rmSync(path.dirname(traceFile), { recursive: true, force: true });
  });

  it("returns stdout, stderr and the exit code of each command, exactly", async () => {
    const remote = await openRemote(conn());
    const r = await remote.run("printf 'a\\nb'; printf 'err' >&2");
    assert.deepEqual(r, { code: 0, stdout: "a\nb", stderr: "err" });
    const failed = await remote.run("echo out; echo 'bad thing' >&2; exit 3", { allowFailure: true });
    assert.deepEqual(failed, { code: 3, stdout: "out\n", stderr: "bad thing\n" });
  });

  it("turns a non-zero exit into an error naming the host, the command and its stderr", async () => {
    const remote = await openRemote(conn());
    await assert.rejects(remote.run("ip link show dev no-such-dev"), (e: unknown) => {
      assert.ok(e instanceof CommandError);
      assert.equal(e.code, 1);
      assert.match(
        e.message,
        new RegExp(`root@${lab().connection.host}:22 failed with exit code 1: ip link show dev no-such-dev`),
      );
      assert.match(e.message, /does not exist/);
      return true;
    });
  });

  it("treats a command whose shell dies as a failure with exit code null, never a success", async () => {
    const remote = await openRemote(conn());
    await assert.rejects(remote.run("kill -9 $PPID; sleep 5"), (e: unknown) => {
      assert.ok(e instanceof CommandError);
      assert.equal(e.code, null);
      assert.match(e.message, /exit code null/);
      return true;
    });
    assert.equal((await remote.run("echo again")).stdout, "again\n", "a new shell serves the next command");
  });

  it("keeps the shell's protocol intact whatever a command prints or reads", async () => {
    const remote = await openRemote(conn());
    const r = await remote.run("printf 'no newline'; cat; echo '__PNETNS_fake 0'");
    assert.equal(r.stdout, "no newline__PNETNS_fake 0\n");
    assert.equal((await remote.run("exit 7", { allowFailure: true })).code, 7);
    assert.equal((await remote.run("echo still here")).stdout, "still here\n");
  });

  it("opens one connection for many commands, and at most 4 shells however many run at once", async () => {
    fs.writeFileSync(traceFile, "");
    const remote = await openRemote(conn());
    const before = Date.now();
    await Promise.all(Array.from({ length: 60 }, (_, i) => remote.run(`echo ${i}`)));
    const elapsed = Date.now() - before;
    const events = traceEvents(traceFile);
    assert.equal(events.filter((e) => e.event === "handshake").length, 1);
    assert.equal(events.filter((e) => e.event === "command").length, 60);
    const opened = events.filter((e) => e.event === "shell-open");
    assert.ok(opened.length >= 2, "commands ran on several shells at once");
    assert.ok(opened.length <= 4, `shells opened: ${opened.length}`);
    assert.ok(elapsed < 10_000, `60 commands took ${elapsed} ms`);
  });

  it("reconnects on the next command after the connection dropped", async () => {
    fs.writeFileSync(traceFile, "");
    const remote = await openRemote(conn());
    await remote.run("true");
    await lab().exec([
      "sh",
      "-c",
      'for p in $(pgrep -f "^sshd: root"); do [ "$(readlink /proc/$p/ns/net)" = "$(readlink /proc/self/ns/net)" ] && kill -9 $p; done; true',
    ]);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await remote.run("echo back")).stdout, "back\n");
    assert.equal(traceEvents(traceFile).filter((e) => e.event === "handshake").length, 2);
  });

  it("refuses a pinned host key that does not match, naming the host and both fingerprints", async () => {
    const wrong = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    await assert.rejects(openRemote({ ...conn(), hostKey: wrong }), (e: unknown) => {
      assert.ok(e instanceof HostKeyMismatchError);
      assert.match(e.message, new RegExp(`${lab().connection.host}:22`));
      assert.match(e.message, /expected SHA256:A{43}/);
      assert.match(e.message, /presented SHA256:[A-Za-z0-9+/]{43}/);
      return true;
    });
  });

  it("accepts a pin of every host key type the host holds (ed25519, ECDSA, RSA), in both forms, and asks for that key", async () => {
    const { fingerprintOf } = await import("../../provider/transport/hostKey");
    const types = lab().hostKeys.map((k) => k.split(" ")[0]);
    assert.deepEqual(types, ["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"]);
    const failures: string[] = [];
    for (const key of lab().hostKeys)
      for (const pin of [key, fingerprintOf(key)]) {
        closeAllRemotes();
        try {
          const presented = Object.values((await openRemote({ ...conn(), hostKey: pin })).hostKeys());
          if (presented[0] !== key) failures.push(`${pin}: presented ${presented[0]}`);
        } catch (e) {
          failures.push(`${pin}: ${(e as Error).message}`);
        }
      }
    assert.deepEqual(failures, []);
  });

  it("asks for exactly the recorded key's type (knownHostKeys holding the ECDSA key)", async () => {
    const ecdsa = lab().hostKeys[1];
    const remote = await openRemote(conn(), { [endpoint()]: ecdsa });
    assert.deepEqual(remote.hostKeys(), { [endpoint()]: ecdsa });
  });

  it("checks every caller's own pin on a pooled connection (opened unpinned, or pinned right)", async () => {
    const stray = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for (const first of [conn(), { ...conn(), hostKey: lab().connection.hostKey }]) {
      closeAllRemotes();
      fs.writeFileSync(traceFile, "");
      const pooled = await openRemote(first);
      await assert.rejects(openRemote({ ...conn(), hostKey: stray }), (e: unknown) => {
        assert.ok(e instanceof HostKeyMismatchError, String(e));
        assert.match(e.message, /expected SHA256:A{43}/);
        return true;
      });
      // A key recorded in the caller's state is that caller's too.
      await assert.rejects(openRemote(conn(), { [endpoint()]: strayKey().publicKey }), HostKeyMismatchError);
      assert.equal((await pooled.run("echo still")).stdout, "still\n", "the first caller keeps its connection");
      assert.equal(traceEvents(traceFile).filter((e) => e.event === "handshake").length, 1);
    }
  });

  it("gives another caller's right pin or recorded key of another type a connection of its own that presented that key, and records it", async () => {
    fs.writeFileSync(traceFile, "");
    const [ed25519, ecdsa, rsa] = lab().hostKeys;
    const pooled = await openRemote(conn());
    assert.deepEqual(pooled.hostKeys(), { [endpoint()]: ed25519 });
    const { fingerprintOf } = await import("../../provider/transport/hostKey");
    const byPin = await openRemote({ ...conn(), hostKey: fingerprintOf(ecdsa) });
    assert.deepEqual(byPin.hostKeys(), { [endpoint()]: ecdsa });
    const byState = await openRemote(conn(), { [endpoint()]: rsa });
    assert.deepEqual(byState.hostKeys(), { [endpoint()]: rsa });
    assert.equal((await byState.run("echo own")).stdout, "own\n");
    assert.equal((await byPin.run("echo own")).stdout, "own\n");
    assert.equal((await pooled.run("echo shared")).stdout, "shared\n");
    // Each key was checked in the handshake of the connection its caller's commands run on.
    assert.equal(traceEvents(traceFile).filter((e) => e.event === "handshake").length, 3, "a connection per key");
    // A caller that expects the key the shared connection presented shares it.
    fs.writeFileSync(traceFile, "");
    const same = await openRemote({ ...conn(), hostKey: ed25519 });
    assert.equal((await same.run("echo shared")).stdout, "shared\n");
    assert.equal(traceEvents(traceFile).filter((e) => e.event === "handshake").length, 0);
  });

  it("does not retry a failed authentication", async () => {
    const started = Date.now();
    // A key that was never authorized.
    const { execFileSync } = await import("node:child_process");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pnetns-key-"));
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "k")]);
    const stranger = fs.readFileSync(path.join(dir, "k"), "utf8");
    fs.rmSync(dir, { recursive: true, force: true });
    await assert.rejects(openRemote({ ...conn(), privateKey: stranger }), (e: unknown) => {
      assert.ok(e instanceof ConnectError);
      assert.match(e.message, /authentication to root@.* failed: the host refused the login of user "root"/);
      assert.match(
        e.message,
        /Check connection\.user, that the public half of the key is in ~root\/\.ssh\/authorized_keys/,
      );
      assert.ok(!e.message.includes(stranger.split("\n")[1]), "the key is not in the message");
      return true;
    });
    // A retried failure would take dialErrorLimit rounds with backoff: seconds, not milliseconds.
    assert.ok(Date.now() - started < 3_000, `gave up after ${Date.now() - started} ms`);
  });

  /** Runs `body` while collecting the provider's progress lines (what `pulumi up` shows from its stderr). */
  async function withProgress<T>(body: () => Promise<T>): Promise<{ value: T | Error; shown: string[]; ms: number }> {
    const shown: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => {
      for (const l of String(chunk).split("\n")) if (l.startsWith("[pulumi-netns] connecting")) shown.push(l);
      return true;
    }) as typeof process.stderr.write;
    const started = Date.now();
    try {
      const value = await body().catch((e: Error) => e);
      return { value, shown, ms: Date.now() - started };
    } finally {
      process.stderr.write = write;
    }
  }

  it("fails at once on a refused port with the default dialErrorLimit, naming connection.port", async () => {
    const { value, ms } = await withProgress(() => openRemote({ ...conn(), port: 2 }));
    assert.ok(value instanceof ConnectError, String(value));
    assert.match(
      value.message,
      /refused the connection to port 2: no SSH server listens there\. Check connection\.port/,
    );
    // Retried, it took 17 s (10 attempts with backoff).
    assert.ok(ms < 1_000, `gave up after ${ms} ms`);
  });

  it("fails at once on a name that does not resolve, naming connection.host", async () => {
    // The module object itself (an ES import's namespace is read-only): net looks lookup up on it per connection.
    const dns = require("node:dns") as typeof import("node:dns");
    const lookup = dns.lookup;
    // No query leaves this machine: the resolver is replaced for .invalid names.
    (dns as { lookup: unknown }).lookup = (host: string, ...rest: unknown[]) => {
      const cb = rest[rest.length - 1] as (e: Error) => void;
      process.nextTick(() => cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" })));
    };
    try {
      const { value, ms } = await withProgress(() => openRemote({ ...conn(), host: "no-such-host.invalid" }));
      assert.ok(value instanceof ConnectError, String(value));
      assert.match(
        value.message,
        /the name "no-such-host\.invalid" does not resolve \(ENOTFOUND\)\. Check connection\.host/,
      );
      assert.ok(ms < 1_000, `gave up after ${ms} ms`);
    } finally {
      (dns as { lookup: unknown }).lookup = lookup;
    }
  });

  it("retries a port that accepts TCP but never speaks SSH: dialErrorLimit dials of perDialTimeout each, each shown", async () => {
    // Counts the connections it accepts, and never answers them.
    const silent = lab().spawn([
      process.execPath,
      "-e",
      'let n = 0; require("net").createServer(() => console.log("accepted " + ++n)).listen(2222, "0.0.0.0", () => console.log("listening"))',
    ]);
    try {
      for (let i = 0; i < 50 && !silent.stdout().includes("listening"); i++)
        await new Promise((r) => setTimeout(r, 100));
      const { value, shown, ms } = await withProgress(() =>
        openRemote({ ...conn(), port: 2222, dialErrorLimit: 3, perDialTimeout: 1 }),
      );
      assert.ok(value instanceof ConnectError, String(value));
      assert.match(value.message, /cannot connect to root@.*:2222 after 3 attempts: the last one timed out after 1 s/);
      assert.equal(silent.stdout().match(/accepted \d+/g)?.length, 3, "3 dials reached the port");
      // 3 dials of 1 s and backoffs of 0.4 s and 0.8 s: a dial not bounded by perDialTimeout would take ssh2's 20 s.
      assert.ok(ms >= 4_000 && ms < 7_000, `gave up after ${ms} ms`);
      assert.deepEqual(
        shown.map((l) => l.replace(/root@[^:]+:\d+/, "H")),
        [
          "[pulumi-netns] connecting to H: attempt 1 of 3 timed out after 1 s; retrying in 0.4 s",
          "[pulumi-netns] connecting to H: attempt 2 of 3 timed out after 1 s; retrying in 0.8 s",
        ],
      );
    } finally {
      await silent.kill();
    }
  });

  it("retries a host whose packets are dropped (iptables DROP in the lab) until dialErrorLimit, then marks it as possibly gone", async () => {
    const rule = ["INPUT", "-p", "tcp", "--dport", String(lab().connection.port), "-j", "DROP"];
    await lab().exec(["iptables", "-I", ...rule]);
    try {
      const { value, shown, ms } = await withProgress(() =>
        openRemote({ ...conn(), dialErrorLimit: 2, perDialTimeout: 2 }),
      );
      assert.ok(value instanceof ConnectError, String(value));
      assert.match(value.message, /after 2 attempts: the last one timed out after 2 s\. The host does not answer/);
      // How to let go of it depends on the operation: the impl adds it (impl/opErrors.ts).
      assert.equal(value.hostMayBeGone, true);
      assert.doesNotMatch(value.message, /gone for good/);
      assert.equal(shown.length, 1, shown.join("\n"));
      assert.ok(ms >= 4_000 && ms < 6_500, `gave up after ${ms} ms`);
    } finally {
      await lab().exec(["iptables", "-D", ...rule]);
    }
  });

  it("runs a pinned caller's commands only on a connection whose own handshake presented its pin (a relay that sends only the first connection elsewhere)", async () => {
    // "evil": a second lab that accepts the real lab's client key; the relay (on loopback) sends
    // the first connection to it and every later one to the real lab, as an attacker in the path may.
    const { startLabHost } = await import("../../provider/testing/labHost");
    const { authorizeKey, CLIENT_KEY_FILE } = await import("../../provider/testing/sshd");
    const net = await import("node:net");
    const evil = await startLabHost({ name: `it-evil-${process.pid}` });
    const dirOf = (l: unknown) => (l as { state: { dir: string } }).state.dir;
    authorizeKey(dirOf(evil), path.join(dirOf(lab()), CLIENT_KEY_FILE));
    let accepted = 0;
    const relay = net.createServer((client) => {
      const to = accepted++ === 0 ? evil : lab();
      const upstream = net.connect(to.connection.port, to.connection.host);
      client.pipe(upstream).pipe(client);
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
    });
    await new Promise<void>((r) => relay.listen(0, "127.0.0.1", r));
    try {
      const via = {
        host: "127.0.0.1",
        port: (relay.address() as { port: number }).port,
        privateKey: conn().privateKey,
      };
      const serverOf = async (r: { run(s: string): Promise<{ stdout: string }> }) =>
        (await r.run("echo $SSH_CONNECTION")).stdout.trim().split(" ")[2];
      const a = await openRemote(via, {});
      assert.equal(await serverOf(a), evil.address, "the first connection reached the evil lab");
      const ecdsa = lab().hostKeys[1];
      const b = await openRemote({ ...via, hostKey: ecdsa }, {});
      assert.equal(await serverOf(b), lab().address, "B (pinned real ECDSA) runs on the real lab");
      assert.deepEqual(Object.values(b.hostKeys()), [ecdsa]);
      assert.equal(accepted, 2);
    } finally {
      closeAllRemotes();
      await new Promise((r) => relay.close(r));
      await evil.stop();
    }
  });

  it("fails at once when the jump host cannot reach the target's port, naming connection.port as seen from the jump host", async () => {
    const { value, shown, ms } = await withProgress(() =>
      openRemote({ host: "127.0.0.1", port: 2, privateKey: conn().privateKey, proxy: conn() }),
    );
    assert.ok(value instanceof ConnectError, String(value));
    assert.match(value.message, /jump host/);
    assert.match(value.message, /Check connection\.port/);
    assert.deepEqual(shown, []);
    assert.ok(ms < 3_000, `gave up after ${ms} ms`);
  });

  it("fails at once on an agent socket that does not exist, naming connection.agentSocketPath", async () => {
    const agentSocketPath = path.join(os.tmpdir(), `pnetns-no-agent-${process.pid}.sock`);
    const { value, shown, ms } = await withProgress(() =>
      openRemote({ host: conn().host, port: conn().port, agentSocketPath }),
    );
    assert.ok(value instanceof ConnectError, String(value));
    assert.match(value.message, /connection\.agentSocketPath/);
    assert.deepEqual(shown, []);
    assert.ok(ms < 3_000, `gave up after ${ms} ms`);
  });

  it("names the jump host's fields (connection.proxy.*) when the jump host's key cannot be used", async () => {
    const encrypted = await lab().addClientKey("right-passphrase");
    const { value } = await withProgress(() =>
      openRemote({
        host: "127.0.0.1",
        port: 22,
        privateKey: conn().privateKey,
        proxy: { ...conn(), privateKey: encrypted, privateKeyPassword: "wrong-passphrase" },
      }),
    );
    assert.ok(value instanceof ConnectError, String(value));
    assert.match(value.message, /connection\.proxy\.privateKeyPassword/);
    assert.doesNotMatch(value.message, /(^|[^.])connection\.privateKey/);
  });

  it("reports a refused login as such (not a host key mismatch) under a bare SHA256 pin of a non-preferred key type", async () => {
    const { fingerprintOf } = await import("../../provider/transport/hostKey");
    const { execFileSync } = await import("node:child_process");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pnetns-key-"));
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "k")]);
    const stranger = fs.readFileSync(path.join(dir, "k"), "utf8");
    fs.rmSync(dir, { recursive: true, force: true });
    const rsa = fingerprintOf(lab().hostKeys[2]);
    await assert.rejects(openRemote({ ...conn(), privateKey: stranger, hostKey: rsa }), (e: unknown) => {
      assert.ok(!(e instanceof HostKeyMismatchError), String(e));
      assert.ok(e instanceof ConnectError, String(e));
      assert.match(e.message, /authentication to root@.* failed: the host refused the login/);
      return true;
    });
  });

  it("connects and runs commands when the trace file cannot be written (the event is lost, not the connection)", async () => {
    closeAllRemotes();
    process.env.PULUMI_NETNS_TRACE = path.join(os.tmpdir(), `no-such-dir-${process.pid}`, "trace.jsonl");
    try {
      const remote = await openRemote({ ...conn(), dialErrorLimit: 2 });
      assert.equal((await remote.run("echo traced-or-not")).stdout, "traced-or-not\n");
    } finally {
      process.env.PULUMI_NETNS_TRACE = traceFile;
      closeAllRemotes();
    }
  });

  /** Kills the lab sshd's session processes: every connection to the lab drops at once. */
  const dropAllConnections = () =>
    lab().exec([
      "sh",
      "-c",
      'for p in $(pgrep -f "^sshd: root"); do [ "$(readlink /proc/$p/ns/net)" = "$(readlink /proc/self/ns/net)" ] && kill -9 $p; done; true',
    ]);
  const settled = <T>(p: Promise<T>): Promise<T | Error> => p.catch((e: Error) => e);

  it("gives a caller waiting for a shell a mismatch, not the shell of a connection another caller redialed to a key it does not accept", async () => {
    const pinned = lab().connection.hostKey;
    const p = await openRemote({ ...conn(), hostKey: pinned });
    await p.run("true");
    const rotated = await lab().rotateHostKey();
    // Q's state records the new key: it dials a connection of its own, and the stack now knows both keys.
    const q = await openRemote(conn(), { [endpoint()]: rotated });
    await q.run("true");
    // 4 commands hold P's 4 shells, 8 wait for one.
    const ps = Array.from({ length: 12 }, (_, i) => settled(p.run(i < 4 ? "sleep 2" : `echo p${i}`)));
    await new Promise((r) => setTimeout(r, 500));
    await dropAllConnections();
    await new Promise((r) => setTimeout(r, 200));
    // U (no pin, no state) accepts the stack's keys: the shared connection is redialed and presents the new one.
    const u = await openRemote(conn());
    await Promise.all(Array.from({ length: 4 }, () => u.run("true")));
    const results = await Promise.all(ps);
    const shown = results.map(
      (r, i) => `p${i}: ${r instanceof Error ? `${r.name}: ${r.message.split("\n")[0]}` : "OK"}`,
    );
    for (const [i, r] of results.entries()) {
      if (i < 4) assert.ok(r instanceof CommandError && r.code === null, shown.join("\n"));
      else assert.ok(r instanceof HostKeyMismatchError, shown.join("\n"));
    }
  });

  it("reports a host key mismatch met while opening a shell as the mismatch (never retryable, never 'cannot open a shell')", async () => {
    process.env.PULUMI_NETNS_SHELLS_PER_HOST = "1";
    try {
      const p = await openRemote({ ...conn(), hostKey: lab().connection.hostKey });
      await p.run("true");
      await lab().rotateHostKey();
      const busy = settled(p.run("sleep 2"));
      const queued = settled(p.run("echo queued"));
      await new Promise((r) => setTimeout(r, 500));
      await dropAllConnections();
      const [, got] = await Promise.all([busy, queued]);
      assert.ok(got instanceof HostKeyMismatchError, String(got));
    } finally {
      delete process.env.PULUMI_NETNS_SHELLS_PER_HOST;
    }
  });

  it("reports a connection that goes silent while a shell opens as a host that may be gone, naming connection.host and port", async () => {
    const rule = ["INPUT", "-p", "tcp", "--dport", String(lab().connection.port), "-j", "DROP"];
    const remote = await openRemote(conn());
    await lab().exec(["iptables", "-I", ...rule]);
    try {
      const got = await settled(remote.run("true"));
      assert.ok(got instanceof ConnectError, String(got));
      assert.equal(got.hostMayBeGone, true, got.message);
      assert.match(got.message, /connection\.host/);
      assert.match(got.message, /port 22/);
      assert.doesNotMatch(got.message, /login shell/);
    } finally {
      await lab().exec(["iptables", "-D", ...rule]);
    }
  });
});
