import { strict as assert } from "node:assert";
import { PlanError, planNetwork } from "../../../../components/plan";
import { type ResourceKind, VALID_ARGS, VALID_CONNECTION } from "../../../security/cases";
import { lessonSpec } from "../../../support/lessonSpec";
import { implOf } from "./support";

/** (resource, a field name as a user might misspell it, the field meant). */
const MISSPELT: Array<[ResourceKind, string, string]> = [
  ["namespace", "loopbakUp", "loopbackUp"],
  ["vethPair", "mut", "mtu"],
  ["bridge", "adresses", "addresses"],
  ["route", "destinaton", "destination"],
  ["masqueradeRule", "outInterfce", "outInterface"],
  ["portForward", "toPrt", "toPort"],
];

/** (resource, a field it does not have and that is close to none of its own). */
const FOREIGN: Array<[ResourceKind, string]> = [
  ["masqueradeRule", "adopt"],
  ["route", "adopt"],
  ["portForward", "adopt"],
];

/** (resource, one of its outputs, which the provider sets and a program cannot). */
const OUTPUTS: Array<[ResourceKind, string]> = [
  ["masqueradeRule", "comment"],
  ["bridge", "mac"],
  ["namespace", "adopted"],
];

const checkWith = (kind: ResourceKind, extra: Record<string, unknown>) =>
  implOf(kind).check({}, { connection: VALID_CONNECTION, ...VALID_ARGS[kind], ...extra });

describe("check: a field the resource does not have is refused, naming it and the closest valid name", () => {
  for (const [kind, wrong, meant] of MISSPELT)
    it(`${kind}.${wrong}: did you mean ${meant}?`, async () => {
      const failures = (await checkWith(kind, { [wrong]: false })).failures ?? [];
      assert.equal(failures.length, 1, JSON.stringify(failures));
      assert.equal(failures[0].property, "", "no property path: the engine would print the value found there");
      assert.match(failures[0].reason, new RegExp(`unknown field .*${wrong}.*did you mean "${meant}"`));
    });

  for (const [kind, wrong] of FOREIGN)
    it(`${kind}.${wrong}: not a field of ${kind}; the valid ones are listed`, async () => {
      const failures = (await checkWith(kind, { [wrong]: true })).failures ?? [];
      assert.equal(failures.length, 1, JSON.stringify(failures));
      assert.equal(failures[0].property, "", "no property path: the engine would print the value found there");
      assert.match(failures[0].reason, /unknown field/);
      assert.match(failures[0].reason, /valid fields: connection, /);
    });

  for (const [kind, output] of OUTPUTS)
    it(`${kind}.${output}: an output is set by the provider, not by the program`, async () => {
      const failures = (await checkWith(kind, { [output]: "x" })).failures ?? [];
      assert.equal(failures.length, 1, JSON.stringify(failures));
      assert.equal(failures[0].property, "");
      assert.match(failures[0].reason, /is an output/);
    });

  it("never shows the value of an unknown field (a key put at the top level by mistake is still a key)", async () => {
    const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
    const failures = (await checkWith("namespace", { privateKey: key, password: "hunter2-secret" })).failures ?? [];
    assert.deepEqual(
      failures.map((f) => f.property),
      ["", ""],
    );
    for (const f of failures) {
      assert.ok(!f.reason.includes("b3BlbnNzaC1rZXktdjEAAAAA") && !f.reason.includes("hunter2"), f.reason);
      assert.match(f.reason, /belongs in connection/);
    }
  });

  it("refuses the names a resource class hands over (their values never leave the program), odd ones included", async () => {
    const names = ["loopbakUp", "hasOwnProperty", "__proto__", `x${"y".repeat(3_000_000)}`];
    const started = Date.now();
    const failures = (await checkWith("namespace", { __otherFields: names })).failures ?? [];
    assert.ok(Date.now() - started < 2000, "a huge name is cheap");
    assert.equal(failures.length, names.length, JSON.stringify(failures.map((f) => f.reason.slice(0, 80))));
    assert.ok(failures.every((f) => f.property === ""));
    assert.match(failures[0].reason, /did you mean "loopbackUp"/);
    assert.ok(failures[3].reason.length < 400, "the name is shortened");
  });

  it("connection.privatekey: did you mean privateKey? (the value is not shown)", async () => {
    const result = await implOf("namespace").check(
      {},
      { ...VALID_ARGS.namespace, connection: { ...VALID_CONNECTION, privatekey: "hunter2-secret" } },
    );
    assert.deepEqual(result.failures, [
      {
        property: "connection.privatekey",
        reason: 'connection.privatekey: unknown connection field "privatekey"; did you mean "privateKey"?',
      },
    ]);
  });

  it("lets the engine's own __provider through", async () => {
    const result = await checkWith("namespace", { __provider: "exports.handler = ..." });
    assert.equal(result.failures, undefined, JSON.stringify(result.failures));
    assert.equal((result.inputs as Record<string, unknown>).__provider, "exports.handler = ...");
  });
});

describe("IsolatedNetwork: a field the spec does not have is refused, naming it and the closest valid name", () => {
  const ROWS: Array<[string, Record<string, unknown>, RegExp]> = [
    [
      "nameSpaces at the top",
      { nameSpaces: lessonSpec().namespaces },
      /nameSpaces: unknown field.*did you mean "namespaces"/,
    ],
    [
      "adress in a namespace",
      { namespaces: [{ name: "red", adress: "192.168.15.1" }] },
      /namespaces\[0\]\.adress: unknown field.*did you mean "address"/,
    ],
    [
      "hostport in a port forward",
      { portForwards: [{ namespace: "red", hostport: 8080 }] },
      /portForwards\[0\]\.hostport: unknown field.*did you mean "hostPort"/,
    ],
  ];
  ROWS.push([
    "a key with a line break, shown quoted (no line of its own in the error)",
    { "bogus\nsubnet: fine": 1 },
    /^IsolatedNetwork: "bogus\\nsubnet: fine": unknown field/,
  ]);
  for (const [what, change, expected] of ROWS)
    it(what, () => {
      const spec = { ...lessonSpec(), ...change } as Parameters<typeof planNetwork>[0];
      assert.throws(
        () => planNetwork(spec),
        (e: unknown) => e instanceof PlanError && expected.test(e.message),
      );
    });

  it("reads a spec's fields through getters and prototypes (only own keys are checked), and allows connection", () => {
    const spec = Object.assign(Object.create(lessonSpec()), { connection: { host: "h" } });
    assert.equal(planNetwork(spec).bridge, "v-net-0");
  });
});
