import { strict as assert } from "node:assert";
import type { LabHost, PulumiStack } from "../../provider/testing";
import { rewriteProgram, testingKit, writeProgram } from "../support/harness";
import { program } from "./programs";
import { labConfig, ok } from "./support";

/**
 * A Namespace replaced delete-first while a VethPair that names it by a plain
 * string (so the engine does not know it depends on it) still declares a veth
 * in it: the veth goes with the old namespace, and the up says so (issue #10
 * leftovers, declaredVeths). The replace is the user's (`pulumi up --replace`),
 * delete-first as every Namespace replace on one host is (a name is unique there).
 * Addresses: 192.0.2.0/24 (TEST-NET-1).
 */

// deleteBeforeReplace as a resource option: a forced replace (\`up --replace\`) asks no diff, so it would create first.
const NAMESPACE = `
const red = new netns.Namespace("nsr-red", { connection, name: "nsr-red" }, { deleteBeforeReplace: true });
`;

/** The pair names the namespace by a plain string: no property dependency; `dependsOn` the one the engine may know. */
const pair = (dependsOn: boolean) => `
new netns.VethPair("nsr-pair", {
  connection,
  a: { name: "nsr-va", namespace: "nsr-red", addresses: ["192.0.2.1/24"] },
  b: { name: "nsr-vb" },
}${dependsOn ? ", { dependsOn: [red] }" : ""});
`;

for (const dependsOn of [false, true])
  describe(`a Namespace replaced delete-first under a VethPair that names it by a plain string (${dependsOn ? "" : "no "}dependsOn)`, function () {
    this.timeout(600_000);
    let lab: LabHost;
    let pristine: string;
    let stack: PulumiStack | undefined;
    let dir = "";
    const log: string[] = [];

    before(async () => {
      lab = await testingKit().startLabHost({ name: `it-nsr-${process.pid}` });
      pristine = await testingKit().fingerprint(lab);
    });

    after(async () => {
      if (stack) await stack.destroy().catch(() => undefined);
      if (lab) await lab.stop();
    });

    it("the up says which veth went with the old namespace, or none went (the engine replaced the pair first)", async () => {
      dir = writeProgram(`nsr-${dependsOn}`, program(NAMESPACE));
      stack = new (testingKit().PulumiStack)({ programDir: dir, config: labConfig(lab), log: (l) => log.push(l) });
      ok(await stack.up(), log);
      // The pair comes once the namespace is there.
      rewriteProgram(dir, program(`${NAMESPACE}${pair(dependsOn)}`));
      ok(await stack.up(), log);
      const resources = (await stack.exportState()).deployment.resources as Array<{ urn: string }>;
      const urn = resources.map((r) => r.urn).find((u) => u.endsWith("::nsr-red"));
      assert.ok(urn, "the namespace is in the state");
      const up = await stack.cli(["up", "--yes", "--skip-preview", "--stack", stack.stackName, "--replace", urn]);
      const out = `${up.stdout}\n${up.stderr}`;
      assert.equal(up.code, 0, out);
      assert.match(out, /nsr-red.*deleted original|replaced/s, "the namespace was replaced");
      const pairReplaced = /nsr-pair.*(deleted original|replaced)/.test(out);
      const gone =
        (await lab.exec(["ip", "link", "show", "dev", "nsr-va"], { namespace: "nsr-red", allowFailure: true })).code !==
        0;
      if (gone)
        assert.match(
          out,
          /namespace "nsr-red".*took with it veth "nsr-va"/s,
          `the veth went and the up names it:\n${out}`,
        );
      else assert.ok(pairReplaced, `the veth is there: the pair was replaced with the namespace:\n${out}`);
    });

    it("refresh + up re-create the pair; destroy leaves the lab host as it was", async () => {
      assert.ok(stack);
      // With dependsOn from here on: without it, destroy deletes the namespace and the pair at once, and the
      // pair's delete fails on the namespace already gone (left alone here: not this test's subject).
      rewriteProgram(dir, program(`${NAMESPACE}${pair(true)}`));
      ok(await stack.refresh(), log);
      ok(await stack.up(), log);
      const r = await lab.exec(["ip", "-j", "link", "show", "dev", "nsr-va"], { namespace: "nsr-red" });
      assert.equal(JSON.parse(r.stdout)[0]?.ifname, "nsr-va");
      ok(await stack.destroy(), log);
      assert.equal(await testingKit().fingerprint(lab), pristine);
    });
  });
