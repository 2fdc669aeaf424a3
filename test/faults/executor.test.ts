import { strict as assert } from "node:assert";
import { runScript } from "../../provider/impl/executor";
import { at } from "../../provider/kernel/namespace";
import { deleteNamespace } from "../../provider/kernel/netns";
import { sequence } from "../../provider/kernel/script";
import { CommandError, openRemote } from "../../provider/transport";
import { dropSshSessions, netnsList } from "../integration/support";
import { suiteLab } from "./support";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Processes in the lab whose command line is exactly `argv` (from /proc: the lab shares this machine's pids). */
async function processesRunning(
  lab: { exec(cmd: string[]): Promise<{ stdout: string }> },
  argv: string[],
): Promise<number> {
  const want = argv.join("\0");
  const script = `for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < "$f" 2>/dev/null; echo; done`;
  const lines = (await lab.exec(["sh", "-c", script])).stdout.split("\n");
  return lines.filter((l) => l.trim() === want.replaceAll("\0", " ")).length;
}

describe("impl/executor on a lab host: a dropped create leaves nothing behind; ip -batch stops at a failure", function () {
  this.timeout(120_000);
  const { lab, connection: conn } = suiteLab("it-exec");

  it("waits for the orphaned remote shell to finish, then undoes what it made, and says so", async () => {
    const remote = await openRemote(conn());
    // "late" appears only after the drop, "late-done" after it: an undo that did not wait would run
    // before "late" exists. The undo removes only "late"; "late-done" marks the orphan's end.
    const running = runScript(remote, sequence("sleep 1", "ip netns add late", "ip netns add late-done"), {
      what: 'namespace "late"',
      leftover: "remove it by hand",
      undo: () => remote.run(deleteNamespace("late")),
    });
    const outcome = running.then(
      () => undefined,
      (e: Error) => e,
    );
    try {
      await sleep(300);
      assert.ok((await dropSshSessions(lab())) >= 1, "a session was cut");
      const error = await outcome;
      assert.ok(error instanceof Error, "the create failed");
      assert.match(error.message, /did not finish/);
      assert.match(error.message, /namespace "late" was removed again/);
      // Looked at only once the orphaned script is over, whether or not the create waited for it.
      for (let i = 0; i < 250 && !(await netnsList(lab())).includes("late-done"); i++) await sleep(20);
      assert.deepEqual(
        (await netnsList(lab())).sort(),
        ["late-done"],
        "the orphan ran to its end; its object was undone",
      );
    } finally {
      for (const name of ["late", "late-done"]) await lab().exec(["ip", "netns", "del", name], { allowFailure: true });
    }
  });

  it("undoes an object the script had finished making before the connection dropped", async () => {
    const remote = await openRemote(conn());
    const outcome = runScript(remote, sequence("ip netns add early", "sleep 2"), {
      what: "x",
      leftover: "remove it by hand",
      undo: () => remote.run(deleteNamespace("early")),
    }).then(
      () => undefined,
      (e: Error) => e,
    );
    for (let i = 0; i < 100 && !(await netnsList(lab())).includes("early"); i++) await sleep(20);
    assert.deepEqual(await netnsList(lab()), ["early"]);
    await dropSshSessions(lab());
    assert.ok((await outcome) instanceof Error);
    assert.deepEqual(await netnsList(lab()), []);
  });

  it("an ip -batch stops at the first command that fails and exits non-zero with the kernel's error", async () => {
    const remote = await openRemote(conn());
    const script = at(undefined).ipBatch([
      ["link", "add", "bx1", "type", "bridge"],
      ["link", "set", "dev", "no-such-dev", "up"],
      ["link", "add", "bx2", "type", "bridge"],
    ]);
    const r = await remote.run(script, { allowFailure: true });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /no-such-dev/);
    const links = JSON.parse((await remote.run("ip -j link show type bridge")).stdout).map(
      (l: { ifname: string }) => l.ifname,
    );
    assert.deepEqual(links, ["bx1"]);
    await remote.run("ip link del bx1");
  });

  it("undoes nothing while the command still runs at the bound, and says the object may exist", async () => {
    const remote = await openRemote(conn());
    let undone = false;
    const outcome = runScript(remote, sequence("sleep 13", "ip netns add slow"), {
      what: 'namespace "slow"',
      leftover: "remove it by hand (ip netns delete slow)",
      undo: async () => {
        undone = true;
      },
    }).then(
      () => undefined,
      (e: Error) => e,
    );
    await sleep(300);
    await dropSshSessions(lab());
    const error = await outcome;
    assert.match(
      error?.message ?? "",
      /still running on the host after about 10 s: namespace "slow" may exist on root@\S+ without being recorded: remove it by hand \(ip netns delete slow\)\./,
    );
    assert.equal(undone, false);
    for (let i = 0; i < 300 && !(await netnsList(lab())).includes("slow"); i++) await sleep(20);
    assert.deepEqual(await netnsList(lab()), ["slow"], "the orphaned command finished after all");
    await remote.run(deleteNamespace("slow"));
  });

  it("passes an ordinary failure through as the command error, without running the undo", async () => {
    const remote = await openRemote(conn());
    let undone = false;
    const undo = async () => {
      undone = true;
    };
    await assert.rejects(
      runScript(remote, sequence("ip netns add kept", "exit 3"), { what: "x", leftover: "", undo }),
      (e) => {
        assert.ok(e instanceof CommandError);
        assert.equal(e.code, 3);
        return true;
      },
    );
    assert.equal(undone, false);
    assert.deepEqual(await netnsList(lab()), ["kept"]);
    await remote.run(deleteNamespace("kept"));
  });

  it("a create that runs out of commandTimeout: its command is killed on the host, what it made is removed, and nothing appears later", async () => {
    // A unique sleep, so that the count is of this test's process only.
    const hang = ["sleep", "31.4159"];
    const remote = await openRemote({ ...conn(), commandTimeout: 2 });
    const started = Date.now();
    const error = await runScript(remote, sequence("ip netns add half", hang.join(" "), "ip netns add late2"), {
      what: 'namespace "half"',
      leftover: "remove it by hand",
      undo: () => remote.run(deleteNamespace("half")),
    }).then(
      () => undefined,
      (e: Error) => e,
    );
    const ms = Date.now() - started;
    assert.ok(error instanceof Error, "the create failed");
    assert.match(error.message, /did not finish within 2 s \(connection\.commandTimeout; raise it for a slow host\)/);
    assert.match(error.message, /namespace "half" was removed again; nothing is left half-made/);
    assert.ok(ms < 6_000, `the create failed after ${ms} ms`);
    assert.equal(await processesRunning(lab(), hang), 0, "the hung command was killed");
    await sleep(1_000);
    assert.deepEqual(await netnsList(lab()), [], "nothing was made after the error");
  });

  it("a read that runs out of commandTimeout: its command is killed on the host too", async () => {
    const hang = ["sleep", "27.1828"];
    const remote = await openRemote({ ...conn(), commandTimeout: 1 });
    await assert.rejects(runScript(remote, sequence(hang.join(" "), "true")), /did not finish within 1 s/);
    assert.equal(await processesRunning(lab(), hang), 0, "the hung command was killed");
  });
});
