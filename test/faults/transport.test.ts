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

  it("accepts another caller's right pin or recorded key of another type on the pooled connection, and records that key", async () => {
    fs.writeFileSync(traceFile, "");
    const [ed25519, ecdsa, rsa] = lab().hostKeys;
    const pooled = await openRemote(conn());
    assert.deepEqual(pooled.hostKeys(), { [endpoint()]: ed25519 });
    const { fingerprintOf } = await import("../../provider/transport/hostKey");
    const byPin = await openRemote({ ...conn(), hostKey: fingerprintOf(ecdsa) });
    assert.deepEqual(byPin.hostKeys(), { [endpoint()]: ecdsa });
    const byState = await openRemote(conn(), { [endpoint()]: rsa });
    assert.deepEqual(byState.hostKeys(), { [endpoint()]: rsa });
    assert.equal((await byState.run("echo shared")).stdout, "shared\n");
    assert.equal(traceEvents(traceFile).filter((e) => e.event === "handshake").length, 1, "one logged-in connection");
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
      assert.match(e.message, /authentication to root@.* failed/);
      assert.ok(!e.message.includes(stranger.split("\n")[1]), "the key is not in the message");
      return true;
    });
    // A retried failure would take dialErrorLimit (10) rounds with backoff: seconds, not milliseconds.
    assert.ok(Date.now() - started < 3_000, `gave up after ${Date.now() - started} ms`);
  });

  it("gives up dialing after dialErrorLimit attempts of perDialTimeout each", async () => {
    const started = Date.now();
    await assert.rejects(
      openRemote({ ...conn(), port: 2, dialErrorLimit: 2, perDialTimeout: 1 }),
      /cannot connect to root@.*:2 after 2 attempts/,
    );
    assert.ok(Date.now() - started < 10_000);
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
});
