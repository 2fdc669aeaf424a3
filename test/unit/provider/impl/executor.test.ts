import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { readAll, runScript } from "../../../../provider/impl/executor";
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
    assert.deepEqual(remote.sent, ["echo only"]);
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
          'via: 10.55.0.1 is not in a subnet connected in namespace "mgmt" on local: give an interface there that is up ' +
            "an address in the gateway's subnet (not its broadcast address), or fix via\n" +
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
});
