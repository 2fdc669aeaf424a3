import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import type { LabHost, PulumiStack } from "../../provider/testing";
import { testingKit, writeProgram } from "../support/harness";
import { type TraceEvent, traceEvents } from "../support/trace";
import { program } from "./programs";
import { labConfig, providerCounts } from "./support";

const PROGRAM = program(`
const red = new netns.Namespace("red", { connection, name: cfg.get("name") ?? "red" });
export const name = red.name;
export const knownHostKeys = red.knownHostKeys;
`);

interface NetnsEntry {
  name: string;
}

async function namespacesOn(lab: LabHost): Promise<string[]> {
  const out = (await lab.exec(["ip", "-j", "netns", "list"])).stdout.trim();
  return out ? (JSON.parse(out) as NetnsEntry[]).map((n) => n.name).sort() : [];
}

async function loopbackUp(lab: LabHost, ns: string): Promise<boolean> {
  const links = JSON.parse((await lab.exec(["ip", "-n", ns, "-j", "link", "show", "dev", "lo"])).stdout);
  return links[0].flags.includes("UP");
}

describe("Namespace through the real Pulumi engine, from the packed tarball", function () {
  this.timeout(300_000);
  let lab: LabHost;
  let stack: PulumiStack;
  let dir: string;
  const trace: string[] = [];
  const config = (extra: Record<string, string> = {}) => ({ ...labConfig(lab), ...extra });
  /** Every stack of this suite writes here: one program, one state, one trace. */
  const traceFile = () => path.join(dir, "commands.jsonl");
  const traced = { PULUMI_NETNS_TRACE: "" };

  /** What `op` itself sent to the host: the commands traced while it ran. */
  async function commandsOf<T>(op: () => Promise<T>): Promise<{ result: T; commands: TraceEvent[] }> {
    const offset = fs.existsSync(traceFile()) ? fs.statSync(traceFile()).size : 0;
    const result = await op();
    return { result, commands: traceEvents(traceFile(), offset).filter((e) => e.event === "command") };
  }

  before(async () => {
    const kit = testingKit();
    lab = await kit.startLabHost({ name: `it-namespace-${process.pid}` });
    dir = writeProgram("namespace", PROGRAM);
    traced.PULUMI_NETNS_TRACE = traceFile();
    stack = new kit.PulumiStack({
      programDir: dir,
      config: config(),
      log: (l) => trace.push(l),
      env: traced,
    });
  });

  after(async () => {
    if (stack) await stack.destroy().catch(() => undefined);
    if (lab) await lab.stop();
  });

  it("creates the namespace with lo up, and records the host key (trust on first use)", async () => {
    assert.deepEqual(await namespacesOn(lab), []);
    const result = await stack.up();
    assert.ok(result.ok, `${result.error}\n${trace.join("\n")}`);
    assert.deepEqual(await namespacesOn(lab), ["red"]);
    assert.ok(await loopbackUp(lab, "red"));
    assert.equal(result.outputs.name, "red");
    const keys = result.outputs.knownHostKeys as Record<string, string>;
    assert.equal(
      keys[`${lab.connection.host}:${lab.connection.port}`],
      lab.connection.hostKey.split(" ").slice(0, 2).join(" "),
    );
  });

  it("keeps the private key out of the state files in plain text", async () => {
    const raw = stack.backendText();
    assert.ok(raw.includes("pulumi-nodejs:dynamic/netns:Namespace"), "no state was written");
    const keyBody = lab.connection.privateKey.split("\n")[1];
    assert.ok(!raw.includes(keyBody), "the private key is in the state file");
  });

  it("does nothing on a second up", async () => {
    const result = await stack.up();
    assert.ok(result.ok, result.error);
    assert.equal(result.counts.create + result.counts.update + result.counts.replace + result.counts.delete, 0);
  });

  it("refresh sees lo taken down behind its back, and the next up repairs it", async () => {
    await lab.exec(["ip", "-n", "red", "link", "set", "lo", "down"]);
    const refreshed = await stack.refresh();
    assert.ok(refreshed.ok, refreshed.error);
    assert.equal(refreshed.counts.update, 1, JSON.stringify(refreshed.steps));
    const up = await stack.up();
    assert.ok(up.ok, up.error);
    assert.equal(up.counts.update, 1);
    assert.ok(await loopbackUp(lab, "red"));
  });

  it("updates (never replaces) when only the credentials change", async () => {
    const kit = testingKit();
    const newKey = await lab.addClientKey();
    const creds = new kit.PulumiStack({
      programDir: dir,
      config: config({ privateKey: newKey }),
      log: (l) => trace.push(l),
      env: traced,
    });
    const result = await creds.up();
    assert.ok(result.ok, result.error);
    assert.equal(result.counts.update, 1, JSON.stringify(result.steps));
    assert.equal(result.counts.replace, 0);
    stack = creds;
  });

  it("refresh drops a namespace deleted behind its back, and up brings it back", async () => {
    await lab.exec(["ip", "netns", "del", "red"]);
    const refreshed = await stack.refresh();
    assert.ok(refreshed.ok, refreshed.error);
    assert.equal(refreshed.counts.delete, 1);
    const up = await stack.up();
    assert.equal(up.counts.create, 1);
    assert.deepEqual(await namespacesOn(lab), ["red"]);
  });

  it("refuses to create over an existing namespace unless adopt is set, changing nothing", async () => {
    await lab.exec(["ip", "netns", "add", "blue"]);
    const kit = testingKit();
    const other = new kit.PulumiStack({
      programDir: writeProgram("namespace-clash", PROGRAM),
      config: config({ name: "blue" }),
    });
    const result = await other.up();
    assert.equal(result.ok, false);
    assert.match(
      result.error ?? "",
      /namespace "blue" already exists .*Set adopt: true on the Namespace.*PodNetwork.s pods\[\]\.name.*ip netns delete blue\)/s,
    );
    assert.deepEqual(await namespacesOn(lab), ["blue", "red"]);
    await lab.exec(["ip", "netns", "del", "blue"]);
  });

  it("renaming replaces: the old namespace goes before the new one comes", async () => {
    const kit = testingKit();
    const renamed = new kit.PulumiStack({
      programDir: dir,
      config: config({ name: "red2", privateKey: lab.connection.privateKey }),
      env: traced,
    });
    const { result, commands } = await commandsOf(() => renamed.up());
    assert.ok(result.ok, result.error);
    assert.equal(result.counts.replace, 1);
    assert.deepEqual(await namespacesOn(lab), ["red2"]);
    // From the host's side: the last command that deletes "red" ended before the one that adds "red2" began.
    const deletes = commands.filter((c) => /ip netns del red\b/.test(c.command ?? ""));
    const add = commands.find((c) => /ip netns add red2\b/.test(c.command ?? ""));
    assert.ok(deletes.length > 0 && add, `no delete of red or add of red2 traced: ${JSON.stringify(commands)}`);
    const deleted = Math.max(...deletes.map((c) => c.t));
    const addStarted = add.t - (add.ms ?? 0);
    assert.ok(deleted <= addStarted, `red2 was added ${deleted - addStarted} ms before red was deleted`);
  });

  it("destroy removes it, and a second destroy of nothing succeeds", async () => {
    const first = await commandsOf(() => stack.destroy());
    assert.ok(first.result.ok, first.result.error);
    assert.equal(providerCounts(first.result).delete, 1, JSON.stringify(first.result.steps));
    assert.deepEqual(await namespacesOn(lab), []);
    assert.ok(
      first.commands.some((c) => /ip netns del red2\b/.test(c.command ?? "") && c.code === 0),
      `this destroy sent no delete of red2: ${JSON.stringify(first.commands)}`,
    );
    // The state is empty now: the second destroy has nothing to delete and sends nothing.
    const again = await commandsOf(() => stack.destroy());
    assert.ok(again.result.ok, again.result.error);
    assert.deepEqual(
      again.result.steps.filter((s) => s.op !== "same"),
      [],
      "the second destroy changes something",
    );
    assert.deepEqual(again.commands, []);
  });
});
