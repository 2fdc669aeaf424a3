import { strict as assert } from "node:assert";
import * as path from "node:path";
import type { LabHost, OperationResult } from "../../provider/testing";
import { testingKit, writeProgram } from "../integration/harness";
import { labConfig } from "../integration/support";
import { CLASS_OF, connectionOf, type HostileCase, hostileCases, secretText, shownValue } from "./cases";
import { CONFIGURED_PROGRAM, countEvents } from "./support";

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

describe("security: hostile input through the runner changes nothing and sends nothing", function () {
  this.timeout(300_000);
  let lab: LabHost;
  let pristine: string;
  const cases = representative();

  before(async () => {
    const kit = testingKit();
    lab = await kit.startLabHost({ name: `sec-hostile-${process.pid}` });
    pristine = await kit.fingerprint(lab);
  });

  after(async () => {
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
    result: OperationResult;
    lines: string[];
    trace: string;
  }
  const outcomes = new Map<number, Outcome>();

  /** Runs `up` for one row (each in its own runner process and state file). */
  async function runCase(i: number, c: HostileCase): Promise<Outcome> {
    const kit = testingKit();
    // Its own program directory: its own backend, PULUMI_HOME and workspace, so three can run at once.
    const dir = writeProgram(`hostile-${i}`, CONFIGURED_PROGRAM);
    const trace = path.join(dir, "trace.jsonl");
    const lines: string[] = [];
    const stack = new kit.PulumiStack({
      programDir: dir,
      config: {
        ...labConfig(lab),
        kind: CLASS_OF[c.resource],
        args: JSON.stringify(c.args),
        conn: JSON.stringify(connectionOf(c, {})),
      },
      log: (l) => lines.push(l),
      env: { PULUMI_NETNS_TRACE: trace },
    });
    return { result: await stack.up(), lines, trace };
  }

  it("runs every row through the runner (three runner processes at a time)", async () => {
    const queue = [...cases.entries()];
    await Promise.all(
      [1, 2, 3].map(async () => {
        for (let next = queue.shift(); next; next = queue.shift()) outcomes.set(next[0], await runCase(...next));
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
      console.log("ERRDBG", JSON.stringify(result.error), JSON.stringify(result.steps), JSON.stringify(result.diagnostics.filter((d) => d.severity !== "debug")));
      const error = result.error ?? "";
      assert.match(error, /check failed/, error);
      assert.ok(error.includes(`property ${c.property}: ${c.property}:`), `field not named: ${error}`);
      if (c.secret) {
        const hidden = c.hidden ?? secretText(c.value);
        assert.ok(!error.includes(hidden), `secret in the error: ${error}`);
        assert.ok(!lines.some((l) => l.includes(hidden)), "secret in the runner's log");
      } else assert.ok(error.includes(shownValue(c.value)), `value not shown: ${error}`);
      // The stack itself is the only step: no resource of this package was created.
      assert.deepEqual(
        result.steps.filter((s) => s.type.startsWith("netns:")),
        [],
      );
      assert.equal(countEvents(trace, "command"), 0, "a command was sent");
      assert.equal(countEvents(trace, "handshake"), 0, "a connection was made");
    });
  }

  it("left the lab host exactly as it was", async () => {
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });
});
