import { strict as assert } from "node:assert";
import { inputBag, SCHEMAS } from "../../../../provider/resources/shim";
import { OTHER_FIELDS } from "../../../../provider/schema";
import { VALID_ARGS, VALID_CONNECTION } from "../../../security/cases";
import { checkedInputs, diffTable, implOf } from "../impl/support";

/**
 * retainOnDelete (issue #10 item 7): the engine never tells a dynamic provider
 * its resource options, so the class passes this one in as an input, which the
 * provider needs to leave no mark (and, on an adopted Bridge, no FORWARD rule)
 * on an object destroy will leave. It is an option, not an arg.
 */
const RETAINABLE = ["namespace", "bridge", "vethPair", "vxlan"] as const;
const TYPE_OF = { namespace: "Namespace", bridge: "Bridge", vethPair: "VethPair", vxlan: "Vxlan" } as const;

describe("retainOnDelete: the resource option reaches the provider as an input", () => {
  for (const kind of RETAINABLE) {
    const schema = SCHEMAS[TYPE_OF[kind]];

    it(`${kind}: the class fills it in from the options, not from the args`, () => {
      const args = { connection: VALID_CONNECTION, ...VALID_ARGS[kind] } as never;
      assert.equal(inputBag(schema, "r", args, { retainOnDelete: true }).retainOnDelete, true);
      assert.equal(inputBag(schema, "r", args, {}).retainOnDelete, undefined);
      assert.equal(inputBag(schema, "r", args).retainOnDelete, undefined);
      // Given as an arg, it goes to check by name (refused there), never as the value.
      const asArg = inputBag(schema, "r", { ...(args as object), retainOnDelete: true } as never, {});
      assert.equal(asArg.retainOnDelete, undefined);
      assert.deepEqual(asArg[OTHER_FIELDS], ["retainOnDelete"]);
    });

    it(`${kind}: check defaults it to false and keeps true`, async () => {
      assert.equal((await checkedInputs(kind)).retainOnDelete, false);
      assert.equal((await checkedInputs(kind, { ...VALID_ARGS[kind], retainOnDelete: true })).retainOnDelete, true);
    });

    it(`${kind}: check refuses it as an arg, saying it is a resource option`, async () => {
      const result = await implOf(kind).check(
        {},
        { connection: VALID_CONNECTION, ...VALID_ARGS[kind], [OTHER_FIELDS]: ["retainOnDelete"] },
      );
      const failures = result.failures ?? [];
      assert.equal(failures.length, 1, JSON.stringify(failures));
      assert.equal(failures[0].property, "");
      assert.match(
        failures[0].reason,
        /"retainOnDelete" is a resource option, not an arg: .*\{ retainOnDelete: true \}/,
      );
    });
  }

  it("the other resources have no such field (delete runs for them or removes nothing of the user's)", () => {
    for (const type of ["Route", "MasqueradeRule", "PortForward", "Probe", "NetworkIsolation"] as const)
      assert.equal(Object.hasOwn(SCHEMAS[type].fields, "retainOnDelete"), false, type);
  });
});

describe("retainOnDelete: a change is an update in place", () => {
  for (const kind of RETAINABLE)
    diffTable(kind, [
      {
        what: "retainOnDelete turned on",
        olds: { retainOnDelete: false },
        news: { retainOnDelete: true },
        expect: "update",
      },
      {
        what: "retainOnDelete turned off",
        olds: { retainOnDelete: true },
        news: { retainOnDelete: false },
        expect: "update",
      },
      { what: "state from before the field, not retained", olds: { retainOnDelete: undefined }, expect: "none" },
    ]);
});
