import { strict as assert } from "node:assert";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { killTree, readAll, runScript, shellStart } from "../../../../provider/impl/executor";
import { LOCK_TIMEOUT } from "../../../../provider/kernel/hostLock";
import { allOrNothing, bestEffort, creation, script, sequence, step } from "../../../../provider/kernel/script";
import { CommandError, type Remote } from "../../../../provider/transport";

/** A command that fails with `code` (a bare `exit` would end the whole script, not the step). */
const failWith = (code: number) => `sh -c 'exit ${code}'`;

/** A Remote that runs scripts in a local /bin/sh and records what it was sent. */
function localShell(): Remote & { sent: string[] } {
  const sent: string[] = [];
  return {
    label: "local",
    sent,
    hostKeys: () => ({}),
    async run(text) {
      sent.push(text);
      const r = spawnSync("/bin/sh", ["-c", text], { encoding: "utf8" });
      if (r.status !== 0) throw new CommandError("local", text, r.status, r.stdout, r.stderr);
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    },
  };
}

describe("impl/executor: running scripts (on a local shell)", () => {
  it("returns each step's output in order, without trailing newlines, in one round trip", async () => {
    const remote = localShell();
    const outputs = await runScript(remote, sequence("echo one", "printf two", "true", "echo three; echo four"));
    assert.deepEqual(outputs, ["one", "two", "", "three\nfour"]);
    assert.equal(remote.sent.length, 1);
  });

  it("sends a lone step as it is, and nothing for a script without steps", async () => {
    const remote = localShell();
    assert.deepEqual(await runScript(remote, sequence()), []);
    assert.deepEqual(await runScript(remote, sequence("echo only")), ["only"]);
    // After the line that identifies the shell (its start time), with nothing around the step.
    assert.equal(remote.sent.length, 1);
    assert.match(remote.sent[0], /^read -r pnetns_self [^\n]*\necho only$/);
  });

  it("stops at the first step that fails, with its exit code", async () => {
    const remote = localShell();
    await assert.rejects(runScript(remote, sequence("echo a", failWith(3), "echo never >&2")), (e) => {
      assert.ok(e instanceof CommandError);
      assert.equal(e.code, 3);
      assert.equal(e.stderr, "");
      return true;
    });
  });

  it("names the failing step's own command in the error, not the script around it", async () => {
    const failing = "echo boom >&2; sh -c 'exit 5'";
    const noNewline = "printf boom >&2; sh -c 'exit 5'";
    for (const s of [
      sequence("echo a", failing, "echo b"),
      allOrNothing(["true", failing], ["true"]),
      sequence("echo a", noNewline),
    ])
      await assert.rejects(runScript(localShell(), s), (e) => {
        assert.ok(e instanceof CommandError);
        assert.equal(e.code, 5);
        assert.ok(e.command === failing || e.command === noNewline, e.command);
        assert.equal(e.stderr, "boom");
        assert.equal(e.message, `command on local failed with exit code 5: ${e.command}\nboom`);
        return true;
      });
  });

  it("tells a known kernel failure in the script's field terms, without the shell text, both for a lone step and a marked one", async () => {
    // What `ip -n ke-a -batch` printed on a lab host for a gateway outside every connected subnet (fixtures/kernel-errors).
    const failing = "printf '%s\\n' 'Error: Nexthop has invalid gateway.' 'Command failed -:1' >&2; sh -c 'exit 2'";
    const lookups = [{ field: "via", value: "10.55.0.1", kind: "gateway" as const, namespace: "mgmt" }];
    for (const steps of [sequence(failing), sequence("echo a", failing)]) {
      const s = { ...steps, lookups };
      await assert.rejects(runScript(localShell(), s), (e) => {
        assert.ok(e instanceof CommandError);
        assert.equal(e.code, 2);
        assert.equal(e.command, failing, "the step stays on the error, for code that reads it");
        assert.equal(
          e.message,
          'via: 10.55.0.1 is not in a subnet connected in namespace "mgmt" on local: no interface there that is up ' +
            "has an address whose subnet holds it (other than as its broadcast address): add such an address to an interface there, or fix via " +
            "(for a PodNetwork's route to another node: that node's nodeAddress or nodeAddress6, which must be on a link both nodes share)\n" +
            "(ip said: Error: Nexthop has invalid gateway.)",
        );
        assert.ok(!e.stack?.includes("printf"), e.stack);
        return true;
      });
    }
  });

  it("runs the undo when an undone step fails, and exits with the step's code", async () => {
    const remote = localShell();
    const marker = `/tmp/pulumi-netns-executor-${process.pid}`;
    await assert.rejects(
      runScript(remote, allOrNothing([`touch ${marker}`, failWith(4)], [`rm -f ${marker}`, "echo undone >&2"])),
      (e) => e instanceof CommandError && e.code === 4 && !e.stderr.includes("undone"),
    );
    assert.equal(spawnSync("test", ["-e", marker]).status, 1, "the undo ran");
  });

  it("does not undo a creation whose make failed: the name may be someone else's", async () => {
    const remote = localShell();
    const marker = `/tmp/pulumi-netns-executor-make-${process.pid}`;
    spawnSync("touch", [marker]);
    try {
      await assert.rejects(runScript(remote, creation(failWith(2), ["true"], [`rm -f ${marker}`])), /exit code 2/);
      assert.equal(spawnSync("test", ["-e", marker]).status, 0, "nothing was undone");
      await assert.rejects(runScript(remote, creation("true", [failWith(5)], [`rm -f ${marker}`])), /exit code 5/);
      assert.equal(spawnSync("test", ["-e", marker]).status, 1, "a failing step after the make was undone");
    } finally {
      spawnSync("rm", ["-f", marker]);
    }
  });

  it("goes on past a best-effort step, and reads yield what they printed", async () => {
    const remote = localShell();
    const outputs = await runScript(
      remote,
      script([bestEffort(`echo half; echo noise >&2; ${failWith(1)}`), step("echo b")]),
    );
    assert.deepEqual(outputs, ["half", "b"]);
    assert.deepEqual(await readAll(remote, ["false", "echo x"]), ["", "x"]);
  });

  it("a command that did not finish is told by its steps' own commands, never the rendered script", async () => {
    const sent: string[] = [];
    const timingOut: Remote = {
      label: "local",
      hostKeys: () => ({}),
      async run(text) {
        sent.push(text);
        throw new CommandError("local", text, null, "", "", undefined, 1000);
      },
    };
    const s = creation("ip netns add red", ["ip -n red link set lo up"], ["ip netns del red"]);
    for (const making of [undefined, { what: 'namespace "red"', leftover: "remove it by hand" }])
      await assert.rejects(runScript(timingOut, s, making), (e) => {
        const message = (e as Error).message;
        assert.match(
          message,
          /did not finish within 1 s \(connection\.commandTimeout; raise it for a slow host\): ip netns add red; ip -n red link set lo up/,
        );
        for (const plumbing of ["--pulumi-netns-failed-step--", "s0=$(", "pnetns_self", "printf"])
          assert.ok(!message.includes(plumbing), message);
        return true;
      });
  });

  it("the first line a command prints is its shell's start time, from /proc/PID/stat", async () => {
    let text = "";
    const remote = localShell();
    const recording: Remote = {
      ...remote,
      async run(t) {
        const r = spawnSync("/bin/sh", ["-c", `${t}\ncat /proc/$$/stat`], { encoding: "utf8" });
        text = r.stdout;
        return { code: 0, stdout: r.stdout, stderr: r.stderr };
      },
    };
    await runScript(recording, sequence("true", "true"));
    assert.match(text, /^--pulumi-netns-shell-- \d+\n/);
    const stat = text.trimEnd().split("\n").pop() ?? "";
    assert.equal(shellStart(text), stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  });

  it("killTree kills only the process that started at the recorded time: a reused pid is left alone", async () => {
    const victim = spawn("sleep", ["60"], { stdio: "ignore" });
    try {
      const pid = victim.pid as number;
      await new Promise((r) => setTimeout(r, 100));
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
      const other = String(Number(start) + 1);
      const foreign = spawnSync("/bin/sh", ["-c", killTree(pid, other)], { encoding: "utf8" });
      assert.equal(foreign.stdout.trim(), "not-ours");
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(victim.exitCode, null, "the process with another start time lives");
      assert.equal(victim.signalCode, null);
      assert.ok(!/^\S+ \([^)]*\) T/.test(readFileSync(`/proc/${pid}/stat`, "utf8")), "and is not left stopped");
      const own = spawnSync("/bin/sh", ["-c", killTree(pid, start)], { encoding: "utf8" });
      assert.equal(own.stdout.trim(), "killed");
      await new Promise((r) => victim.once("exit", r));
      assert.equal(victim.signalCode, "SIGKILL");
    } finally {
      victim.kill("SIGKILL");
    }
  });

  // Issue #10 item 8 (trial): flock waited 60 s whatever connection.commandTimeout was, so a 1 s timeout
  // fired first and the error said the command was slow instead of naming the lock.
  it("a locked script waits for the lock only within the connection's commandTimeout, then fails with the lock's own code", async function () {
    this.timeout(10_000);
    const dir = mkdtempSync(join(tmpdir(), "exec-lock-"));
    const lock = join(dir, "lock");
    const holder = spawn("flock", [lock, "sleep", "8"], { stdio: "ignore" });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const remote = { ...localShell(), commandTimeoutSeconds: 1 };
      const started = Date.now();
      const e = await runScript(remote, { ...sequence("true"), lock }).then(
        () => assert.fail("the lock is held: the script must not run"),
        (err: CommandError) => err,
      );
      const waited = Date.now() - started;
      assert.equal(e.code, LOCK_TIMEOUT, e.message);
      assert.ok(waited < 1_000, `waited ${waited} ms for the lock with a 1 s commandTimeout`);
      assert.match(remote.sent[0], /flock -w 0\.5 /);
    } finally {
      holder.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
