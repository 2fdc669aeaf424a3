import { strict as assert } from "node:assert";
import type { LabHost, PulumiStack } from "../../provider/testing";
import { rewriteProgram, testingKit, writeProgram } from "../support/harness";
import { program } from "./programs";
import { labConfig, netnsList, ok, providerCounts } from "./support";

/**
 * `adopt` + `retainOnDelete` (issue #10 item 7): the engine never calls delete
 * for a retained resource, so whatever the provider added to an adopted object
 * stayed after destroy (the Bridge's FORWARD accept and the filter table it
 * brought, the owner marks), and the marks then refused a later stack's adopt.
 * The program here asks for nothing the hand-made objects do not already have
 * (everything down, no addresses): after destroy the host must be exactly as
 * it was before up.
 */
const RETAINED = `
const keep = new netns.Namespace("keep", { connection, name: "keep", adopt: true, loopbackUp: false }, { retainOnDelete: true });
const br = new netns.Bridge("br-keep", { connection, name: "br-keep", adopt: true, up: false }, { retainOnDelete: true });
new netns.VethPair("keep-cable", {
  connection,
  adopt: true,
  a: { name: "keep-a", namespace: keep.name, up: false },
  b: { name: "keep-b", up: false },
}, { retainOnDelete: true });
`;

/** `ip -j link show dev NAME` (in a namespace): its alias ("" when it has none); undefined when the link is not there. */
async function aliasOf(lab: LabHost, name: string, namespace?: string): Promise<string | undefined> {
  const r = await lab.exec(["ip", "-j", "link", "show", "dev", name], { namespace, allowFailure: true });
  if (r.code !== 0 || !r.stdout.trim()) return undefined;
  return (JSON.parse(r.stdout) as Array<{ ifalias?: string }>)[0].ifalias ?? "";
}

/** The filter FORWARD rules (`iptables -S FORWARD`) that name `bridge`. */
async function forwardRulesOf(lab: LabHost, bridge: string): Promise<string[]> {
  const r = await lab.exec(["iptables", "-w", "-S", "FORWARD"], { allowFailure: true });
  return r.stdout.split("\n").filter((l) => l.startsWith("-A ") && l.split(" ").includes(bridge));
}

describe("adopt + retainOnDelete leaves the adopted objects as they were, through the real engine on a lab host", function () {
  this.timeout(600_000);
  let lab: LabHost;
  let pristine: string;
  let handMade: string;
  const stacks: PulumiStack[] = [];
  const log: string[] = [];
  const stackOf = (name: string, body: string) => {
    const stack = new (testingKit().PulumiStack)({
      programDir: writeProgram(name, program(body)),
      config: labConfig(lab),
      log: (l) => log.push(l),
    });
    stacks.push(stack);
    return stack;
  };

  before(async () => {
    const kit = testingKit();
    lab = await kit.startLabHost({ name: `it-retain-${process.pid}` });
    pristine = await kit.fingerprint(lab);
    await lab.exec(["ip", "netns", "add", "keep"]);
    await lab.exec(["ip", "link", "add", "br-keep", "type", "bridge"]);
    await lab.exec(["ip", "link", "add", "keep-b", "type", "veth", "peer", "name", "keep-a", "netns", "keep"]);
    handMade = await kit.fingerprint(lab);
  });

  after(async () => {
    for (const s of stacks) await s.destroy().catch(() => undefined);
    // Everything else lives in the lab's namespaces, which its stop frees.
    if (lab) await lab.stop();
  });

  let adopted: PulumiStack;
  const marks = async () => [
    await aliasOf(lab, "br-keep"),
    await aliasOf(lab, "keep-b"),
    await aliasOf(lab, "lo", "keep"),
  ];

  it("up adopts them without a mark or a FORWARD rule, and refresh finds them as they are", async () => {
    adopted = stackOf("retain-adopted", RETAINED);
    ok(await adopted.up(), log);
    assert.deepEqual(
      await marks(),
      ["", "", ""],
      "a retained object carries a mark (bridge, veth end, namespace's lo)",
    );
    assert.deepEqual(await forwardRulesOf(lab, "br-keep"), [], "the adopted, retained bridge got FORWARD rules");
    const refreshed = await adopted.refresh();
    ok(refreshed, log);
    assert.equal(refreshed.counts.update + refreshed.counts.delete, 0, JSON.stringify(refreshed.steps));
  });

  it("retainOnDelete turned off is an update in place that marks them and adds the accept; turned on again takes both off", async () => {
    rewriteProgram(adopted.programDir, program(RETAINED.replaceAll(", { retainOnDelete: true })", ")")));
    const off = await adopted.up();
    ok(off, log);
    assert.deepEqual(providerCounts(off), { create: 0, update: 3, replace: 0, delete: 0 }, JSON.stringify(off.steps));
    for (const mark of await marks()) assert.match(mark ?? "", /^pulumi-netns:(bridge|veth|netns)\/[0-9a-f]+$/);
    assert.equal((await forwardRulesOf(lab, "br-keep")).length, 1, "the adopted bridge has no accept");
    rewriteProgram(adopted.programDir, program(RETAINED));
    const on = await adopted.up();
    ok(on, log);
    assert.deepEqual(providerCounts(on), { create: 0, update: 3, replace: 0, delete: 0 }, JSON.stringify(on.steps));
    assert.deepEqual(await marks(), ["", "", ""]);
    assert.deepEqual(await forwardRulesOf(lab, "br-keep"), []);
  });

  it("destroy leaves the host exactly as it was before up (the accept's filter table too)", async () => {
    ok(await adopted.destroy(), log);
    assert.equal(await testingKit().fingerprint(lab), handMade);
  });

  it("a second stack adopts the retained bridge (no mark refuses it), and its destroy deletes it", async () => {
    const second = stackOf(
      "retain-second",
      `new netns.Bridge("again", { connection, name: "br-keep", adopt: true, up: false });`,
    );
    ok(await second.up(), log);
    ok(await second.destroy(), log);
    assert.equal(await aliasOf(lab, "br-keep"), undefined, "the adopted bridge is still there");
  });

  it("a created, retained bridge keeps its rule and up warns with the command that removes it", async () => {
    const stack = stackOf(
      "retain-created",
      `new netns.Bridge("br-made", { connection, name: "br-made" }, { retainOnDelete: true });`,
    );
    const up = await stack.up();
    ok(up, log);
    const [rule] = await forwardRulesOf(lab, "br-made");
    assert.ok(rule, "the created bridge has no FORWARD accept");
    const text = [...up.diagnostics.map((d) => d.message), ...log].join("\n");
    const said = text.match(/destroy will leave bridge "br-made"[^\n]*/)?.[0];
    assert.ok(said, `no warning about the retained bridge in:\n${text.slice(-4000)}`);
    const removal = said.match(/iptables -w -t filter -D FORWARD [^;]*?-j ACCEPT/)?.[0];
    assert.ok(removal, said);
    ok(await stack.destroy(), log);
    assert.notEqual(await aliasOf(lab, "br-made"), undefined, "the retained bridge is gone");
    // The command the warning gave removes the rule; then the rest by hand.
    await lab.exec(["sh", "-c", removal]);
    assert.deepEqual(await forwardRulesOf(lab, "br-made"), []);
    // The lab had no filter table: the warning names the one the rule brought (nf_tables keeps it empty).
    const table = said.match(/nft delete table ip filter/)?.[0];
    assert.ok(/\*filter/.test(pristine) || table, said);
    if (table) await lab.exec(["sh", "-c", table]);
    await lab.exec(["ip", "link", "del", "br-made"]);
  });

  it("a retained bridge another stack adopted meanwhile: turning retain off is refused, naming its mark; only the adopter owns it (attacker: both stacks' destroys deleted it)", async () => {
    const body = (adopt: boolean, retain: boolean) =>
      `new netns.Bridge("rb", { connection, name: "br-two", adopt: ${adopt} }, { retainOnDelete: ${retain} });`;
    const first = stackOf("retain-first", body(false, true));
    ok(await first.up(), log);
    assert.equal(await aliasOf(lab, "br-two"), "", "a retained bridge carries no mark");
    const second = stackOf("retain-second", body(true, false));
    ok(await second.up(), log);
    const secondMark = await aliasOf(lab, "br-two");
    assert.match(secondMark ?? "", /^pulumi-netns:bridge\//);
    rewriteProgram(first.programDir, program(body(false, false)));
    const off = await first.up();
    assert.equal(off.ok, false, "turning retain off took over a bridge another stack owns");
    assert.match(
      off.error ?? "",
      /retainOnDelete: bridge br-two on [^ ]+ already belongs to another pulumi-netns resource \(its mark "pulumi-netns:bridge\//,
    );
    assert.equal(await aliasOf(lab, "br-two"), secondMark, "the adopter's mark was overwritten");
    // The first stack's refresh finds it another's now and lets it go; the adopter's destroy removes it.
    ok(await first.refresh(), log);
    ok(await second.destroy(), log);
    assert.equal(await aliasOf(lab, "br-two"), undefined, "the adopter's destroy left the bridge");
    ok(await first.destroy(), log);
  });

  it("with the hand-made objects removed, the lab is as it was", async () => {
    await lab.exec(["ip", "link", "del", "keep-b"], { allowFailure: true });
    await lab.exec(["ip", "netns", "del", "keep"]);
    assert.deepEqual(await netnsList(lab), []);
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });
});
