import { strict as assert } from "node:assert";
import { create as createBridge } from "../../provider/impl/bridge";
import { runScript } from "../../provider/impl/executor";
import { create as createNamespace } from "../../provider/impl/namespace";
import { at } from "../../provider/kernel/namespace";
import { deleteNamespace } from "../../provider/kernel/netns";
import { creation, sequence } from "../../provider/kernel/script";
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

/**
 * In the lab's private mount namespace only (a tmpfs over its /usr/local/sbin,
 * first in the remote shell's PATH): `ip` sleeps 3 s the first time it runs,
 * then is the real one. Returns the undo.
 */
async function slowIpOnce(lab: {
  exec(cmd: string[], opts?: { allowFailure?: boolean }): Promise<unknown>;
}): Promise<() => Promise<void>> {
  const flag = `/run/pnetns-test-ip-slept-${process.pid}`;
  await lab.exec(["mount", "-t", "tmpfs", "-o", "mode=0755,size=1m", "pnetns-test-slow-ip", "/usr/local/sbin"]);
  const wrapper = `#!/bin/sh\nif [ ! -e ${flag} ]; then : > ${flag}; sleep 3; fi\nexec /usr/sbin/ip "$@"\n`;
  await lab.exec(["sh", "-c", `printf '${wrapper}' > /usr/local/sbin/ip && chmod 0755 /usr/local/sbin/ip`]);
  return async () => {
    await lab.exec(["umount", "/usr/local/sbin"], { allowFailure: true });
    await lab.exec(["rm", "-f", flag], { allowFailure: true });
  };
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

  it("a create that succeeds leaves no made-mark in /run (the client removes it once it has read the output)", async () => {
    const remote = await openRemote(conn());
    const made = async () =>
      (await lab().exec(["sh", "-c", "ls /run | grep -c '^pulumi-netns-made' || true"])).stdout.trim();
    assert.equal(await made(), "0");
    await runScript(remote, creation("ip netns add marked", [], ["ip netns del marked"]), {
      what: 'namespace "marked"',
      leftover: "",
    });
    assert.equal(await made(), "0", "a made-mark was left in /run");
    await remote.run(deleteNamespace("marked"));
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

  it("a Namespace create that times out in its make step leaves the user's own namespace of that name, and says so", async () => {
    let restore = async () => {};
    try {
      await lab().exec(["ip", "netns", "add", "red"]);
      await lab().exec(["ip", "-n", "red", "link", "add", "userlink", "type", "bridge"]);
      restore = await slowIpOnce(lab());
      const error = await createNamespace({
        name: "red",
        loopbackUp: true,
        adopt: false,
        connection: { ...conn(), commandTimeout: 1 },
      } as Parameters<typeof createNamespace>[0]).then(
        () => undefined,
        (e: Error) => e,
      );
      assert.ok(error instanceof Error, "the create failed");
      assert.doesNotMatch(error.message, /removed again/);
      assert.match(
        error.message,
        /did not finish within 1 s \(connection\.commandTimeout; raise it for a slow host\): ip netns add red; ip .-n. red link set dev lo alias pulumi-netns:netns\/[0-9a-f]+; ip .-n. red link set lo up\n/,
      );
      assert.match(error.message, /namespace "red" was not removed: making it had not been seen to succeed/);
      assert.ok(!error.message.includes("pulumi-netns-failed-step"), error.message);
      await sleep(3_500);
      assert.deepEqual(await netnsList(lab()), ["red"], "the user's namespace is still there");
      const links = (await lab().exec(["ip", "-n", "red", "-o", "link", "show"])).stdout;
      assert.match(links, /userlink/, "with its link");
    } finally {
      await restore();
      await lab().exec(["ip", "netns", "del", "red"], { allowFailure: true });
    }
  });

  it("a Bridge create that times out in its make step leaves the user's own bridge of that name", async () => {
    let restore = async () => {};
    try {
      await lab().exec(["ip", "link", "add", "ubr0", "type", "bridge"]);
      restore = await slowIpOnce(lab());
      const error = await createBridge({
        name: "ubr0",
        addresses: [],
        up: true,
        adopt: false,
        connection: { ...conn(), commandTimeout: 1 },
      } as unknown as Parameters<typeof createBridge>[0]).then(
        () => undefined,
        (e: Error) => e,
      );
      assert.ok(error instanceof Error, "the create failed");
      assert.doesNotMatch(error.message, /removed again/);
      assert.match(error.message, /bridge "ubr0" was not removed/);
      await sleep(3_500);
      const links = (await lab().exec(["ip", "-o", "link", "show", "dev", "ubr0"], { allowFailure: true })).stdout;
      assert.match(links, /ubr0/, "the user's bridge is still there");
    } finally {
      await restore();
      await lab().exec(["ip", "link", "del", "ubr0"], { allowFailure: true });
    }
  });

  it("a timed-out create that did make its object removes it, its undo not bound by a short commandTimeout", async () => {
    const remote = await openRemote({ ...conn(), commandTimeout: 1 });
    const s = creation("ip netns add cb", ["sleep 23.4567"], ["sleep 2; ip netns del cb"]);
    const error = await runScript(remote, s, { what: 'namespace "cb"', leftover: "remove it by hand" }).then(
      () => undefined,
      (e: Error) => e,
    );
    try {
      assert.ok(error instanceof Error, "the create failed");
      assert.match(error.message, /namespace "cb" was removed again; nothing is left half-made/);
      assert.deepEqual(await netnsList(lab()), [], "removed before the error");
      assert.equal(await processesRunning(lab(), ["sleep", "23.4567"]), 0, "the hung step was killed");
    } finally {
      await lab().exec(["ip", "netns", "del", "cb"], { allowFailure: true });
    }
  });
});
