import { strict as assert } from "node:assert";
import { check, diff } from "../../../../provider/impl/networkIsolation";
import { describeRule } from "../../../../provider/kernel/iptables";
import { isolationRules } from "../../../../provider/kernel/isolation";

describe("impl/networkIsolation", () => {
  const connection = { host: "198.51.100.1" };
  const args = {
    connection,
    bridge: "v-net-0",
    allowFrom: ["10.31.0.0/24"],
    bridgeAddresses: ["192.168.15.5/24"],
    hostPorts: ["tcp/8080"],
  };
  const checked = async (a: object) => {
    const r = await check({}, a as never);
    assert.deepEqual(r.failures ?? [], [], JSON.stringify(r.failures));
    return r.inputs as Record<string, unknown>;
  };
  // What the engine hands diff: state and inputs as separately decoded JSON, never the same arrays.
  const copy = <T>(v: T): T => JSON.parse(JSON.stringify(v));
  /** The rules a create stores for these inputs, under comment "c". */
  const stored = (i: Record<string, unknown>) =>
    isolationRules(i.bridge as string, i.allowFrom as string[]).map((r) => describeRule(r, "c"));

  it("the same lists (other arrays, as the engine passes them) are no change", async () => {
    const inputs = await checked(args);
    const olds = {
      ...copy(inputs),
      ruleId: "0a",
      comment: "c",
      rules: stored(inputs),
      missingRules: [],
      knownHostKeys: {},
    };
    const r = await diff("id", olds as never, copy(inputs) as never);
    assert.equal(r.changes, false, JSON.stringify(r));
  });

  it("state from before the isolation had all its present rules (one stored): an update in place, which adds them", async () => {
    const inputs = await checked(args);
    const olds = {
      ...copy(inputs),
      ruleId: "0a",
      comment: "c",
      rules: stored(inputs).slice(0, 1),
      missingRules: [],
      knownHostKeys: {},
    };
    const r = await diff("id", olds as never, copy(inputs) as never);
    assert.equal(r.changes, true, JSON.stringify(r));
    assert.deepEqual(r.replaces ?? [], []);
  });

  it("another allowFrom is an update in place, not a replace (everything of the network depends on it)", async () => {
    const inputs = await checked(args);
    const olds = { ...copy(inputs), ruleId: "0a", comment: "c", rules: [], missingRules: [], knownHostKeys: {} };
    const r = await diff("id", olds as never, { ...copy(inputs), allowFrom: [] } as never);
    assert.equal(r.changes, true);
    assert.deepEqual(r.replaces ?? [], []);
  });

  it("check refuses a list entry that is not a CIDR or a protocol/port, naming it", async () => {
    const r = await check({}, { ...args, allowFrom: ["10.31.0.1/24"], hostPorts: ["sctp/1"] } as never);
    const said = (r.failures ?? []).map((f) => f.reason).join("\n");
    assert.match(said, /allowFrom\[0\]: "10\.31\.0\.1\/24" has host bits set/);
    assert.match(said, /hostPorts\[0\]: "sctp\/1" is not "tcp\/<port>"/);
  });
});
