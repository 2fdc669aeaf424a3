import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lockedCommit } from "../../../../provider/impl/lockedCommit";
import { creation, sequence } from "../../../../provider/kernel/script";
import { CommandError, type Remote } from "../../../../provider/transport";

/**
 * A Remote running scripts in a local /bin/sh (root's iptables-save is only
 * read), calling `between` after each read-only round trip: another owner's
 * commit landing between a commit's read and its run.
 */
function localShell(between: (sent: number) => void): Remote & { sent: string[] } {
  const sent: string[] = [];
  return {
    label: "local",
    sent,
    hostKeys: () => ({}),
    async run(text) {
      sent.push(text);
      const r = spawnSync("/bin/sh", ["-c", text], { encoding: "utf8" });
      if (!text.includes("flock")) between(sent.length);
      if (r.status !== 0) throw new CommandError("local", text, r.status, r.stdout, r.stderr);
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    },
  };
}

describe("impl/lockedCommit: a check and its change in one locked commit", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "pnetns-locked-"));
    writeFileSync(join(dir, "claims"), "");
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** Refuses when the claims file says "taken", the way a collision check refuses what the host has. */
  const check = () => ({
    reads: [`cat ${join(dir, "claims")}`],
    watch: `cat ${join(dir, "claims")}`,
    refuse([claims]: string[]) {
      if (claims.includes("taken")) throw new Error("refused: already taken by the other commit");
    },
  });
  const make = () => sequence(`echo taken > ${join(dir, "claims")}`, `touch ${join(dir, "made")}`);

  it("another commit between the read and the run: the guard sees it, the check runs again on the new read and refuses; nothing is made", async () => {
    const remote = localShell((n) => n === 1 && writeFileSync(join(dir, "claims"), "taken"));
    await assert.rejects(
      lockedCommit(remote, undefined, [], () => ({ script: make(), result: undefined }), [check()]),
      /refused: already taken by the other commit/,
    );
    assert.ok(!existsSync(join(dir, "made")), "the refused commit ran its change");
    assert.equal(remote.sent.length, 3, "read, guarded run (CHANGED), read again: nothing after the refusal");
  });

  it("nothing in between: the check passes and the change runs under the lock, after the guard", async () => {
    const remote = localShell(() => undefined);
    await lockedCommit(remote, undefined, [], () => ({ script: make(), result: undefined }), [check()]);
    assert.ok(existsSync(join(dir, "made")));
    assert.match(
      remote.sent[1],
      /^flock -w \d+ -E \d+ '?\/run\/pulumi-netns\.lock'? sh -c '\[ "\$\(sh .*\|\| exit 73$/m,
    );
  });

  it("a creation's guard comes before its make step: the made-mark still follows the make step", async () => {
    const remote = localShell(() => undefined);
    const s = creation(`touch ${join(dir, "made")}`, ["true"], [`rm -f ${join(dir, "made")}`]);
    await lockedCommit(
      remote,
      undefined,
      [],
      () => ({ script: s, making: { what: "a file", leftover: "remove it" }, result: undefined }),
      [check()],
    );
    const text = remote.sent[1];
    const guard = text.indexOf("exit 73");
    const makeStep = text.indexOf(`touch ${join(dir, "made")}`);
    const mark = text.indexOf("/run/pulumi-netns-made.");
    assert.ok(guard >= 0 && guard < makeStep && makeStep < mark, text);
  });

  it("a host that changes between every read and run: after the last attempt, says so and that nothing ran (not exit 73 and the steps)", async () => {
    const remote = localShell((n) => writeFileSync(join(dir, "claims"), `changed ${n}`));
    await assert.rejects(
      lockedCommit(remote, undefined, [], () => ({ script: make(), result: undefined }), [check()]),
      (e: Error) => {
        assert.match(e.message, /changed between reading them and committing, 20 times in a row; nothing was changed/);
        assert.doesNotMatch(e.message, /exit code 73|touch /);
        return true;
      },
    );
    assert.ok(!existsSync(join(dir, "made")), "a guarded change ran");
  });
});
