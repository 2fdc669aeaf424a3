import { strict as assert } from "node:assert";
import * as path from "node:path";
import type { LabHost, OperationResult, PulumiStack } from "../../provider/testing";
import { labConfig } from "../integration/support";
import { testingKit, writeProgram } from "../support/harness";
import { CLASS_OF, connectionOf, type HostileCase, hostileCases, secretText, shownValue } from "./cases";
import { CONFIGURED_PROGRAM, countEvents, ownSteps } from "./support";

/** One row per resource and per connection concern, all JSON-representable. */
function representative(): HostileCase[] {
  const all = hostileCases();
  const pick = (resource: string, property: string, value: unknown) => {
    const c = all.find(
      (x) => x.resource === resource && x.property === property && JSON.stringify(x.value) === JSON.stringify(value),
    );
    if (!c) throw new Error(`no case ${resource} ${property} ${JSON.stringify(value)}`);
    return c;
  };
  return [
    pick("namespace", "name", "../etc"),
    pick("vethPair", "a.name", "$(id)"),
    pick("vethPair", "b.namespace", "a/b"),
    pick("vethPair", "a.addresses[0]", "192.168.15.1/24; reboot"),
    pick("bridge", "name", "lo"),
    pick("bridge", "addresses[0]", "fe80::1/64"),
    pick("route", "destination", "192.168.15.5/24"),
    pick("route", "via", "-j ACCEPT"),
    pick("masqueradeRule", "source", "192.168.15.0/24 -j ACCEPT"),
    pick("masqueradeRule", "outInterface", "a\nb"),
    pick("portForward", "hostPort", 65536),
    pick("portForward", "toPort", 8.5),
    pick("portForward", "protocol", "icmp"),
    ...all.filter((c) => c.property === "connection.host" && c.value === "-oProxyCommand=id").slice(0, 1),
    ...all.filter((c) => c.property === "connection.hostKey" && c.value === "SHA256:short").slice(0, 1),
    ...all.filter((c) => c.property === "connection.proxy.host" && c.value === "-oProxyCommand=id"),
    ...all.filter((c) => c.property === "connection.privateKey" && c.value === "hunter2-SECRET-not-a-key"),
    ...all.filter((c) => c.property === "connection.password" && typeof c.value === "object").slice(0, 1),
  ];
}

describe("security: hostile input through the real engine changes nothing and sends nothing", function () {
  this.timeout(900_000);
  let lab: LabHost;
  let pristine: string;
  const cases = representative();

  before(async () => {
    const kit = testingKit();
    lab = await kit.startLabHost({ name: `sec-hostile-${process.pid}` });
    pristine = await kit.fingerprint(lab);
  });

  after(async () => {
    if (control) await control.stack.destroy().catch(() => undefined);
    if (lab) await lab.stop();
  });

  it(`has one row or more per resource (${cases.length} rows)`, () => {
    for (const kind of Object.keys(CLASS_OF))
      assert.ok(
        cases.some((c) => c.resource === kind),
        kind,
      );
    assert.ok(cases.length >= 15);
  });

  interface Outcome {
    stack: PulumiStack;
    result: OperationResult;
    lines: string[];
    trace: string;
  }
  const outcomes = new Map<number, Outcome>();
  let control: Outcome | undefined;

  /** Runs `up` of the one-resource program with these args and connection overrides, in a program directory of its own. */
  async function run(name: string, kind: string, args: unknown, conn: unknown): Promise<Outcome> {
    const kit = testingKit();
    // Its own directory: its own backend, PULUMI_HOME and workspace, so that three can run at once.
    const dir = writeProgram(name, CONFIGURED_PROGRAM);
    const trace = path.join(dir, "trace.jsonl");
    const lines: string[] = [];
    const stack = new kit.PulumiStack({
      programDir: dir,
      config: { ...labConfig(lab), kind, args: JSON.stringify(args), conn: JSON.stringify(conn) },
      log: (l) => lines.push(l),
      env: { PULUMI_NETNS_TRACE: trace },
    });
    return { stack, result: await stack.up(), lines, trace };
  }

  it("control: a valid row is created, and the checks below see its step, its commands and its handshake", async () => {
    control = await run("hostile-control", "Namespace", { name: "control" }, {});
    const { result, trace } = control;
    assert.ok(result.ok, result.error);
    // The engine types a dynamic resource pulumi-nodejs:dynamic/netns:Namespace: a filter on "netns:" sees nothing.
    assert.deepEqual(
      result.steps.filter((s) => s.type.startsWith("netns:")),
      [],
    );
    assert.deepEqual(
      ownSteps(result).map((s) => `${s.op} ${s.type}`),
      ["create pulumi-nodejs:dynamic/netns:Namespace"],
    );
    assert.ok(countEvents(trace, "command") > 0, "no command traced");
    assert.ok(countEvents(trace, "handshake") > 0, "no handshake traced");
    assert.notEqual(await testingKit().fingerprint(lab), pristine, "the fingerprint did not see the namespace");
    const destroyed = await control.stack.destroy();
    assert.ok(destroyed.ok, destroyed.error);
    control = undefined;
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });

  it("runs every row through the real engine (three `pulumi up` at a time)", async () => {
    const queue = [...cases.entries()];
    await Promise.all(
      [1, 2, 3].map(async () => {
        for (let next = queue.shift(); next; next = queue.shift()) {
          const [i, c] = next;
          outcomes.set(i, await run(`hostile-${i}`, CLASS_OF[c.resource], c.args, connectionOf(c, {})));
        }
      }),
    );
    assert.equal(outcomes.size, cases.length);
  });

  for (const [i, c] of cases.entries()) {
    it(`${CLASS_OF[c.resource]} ${c.property} = ${JSON.stringify(c.value)}: check fails, 0 commands, 0 handshakes`, () => {
      const outcome = outcomes.get(i);
      assert.ok(outcome, "not run");
      const { result, lines, trace } = outcome;
      assert.equal(result.ok, false, "up succeeded");
      const error = result.error ?? "";
      // The engine's form of a check failure: "<type> resource 'subject': property <p> value {...} has a problem: <reason>".
      assert.ok(
        error.includes(`netns:${CLASS_OF[c.resource]} resource 'subject': property ${c.property} value {`),
        `not a check failure of ${c.property}: ${error}`,
      );
      assert.ok(error.includes(`has a problem: ${c.property}:`), `reason does not name the field: ${error}`);
      if (c.secret) {
        const hidden = c.hidden ?? secretText(c.value);
        assert.ok(!error.includes(hidden), `secret in the error: ${error}`);
        assert.ok(!lines.some((l) => l.includes(hidden)), "secret in the CLI output");
        assert.ok(!result.diagnostics.some((d) => d.message.includes(hidden)), "secret in an engine diagnostic");
      } else assert.ok(error.includes(shownValue(c.value)), `value not shown: ${error}`);
      // No resource of this package got a step (only the default provider is created).
      assert.deepEqual(ownSteps(result), []);
      assert.equal(countEvents(trace, "command"), 0, "a command was sent");
      assert.equal(countEvents(trace, "handshake"), 0, "a connection was made");
    });
  }

  // A field the resource does not have is refused by name at check, before any contact; reported without a
  // property path, so that the engine does not print its value (which may be a key put in the wrong place).
  const FAKE_KEY =
    "-----BEGIN OPENSSH PRIVATE KEY-----\nU0VDUkVUQk9EWS1ub3QtYS1rZXk=\n-----END OPENSSH PRIVATE KEY-----\n";
  const OTHER_FIELDS: Array<[string, Record<string, unknown>, string, string | undefined]> = [
    ["a misspelt field", { loopbakUp: false }, 'unknown field "loopbakUp"; did you mean "loopbackUp"?', undefined],
    [
      "a private key beside connection",
      { privateKey: FAKE_KEY },
      'unknown field "privateKey": it belongs in connection (its value is not shown)',
      "U0VDUkVUQk9EWS1ub3QtYS1rZXk",
    ],
  ];
  for (const [i, [what, args, reason, hidden]] of OTHER_FIELDS.entries())
    it(`Namespace with ${what}: check fails naming it (never its value), 0 commands, 0 handshakes`, async () => {
      const { result, lines, trace } = await run(`hostile-other-${i}`, "Namespace", args, {});
      assert.equal(result.ok, false, "up succeeded");
      const error = result.error ?? "";
      assert.ok(error.includes(`netns:Namespace resource 'subject' has a problem: ${reason}`), error);
      if (hidden) {
        assert.ok(!error.includes(hidden), `value in the error: ${error}`);
        assert.ok(!lines.some((l) => l.includes(hidden)), "value in the CLI output");
        assert.ok(!result.diagnostics.some((d) => d.message.includes(hidden)), "value in an engine diagnostic");
      }
      assert.deepEqual(ownSteps(result), []);
      assert.equal(countEvents(trace, "command"), 0, "a command was sent");
      assert.equal(countEvents(trace, "handshake"), 0, "a connection was made");
    });

  it("left the lab host exactly as it was", async () => {
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });
});
