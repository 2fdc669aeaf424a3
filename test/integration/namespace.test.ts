import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import type { LabHost, PulumiStack } from "../../provider/testing";
import { testingKit, writeProgram } from "../support/harness";
import { program } from "./programs";
import { labConfig } from "./support";

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

  before(async () => {
    const kit = testingKit();
    lab = await kit.startLabHost({ name: `it-namespace-${process.pid}` });
    dir = writeProgram("namespace", PROGRAM);
    stack = new kit.PulumiStack({
      programDir: dir,
      config: config(),
      log: (l) => trace.push(l),
      env: { PULUMI_NETNS_TRACE: path.join(dir, "commands.jsonl") },
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
    assert.match(result.error ?? "", /namespace "blue" already exists .*adopt: true/s);
    assert.deepEqual(await namespacesOn(lab), ["blue", "red"]);
    await lab.exec(["ip", "netns", "del", "blue"]);
  });

  it("renaming replaces: the old namespace goes before the new one comes", async () => {
    const kit = testingKit();
    const renamed = new kit.PulumiStack({
      programDir: dir,
      config: config({ name: "red2", privateKey: lab.connection.privateKey }),
    });
    const result = await renamed.up();
    assert.ok(result.ok, result.error);
    assert.equal(result.counts.replace, 1);
    assert.deepEqual(await namespacesOn(lab), ["red2"]);
  });

  it("destroy removes it, and a second destroy of nothing succeeds", async () => {
    const result = await stack.destroy();
    assert.ok(result.ok, result.error);
    assert.deepEqual(await namespacesOn(lab), []);
    const again = await stack.destroy();
    assert.ok(again.ok, again.error);
    const commands = fs
      .readFileSync(path.join(dir, "commands.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.ok(commands.some((c) => c.event === "command"));
  });
});
