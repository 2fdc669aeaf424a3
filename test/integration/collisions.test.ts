import { strict as assert } from "node:assert";
import type { LabHost, PulumiStack } from "../../provider/testing";
import { rewriteProgram, testingKit, writeProgram } from "../support/harness";
import { program } from "./programs";
import { labConfig, ok } from "./support";

/**
 * Issue #10 item 5, through the real engine on one lab host: the collision
 * check and the change it guards are one commit under the host lock, so
 * resources of one program (which the engine creates in parallel) cannot
 * both take one host port or one network; and an update that adds an
 * address is checked as a create is. Each refusal names both sides and
 * leaves nothing of the refused resource.
 */

interface IpRoute {
  dst: string;
  dev?: string;
}

describe("collisions: refused exactly, under the host lock (real engine)", function () {
  this.timeout(900_000);
  let lab: LabHost;
  let pristine: string;
  const stacks: PulumiStack[] = [];
  const log: string[] = [];

  const newStack = (name: string, body: string) => {
    const kit = testingKit();
    const dir = writeProgram(name, program(body));
    const stack = new kit.PulumiStack({ programDir: dir, config: labConfig(lab), log: (l) => log.push(l) });
    stacks.push(stack);
    return { stack, dir };
  };

  /** The nat rules (iptables -S) forwarding `port`. */
  const forwardsOf = async (port: number) =>
    (await lab.exec(["iptables", "-t", "nat", "-S"])).stdout
      .split("\n")
      .filter((l) => l.startsWith("-A PREROUTING") && l.includes(`--dport ${port} `));
  const routesTo = async (dst: string) =>
    (JSON.parse((await lab.exec(["ip", "-j", "route", "show", "table", "all"])).stdout || "[]") as IpRoute[]).filter(
      (r) => r.dst === dst,
    );

  before(async () => {
    const kit = testingKit();
    lab = await kit.startLabHost({ name: `it-coll-${process.pid}` });
    pristine = await kit.fingerprint(lab);
  });

  after(async () => {
    for (const s of stacks.reverse()) await s.destroy().catch(() => undefined);
    if (lab) await lab.stop();
  });

  it("three PortForwards of host port 8095 in one program (created in parallel): one is made, the others are refused naming it", async () => {
    const forwards = [2, 3, 4]
      .map(
        (n) =>
          `new netns.PortForward("pf${n}", { connection, hostPort: 8095, toAddress: "10.99.0.${n}", toPort: 80 });`,
      )
      .join("\n");
    const { stack } = newStack("coll-ports", forwards);
    const up = await stack.up();
    if (process.env.SHOW_REFUSALS) console.log(up.error);
    assert.ok(!up.ok, `every forward of 8095 was accepted: ${JSON.stringify(await forwardsOf(8095))}`);
    const rules = await forwardsOf(8095);
    assert.equal(rules.length, 1, `one forward of 8095 on the host: ${JSON.stringify(rules)}`);
    const owner = rules[0].match(/--comment "?(pulumi-netns\/pfwd\/[0-9a-f]+\/)/)?.[1];
    assert.ok(owner, rules[0]);
    // Both sides: the refused forward's target, and the made one's rule and owner (once), kind and how to find it.
    assert.match(
      up.error ?? "",
      /tcp port 8095 \(to 10\.99\.0\.[234]:80\) is already forwarded by the host's rule -A PREROUTING/,
    );
    assert.match(
      up.error ?? "",
      new RegExp(`made by a pulumi-netns PortForward \\(find it with: iptables-save \\| grep -- ${owner}\\)`),
    );
    assert.match(up.error ?? "", /Nothing was changed/);
    ok(await stack.destroy(), log);
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });

  it("three Bridges of one program on 10.41.0.0/24 (created in parallel): one is made, the others are refused naming it", async () => {
    const bridges = [1, 2, 3]
      .map((n) => `new netns.Bridge("b${n}", { connection, name: "v-coll-${n}", addresses: ["10.41.0.${n}/24"] });`)
      .join("\n");
    const { stack } = newStack("coll-bridges", bridges);
    const up = await stack.up();
    if (process.env.SHOW_REFUSALS) console.log(up.error);
    const routes = await routesTo("10.41.0.0/24");
    assert.equal(routes.length, 1, `one route to 10.41.0.0/24: ${JSON.stringify(routes)}`);
    assert.ok(!up.ok, "the overlapping bridges were accepted");
    assert.match(
      up.error ?? "",
      new RegExp(
        `v-coll-[123]'s 10\\.41\\.0\\.[123]/24 \\(network 10\\.41\\.0\\.0/24\\) overlaps interface ${routes[0].dev}'s 10\\.41\\.0\\.0/24`,
      ),
    );
    ok(await stack.destroy(), log);
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });

  it("a Bridge update to an address overlapping another bridge's network is refused naming both; the bridge keeps its old address", async () => {
    const bridges = (second: string) =>
      `new netns.Bridge("a", { connection, name: "v-coll-a", addresses: ["10.41.0.1/24"] });\n` +
      `new netns.Bridge("b", { connection, name: "v-coll-b", addresses: ["${second}"] });`;
    const { stack, dir } = newStack("coll-update", bridges("10.42.0.1/24"));
    ok(await stack.up(), log);
    rewriteProgram(dir, program(bridges("10.41.0.2/24")));
    const up = await stack.up();
    if (process.env.SHOW_REFUSALS) console.log(up.error);
    assert.ok(!up.ok, "the overlapping address was accepted");
    assert.equal((await routesTo("10.41.0.0/24")).length, 1, "two routes to 10.41.0.0/24");
    assert.match(
      up.error ?? "",
      /v-coll-b's 10\.41\.0\.2\/24 \(network 10\.41\.0\.0\/24\) overlaps interface v-coll-a's 10\.41\.0\.0\/24/,
    );
    const b = JSON.parse((await lab.exec(["ip", "-j", "-4", "addr", "show", "dev", "v-coll-b"])).stdout)[0];
    assert.deepEqual(
      b.addr_info.map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`),
      ["10.42.0.1/24"],
    );
    ok(await stack.destroy(), log);
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });

  it("an IsolatedNetwork whose bridge name someone else's bridge already has is refused naming it; that bridge keeps forwarding", async () => {
    // A bridge made by hand (or a PodNetwork's v-net-0): the network's isolation rules match by name,
    // and its fail-closed rule would drop everything that bridge forwards out.
    await lab.exec(["ip", "link", "add", "v-coll-x", "type", "bridge"]);
    try {
      const { stack } = newStack(
        "coll-name",
        `new netns.IsolatedNetwork("net", { connection, bridge: "v-coll-x", subnet: "10.43.0.0/24", gateway: "10.43.0.1", namespaces: [{ name: "cx", address: "10.43.0.2" }] });`,
      );
      const up = await stack.up();
      if (process.env.SHOW_REFUSALS) console.log(up.error);
      assert.ok(!up.ok, "the network was made on someone else's bridge");
      assert.match(
        up.error ?? "",
        /IsolatedNetwork on bridge v-coll-x: interface v-coll-x already exists and is not an isolated network's bridge \(group default, kind bridge\)/,
      );
      const rules = (await lab.exec(["iptables-save"], { allowFailure: true })).stdout;
      assert.ok(!rules.includes("v-coll-x"), `a rule names the other bridge: ${rules}`);
      ok(await stack.destroy(), log);
    } finally {
      await lab.exec(["ip", "link", "del", "v-coll-x"], { allowFailure: true });
    }
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });
});
