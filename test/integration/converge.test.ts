import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { LabHost, OperationResult, PulumiStack } from "../../provider/testing";
import { fakeDnsNodeOptions } from "../support/fakeDns";
import { testingKit, writeProgram } from "../support/harness";
import { lessonSpec } from "../support/lessonSpec";
import { changes, labConfig, netnsList, ok, ping, providerCounts } from "./support";

/** The lesson's IsolatedNetwork; `conn` (JSON) adds connection fields, to change one without touching the host. */
const PROGRAM = `
import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";

const cfg = new pulumi.Config();
const connection = {
  host: cfg.require("host"),
  port: cfg.requireNumber("port"),
  user: "root",
  privateKey: cfg.requireSecret("privateKey"),
  ...JSON.parse(cfg.get("conn") ?? "{}"),
};
const net = new netns.IsolatedNetwork("lesson", { connection, ...${JSON.stringify(lessonSpec())} });
export const addresses = net.addresses;
`;

interface Neighbour {
  dst: string;
  lladdr?: string;
  state?: string[];
}

async function neighbours(lab: LabHost, namespace: string): Promise<Neighbour[]> {
  const text = (await lab.exec(["ip", "-j", "neigh", "show"], { namespace })).stdout.trim();
  return text ? JSON.parse(text) : [];
}

async function macOf(lab: LabHost, namespace: string | undefined, dev: string): Promise<string> {
  return JSON.parse((await lab.exec(["ip", "-j", "link", "show", "dev", dev], { namespace })).stdout)[0].address;
}

/** The host's FORWARD rules of Bridges (owner comment pulumi-netns/bridge/...), as `iptables -S` words. */
async function bridgeRules(lab: LabHost): Promise<string[][]> {
  const text = (await lab.exec(["iptables", "-S", "FORWARD"])).stdout;
  return text
    .split("\n")
    .filter((l) => l.includes("pulumi-netns/bridge/"))
    .map((l) => l.split(" ").map((w) => w.replace(/^"(.*)"$/, "$1")));
}

/** The ids of the provider's resources in the stack's state (each ends with the host it is on: "@host:port"). */
async function stateIds(stack: PulumiStack): Promise<string[]> {
  const deployment = await stack.exportState();
  const resources = (deployment.deployment.resources ?? []) as Array<{ type: string; id?: string }>;
  return resources.filter((r) => r.type.startsWith("pulumi-nodejs:dynamic/")).map((r) => String(r.id));
}

const at = (lab: LabHost) => `@${lab.connection.host}:${lab.connection.port}`;

describe("converging on a lab host: reachable when up returns; a changed host never loses the old lab first", function () {
  this.timeout(900_000);
  let labA: LabHost;
  let labB: LabHost;
  let pristineA: string;
  let pristineB: string;
  let stack: PulumiStack;
  let scratch: string;
  const config: Record<string, string> = {};
  const log: string[] = [];

  before(async () => {
    const kit = testingKit();
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), "pnetns-converge-"));
    labA = await kit.startLabHost({ name: `it-conv-a-${process.pid}` });
    labB = await kit.startLabHost({ name: `it-conv-b-${process.pid}` });
    pristineA = await kit.fingerprint(labA);
    pristineB = await kit.fingerprint(labB);
    Object.assign(config, labConfig(labA));
    stack = new kit.PulumiStack({
      programDir: writeProgram("converge", PROGRAM),
      config, // read before every operation: the tests edit it as a user edits their config
      env: { NODE_OPTIONS: fakeDnsNodeOptions(scratch) },
      log: (l) => log.push(l),
    });
  });

  after(async () => {
    if (stack) {
      Object.assign(config, labConfig(labA));
      await stack.destroy().catch(() => undefined);
      Object.assign(config, labConfig(labB));
      await stack.destroy().catch(() => undefined);
    }
    if (labA) await labA.stop();
    if (labB) await labB.stop();
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  it("blue re-created by drift repair answers red's first ping after up (red's neighbour entry follows blue's new MAC)", async () => {
    ok(await stack.up(), log);
    assert.equal((await ping(labA, "192.168.15.2", "red")).code, 0, "red -> blue before the drift");
    const oldMac = await macOf(labA, "blue", "veth-blue");
    await labA.exec(["ip", "netns", "del", "blue"]);
    ok(await stack.refresh(), log);
    ok(await stack.up(), log);
    const newMac = await macOf(labA, "blue", "veth-blue");
    assert.notEqual(newMac, oldMac, "blue's interface is a new one");
    const first = await ping(labA, "192.168.15.2", "red");
    const entry = (await neighbours(labA, "red")).find((n) => n.dst === "192.168.15.2");
    assert.equal(
      first.code,
      0,
      `red's first ping to the new blue failed; red's neighbour entry: ${JSON.stringify(entry)} (old MAC ${oldMac}, new ${newMac})`,
    );
    assert.equal(entry?.lladdr, newMac);
  });

  it("the bridge re-created by drift repair answers red's first ping to the gateway after up (red's entry follows its new MAC)", async () => {
    assert.equal((await ping(labA, "192.168.15.5", "red")).code, 0, "red -> gateway before the drift");
    const oldMac = await macOf(labA, undefined, "v-net-0");
    assert.equal((await neighbours(labA, "red")).find((n) => n.dst === "192.168.15.5")?.lladdr, oldMac);
    const oldRules = await bridgeRules(labA);
    assert.equal(oldRules.length, 1, JSON.stringify(oldRules));
    await labA.exec(["ip", "link", "del", "dev", "v-net-0"]);
    ok(await stack.refresh(), log);
    ok(await stack.up(), log);
    // Refresh dropped the Bridge whose link was gone, not its FORWARD rule: the new bridge's create takes
    // over that rule's claims and removes it (else it stayed on the host for good).
    const rules = await bridgeRules(labA);
    assert.equal(rules.length, 1, `one FORWARD rule of a Bridge for v-net-0, the new one's: ${JSON.stringify(rules)}`);
    assert.notDeepEqual(rules[0], oldRules[0], "the old bridge's rule is still there");
    const newMac = await macOf(labA, undefined, "v-net-0");
    assert.notEqual(newMac, oldMac, "the bridge is a new one");
    const first = await ping(labA, "192.168.15.5", "red");
    const entry = (await neighbours(labA, "red")).find((n) => n.dst === "192.168.15.5");
    assert.equal(
      first.code,
      0,
      `red's first ping to the new gateway failed; red's neighbour entry: ${JSON.stringify(entry)} (old MAC ${oldMac}, new ${newMac})`,
    );
    assert.equal(entry?.lladdr, newMac);
  });

  it("connection.host misspelt (a name that does not resolve): up fails, host A keeps the whole lab, state still points at A", async () => {
    const before = await netnsList(labA);
    config.host = "lab-typo.invalid";
    const up = await stack.up();
    config.host = labA.connection.host;
    assert.equal(up.ok, false, "up on a host that does not resolve must fail");
    assert.deepEqual(await netnsList(labA), before, `the lab on A is untouched: ${JSON.stringify(up.steps)}`);
    assert.equal((await ping(labA, "192.168.15.2", "red")).code, 0, "red -> blue on A still");
    const ids = await stateIds(stack);
    assert.ok(ids.length > 0);
    assert.deepEqual(
      ids.filter((id) => !id.endsWith(at(labA))),
      [],
      "every resource in state is still on A",
    );
    const again = await stack.up();
    ok(again, log);
    assert.equal(changes(again), 0, `back on A, nothing to do: ${JSON.stringify(again.steps)}`);
  });

  it("preview of a move to host B names the move; up creates everything on B first, then deletes from A: A as before the tests", async () => {
    Object.assign(config, labConfig(labB));
    const preview = await stack.preview();
    ok(preview, log);
    const moves = preview.diagnostics.filter((d) => /moves from .* to .*created on the new host first/.test(d.message));
    assert.ok(moves.length > 0, `preview says the objects move hosts: ${JSON.stringify(preview.diagnostics)}`);
    const up: OperationResult = await stack.up();
    ok(up, log);
    const ops = up.steps.filter((s) => s.type.startsWith("pulumi-nodejs:dynamic/")).map((s) => s.op);
    const lastCreate = ops.lastIndexOf("create-replacement");
    const firstDelete = ops.indexOf("delete-replaced");
    assert.ok(lastCreate >= 0, `replacements created: ${JSON.stringify(ops)}`);
    assert.ok(firstDelete === -1 || firstDelete > lastCreate, `every create before any delete: ${JSON.stringify(ops)}`);
    assert.equal(await testingKit().fingerprint(labA), pristineA, "nothing of ours is left on A");
    assert.deepEqual((await netnsList(labB)).sort(), ["blue", "red"]);
    assert.equal((await ping(labB, "192.168.15.2", "red")).code, 0, "red -> blue on B");
    assert.deepEqual(
      (await stateIds(stack)).filter((id) => !id.endsWith(at(labB))),
      [],
      "every resource in state is on B",
    );
    const refreshed = await stack.refresh();
    ok(refreshed, log);
    assert.equal(changes(refreshed), 0, `no drift on B: ${JSON.stringify(refreshed.steps)}`);
  });

  it("a connection change that keeps the host (perDialTimeout) is an update in place, no replace", async () => {
    config.conn = JSON.stringify({ perDialTimeout: 7 });
    const up = await stack.up();
    ok(up, log);
    const counts = providerCounts(up);
    assert.equal(counts.replace + counts.create + counts.delete, 0, JSON.stringify(up.steps));
    assert.ok(counts.update > 0, JSON.stringify(up.steps));
  });

  it("destroy leaves B as it was", async () => {
    ok(await stack.destroy(), log);
    assert.equal(await testingKit().fingerprint(labB), pristineB);
    assert.equal(await testingKit().fingerprint(labA), pristineA);
  });
});
