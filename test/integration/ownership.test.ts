import { strict as assert } from "node:assert";
import type { LabHost, OperationResult, PulumiStack } from "../../provider/testing";
import { testingKit, writeProgram } from "../support/harness";
import { program } from "./programs";
import { labConfig, netnsList, ok } from "./support";

/**
 * Issue #10 items 6 and 7, through the real engine on a lab host: destroy
 * deletes only what is provably ours (a namespace or bridge someone else made
 * under the same name stays, and the destroy says so), recorded originals
 * survive a firewall reload (iptables -F) and its repair. Addresses: 192.0.2.0/26 (TEST-NET-1).
 */

const SAME_NAMES = `
const ns = new netns.Namespace("own-ns", { connection, name: "own-ns" });
new netns.Bridge("br-own", { connection, name: "br-own", addresses: ["192.0.2.1/26"] });
`;

const MASQ = `
new netns.MasqueradeRule("masq", { connection, source: "192.0.2.0/26", enableIpForward: true });
`;

interface IpLink {
  ifname: string;
  ifindex: number;
  ifalias?: string;
}

async function link(lab: LabHost, name: string): Promise<IpLink | undefined> {
  const r = await lab.exec(["ip", "-j", "link", "show", "dev", name], { allowFailure: true });
  return r.code === 0 && r.stdout.trim() ? (JSON.parse(r.stdout) as IpLink[])[0] : undefined;
}

async function inode(lab: LabHost, name: string): Promise<string> {
  return (await lab.exec(["stat", "-L", "-c", "%i", `/run/netns/${name}`])).stdout.trim();
}

async function ipForward(lab: LabHost): Promise<string> {
  return (await lab.exec(["cat", "/proc/sys/net/ipv4/ip_forward"])).stdout.trim();
}

/** The rules (`iptables -S` lines) of the lab host that carry an owner comment of this package. */
async function ownerRules(lab: LabHost): Promise<string[]> {
  const lines: string[] = [];
  for (const table of ["filter", "nat"]) {
    const r = await lab.exec(["iptables", "-w", "-t", table, "-S"], { allowFailure: true });
    lines.push(...r.stdout.split("\n").filter((l) => l.startsWith("-A ") && l.includes("pulumi-netns/")));
  }
  return lines;
}

const shown = (r: OperationResult) => r.diagnostics.map((d) => d.message).join("\n");

describe("ownership through the real engine on a lab host (issue #10 items 6, 7)", function () {
  this.timeout(600_000);
  let lab: LabHost;
  let pristine: string;
  const stacks: PulumiStack[] = [];
  const log: string[] = [];

  before(async () => {
    lab = await testingKit().startLabHost({ name: `it-owner-${process.pid}` });
    pristine = await testingKit().fingerprint(lab);
  });

  after(async () => {
    for (const s of stacks) await s.destroy().catch(() => undefined);
    if (lab) await lab.stop();
  });

  function stackOf(name: string, body: string): PulumiStack {
    const kit = testingKit();
    const stack = new kit.PulumiStack({
      programDir: writeProgram(name, program(body)),
      config: labConfig(lab),
      log: (l) => log.push(l),
    });
    stacks.push(stack);
    return stack;
  }

  it("destroy leaves a namespace and a bridge someone else made under our names, and says so", async () => {
    const stack = stackOf("owner-same-names", SAME_NAMES);
    ok(await stack.up(), log);
    // Behind the program's back: ours go, another owner makes objects with the same names.
    await lab.exec(["ip", "netns", "del", "own-ns"]);
    await lab.exec(["ip", "netns", "add", "own-ns"]);
    await lab.exec(["ip", "link", "del", "br-own"]);
    await lab.exec(["ip", "link", "add", "br-own", "type", "bridge"]);
    const theirs = { ns: await inode(lab, "own-ns"), bridge: (await link(lab, "br-own"))?.ifindex };
    const destroyed = await stack.destroy();
    ok(destroyed, log);
    assert.ok((await netnsList(lab)).includes("own-ns"), "the other owner's namespace own-ns was deleted");
    assert.equal(await inode(lab, "own-ns"), theirs.ns);
    assert.equal((await link(lab, "br-own"))?.ifindex, theirs.bridge, "the other owner's bridge br-own was deleted");
    const said = shown(destroyed) + log.join("\n");
    assert.match(said, /namespace "own-ns".*not (the one|ours)/s, said.slice(-3000));
    assert.match(said, /bridge "br-own".*not (the one|ours)/s);
    await lab.exec(["ip", "netns", "del", "own-ns"]);
    await lab.exec(["ip", "link", "del", "br-own"]);
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });

  it("after iptables -F (a firewall reload), refresh + up repair, and destroy puts back ip_forward and the tables", async () => {
    assert.equal(await ipForward(lab), "0");
    const stack = stackOf("owner-flush", MASQ);
    ok(await stack.up(), log);
    assert.equal(await ipForward(lab), "1");
    await lab.exec(["sh", "-c", "iptables -w -F && iptables -w -t nat -F"]);
    assert.deepEqual(await ownerRules(lab), []);
    const refreshed = await stack.refresh();
    ok(refreshed, log);
    assert.equal(refreshed.counts.delete ?? 0, 0, `refresh dropped the rule: ${JSON.stringify(refreshed.steps)}`);
    ok(await stack.up(), log);
    const repaired = await ownerRules(lab);
    assert.equal(repaired.length, 3, repaired.join("\n"));
    for (const rule of repaired) assert.match(rule, /ipfw=0/, `the repair recorded another original: ${rule}`);
    ok(await stack.destroy(), log);
    assert.equal(await ipForward(lab), "0", "destroy left ip_forward=1");
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });
});
