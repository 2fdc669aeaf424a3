import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "../../../../provider/impl/bridge";
import * as transport from "../../../../provider/transport";
import { CommandError, ConnectError, type Remote } from "../../../../provider/transport";
import { checkedInputs } from "./support";

/**
 * A Remote that runs scripts in a local /bin/sh with a fake `ip`:
 * the bridge is made, its rules fail, and removing it again fails as a host
 * that stopped answering does.
 */
function fakeHost(): Remote & { sent: string[]; bin: string } {
  const sent: string[] = [];
  // An executable first on PATH, not a shell function: the create runs under flock in an `sh -c` of its own,
  // where a function is not defined and the host's real `ip` would run.
  const bin = mkdtempSync(join(tmpdir(), "pnetns-fake-ip-"));
  const fakeIp = `#!/bin/sh\ncase "$*" in *-batch*) cat >/dev/null; echo '[{"ifindex":7,"ifname":"v-net-0","flags":["UP"],"mtu":1500,"address":"02:00:00:00:00:07","addr_info":[]}]';; esac\nexit 0\n`;
  writeFileSync(join(bin, "ip"), fakeIp, { mode: 0o755 });
  const fakes = `PATH=${bin}:$PATH; export PATH`;
  return {
    label: "root@fake:22",
    sent,
    bin,
    hostKeys: () => ({}),
    async run(text) {
      sent.push(text);
      // Adding the FORWARD rule: the outcome is unknown, and the error says what may be left (as runScript's does).
      if (/FORWARD/.test(text))
        throw new Error(
          "the bridge rules pulumi-netns:bridge/x may exist on root@fake:22 without being recorded: list them with iptables-save | grep -- pulumi-netns:bridge/x",
        );
      if (/link del/.test(text) && !/link add/.test(text))
        throw new ConnectError("cannot connect to root@fake:22: timed out after 15 s", true, true);
      const r = spawnSync("/bin/sh", ["-c", `${fakes}\n${text}`], { encoding: "utf8" });
      if (r.status !== 0) throw new CommandError("root@fake:22", text, r.status, r.stdout, r.stderr);
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    },
  };
}

describe("impl/bridge create: a failed rule set", () => {
  const real = transport.openRemote;
  afterEach(() => {
    (transport as { openRemote: unknown }).openRemote = real;
  });

  it("keeps the rule set's error when removing the bridge again fails too, and says how to remove it by hand", async () => {
    const host = fakeHost();
    (transport as { openRemote: unknown }).openRemote = async () => host;
    const inputs = await checkedInputs("bridge");
    await assert.rejects(create(inputs as never), (e: unknown) => {
      const message = (e as Error).message;
      assert.match(
        message,
        /the bridge rules pulumi-netns:bridge\/x may exist .* iptables-save \| grep -- pulumi-netns:bridge\/x/,
        message,
      );
      assert.match(message, /removing the bridge again failed: cannot connect to root@fake:22: timed out/, message);
      assert.match(message, /remove it by hand: ip link del/, message);
      return true;
    });
    rmSync(host.bin, { recursive: true, force: true });
    assert.ok(
      host.sent.some((s) => /link del/.test(s) && !/link add/.test(s)),
      "the bridge's removal was tried",
    );
  });
});
