import { strict as assert } from "node:assert";
import type { LabHost, PulumiStack } from "../../provider/testing";
import { testingKit, writeProgram } from "../support/harness";
import { program } from "./programs";
import { labConfig, ok } from "./support";

/**
 * Writing the global forwarding switch (net.ipv4.ip_forward,
 * net.ipv6.conf.all.forwarding) rewrites every interface's own `forwarding`
 * and default's; IPv6 does so even when the value does not change. Destroy
 * must leave each interface's value as it found it, not only the global one
 * (issue #10: "destroy leaves the host as it was"). Two MasqueradeRules, one
 * per family, out of the lab's eth0; no traffic.
 */

const BODY = `
new netns.MasqueradeRule("fw4", { connection, source: "10.77.0.0/24", outInterface: "eth0" });
new netns.MasqueradeRule("fw6", { connection, source: "fd00:77::/64", outInterface: "eth0" });
`;

const V4 = "/proc/sys/net/ipv4/conf";
const V6 = "/proc/sys/net/ipv6/conf";

describe("interface forwarding values survive up and destroy (lab host, real engine)", function () {
  this.timeout(600_000);
  let lab: LabHost;
  const stacks: PulumiStack[] = [];
  const log: string[] = [];

  const set = (pairs: Array<[string, string]>) =>
    lab.exec(["sh", "-c", pairs.map(([path, v]) => `echo ${v} > ${path}/forwarding`).join("; ")]);
  const get = async (path: string) => (await lab.exec(["cat", `${path}/forwarding`])).stdout.trim();

  before(async () => {
    lab = await testingKit().startLabHost({ name: `it-fwd-${process.pid}` });
  });

  after(async () => {
    for (const s of stacks) await s.destroy().catch(() => undefined);
    if (lab) await lab.stop();
  });

  async function upAndDestroy(name: string, during: () => Promise<void>): Promise<void> {
    const dir = writeProgram(name, program(BODY));
    const stack = new (testingKit().PulumiStack)({ programDir: dir, config: labConfig(lab), log: (l) => log.push(l) });
    stacks.push(stack);
    ok(await stack.up(), log);
    await during();
    ok(await stack.destroy(), log);
  }

  it("global switches off, eth0 forwarding on in both families: destroy leaves eth0 on and the globals off", async () => {
    await set([
      [`${V4}/all`, "0"],
      [`${V6}/all`, "0"],
      [`${V4}/eth0`, "1"],
      [`${V6}/eth0`, "1"],
    ]);
    const before = await testingKit().fingerprint(lab);
    await upAndDestroy("fwd-off", async () => {
      assert.equal(await get(`${V4}/all`), "1", "the MasqueradeRule switched IPv4 forwarding on");
      assert.equal(await get(`${V6}/all`), "1", "the MasqueradeRule switched IPv6 forwarding on");
    });
    assert.deepEqual(
      [await get(`${V4}/eth0`), await get(`${V6}/eth0`), await get(`${V4}/all`), await get(`${V6}/all`)],
      ["1", "1", "0", "0"],
      "eth0 v4, eth0 v6, all v4, all v6 after destroy",
    );
    assert.equal(await testingKit().fingerprint(lab), before);
  });

  it("global switches on, eth0 forwarding off in both families: destroy leaves eth0 off", async () => {
    await set([
      [`${V4}/all`, "1"],
      [`${V6}/all`, "1"],
      [`${V4}/eth0`, "0"],
      [`${V6}/eth0`, "0"],
      [`${V4}/default`, "0"],
    ]);
    const before = await testingKit().fingerprint(lab);
    await upAndDestroy("fwd-on", async () => undefined);
    assert.deepEqual([await get(`${V4}/eth0`), await get(`${V6}/eth0`)], ["0", "0"], "eth0 v4, eth0 v6 after destroy");
    assert.equal(await testingKit().fingerprint(lab), before);
  });
});
