import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { LabHost, PulumiStack } from "../../provider/testing";
import { labConfig } from "../integration/support";
import { testingKit, writeProgram } from "../support/harness";
import { traceEvents } from "../support/trace";

/** Two Namespaces and two Probes on one host, the connection's dial limits from config. */
const PROGRAM = `
import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";

const cfg = new pulumi.Config();
const connection = {
  host: cfg.require("host"),
  port: cfg.requireNumber("port"),
  user: "root",
  privateKey: cfg.requireSecret("privateKey"),
  dialErrorLimit: 2,
  perDialTimeout: 3,
};
const a = new netns.Namespace("dead-a", { connection, name: "dead-a" });
const b = new netns.Namespace("dead-b", { connection, name: "dead-b" });
// No route in a new namespace: nothing is sent.
new netns.Probe("dead-pa", { connection, namespace: "dead-a", target: "192.0.2.1", expect: "unreachable", timeoutMs: 300 }, { dependsOn: [a] });
new netns.Probe("dead-pb", { connection, target: "127.0.0.1" }, { dependsOn: [b] });
`;

// Trial finding F3: a refresh of a stack on a dead host waited through the whole dial retry cycle once
// per resource (six cycles, > 400 s), and the Probes' errors had no advice and echoed the SDK's stack.
describe("faults: a host that stops answering during a refresh is dialed through one retry cycle, not one per resource", function () {
  this.timeout(600_000);
  let lab: LabHost;
  let stack: PulumiStack;
  let pristine: string;
  let scratch: string;
  const log: string[] = [];
  // A table of the test's own (an iptables rule would leave the filter table behind: fingerprint unequal).
  const TABLE = ["ip", "pnetns_deadhost"];
  const dropSsh = async () => {
    await lab.exec(["nft", "add", "table", ...TABLE]);
    await lab.exec(["nft", "add", "chain", ...TABLE, "input", "{ type filter hook input priority -10 ; }"]);
    await lab.exec(["nft", "add", "rule", ...TABLE, "input", "tcp", "dport", String(lab.connection.port), "drop"]);
  };
  const undrop = () => lab.exec(["nft", "delete", "table", ...TABLE], { allowFailure: true });

  before(async () => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), "pnetns-deadhost-"));
    lab = await testingKit().startLabHost({ name: `ft-dead-${process.pid}` });
    pristine = await testingKit().fingerprint(lab);
    stack = new (testingKit().PulumiStack)({
      programDir: writeProgram("deadhost", PROGRAM),
      config: labConfig(lab),
      env: { PULUMI_NETNS_TRACE: path.join(scratch, "trace.jsonl") },
      log: (l) => log.push(l),
    });
  });

  after(async () => {
    if (lab) await undrop();
    if (stack) await stack.destroy().catch(() => undefined);
    if (lab) await lab.stop();
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  it("one cycle of dialErrorLimit attempts; every later resource fails at once, saying so, with the state-delete advice and no stack", async () => {
    const up = await stack.up();
    assert.ok(up.ok, up.error);
    fs.writeFileSync(path.join(scratch, "trace.jsonl"), "");
    await dropSsh();
    try {
      // One resource at a time, as a refresh that goes on past a failed read does.
      const r = await stack.refresh({ parallel: 1 });
      assert.equal(r.ok, false);
      const dials = traceEvents(path.join(scratch, "trace.jsonl")).filter((e) => e.event === "dial-failed");
      console.log(`      refresh failed after ${r.durationMs} ms; ${dials.length} failed dials`);
      assert.equal(dials.length, 2, `dialed ${dials.length} times (2 per cycle): ${r.error}`);
      const errors = r.diagnostics.filter((d) => d.severity === "error").map((d) => d.message);
      assert.ok(
        errors.some((m) => /already failed in this operation/.test(m)),
        `a later resource says the host already failed: ${JSON.stringify(errors)}`,
      );
      const probeErrors = r.diagnostics.filter((d) => d.severity === "error" && /:Probe::/.test(d.urn ?? ""));
      assert.ok(probeErrors.length > 0, `the Probes failed too: ${JSON.stringify(errors)}`);
      for (const d of probeErrors) {
        assert.match(d.message, /pulumi state delete '<urn>' --target-dependents --yes/);
        assert.doesNotMatch(d.message, /^\s+at \S/m, "no stack frames");
      }
    } finally {
      await undrop();
    }
  });

  it("destroy leaves the lab host as it was", async () => {
    const d = await stack.destroy();
    assert.ok(d.ok, d.error);
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });
});
