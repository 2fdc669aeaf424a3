import { strict as assert } from "node:assert";
import { type ResourceKind, VALID_ARGS, VALID_CONNECTION } from "../../../security/cases";
import { implOf } from "./support";

// The dynamic-provider host sends check's inputs back to the engine as a
// protobuf Struct, which refuses `undefined` ("Unexpected struct type."): a
// missing required field then hid the validator's own message behind that
// one, in `pulumi preview` of a JavaScript program (or `as any` in TypeScript).
const { Struct } = require("google-protobuf/google/protobuf/struct_pb") as {
  Struct: { fromJavaScript(v: unknown): unknown };
};

/** Each resource's required fields (besides connection), left out one at a time. */
const REQUIRED: Record<ResourceKind, string[]> = {
  namespace: [],
  vethPair: ["a", "b"],
  bridge: [],
  route: ["destination"],
  masqueradeRule: ["source"],
  portForward: ["hostPort", "toAddress"],
  vxlan: ["name", "vni", "remotes"],
};

describe("check: inputs go back to the engine as a protobuf Struct", () => {
  for (const [kind, fields] of Object.entries(REQUIRED) as Array<[ResourceKind, string[]]>) {
    for (const field of [...fields, "connection"]) {
      it(`${kind} without ${field}: the failure names ${field}, and the inputs serialize`, async () => {
        const news: Record<string, unknown> = { connection: VALID_CONNECTION, ...VALID_ARGS[kind] };
        delete news[field];
        const result = await implOf(kind).check({}, news);
        assert.ok(
          result.failures?.some((f) => f.property === field || f.property.startsWith(`${field}.`)),
          `no failure for ${field}: ${JSON.stringify(result.failures)}`,
        );
        assert.doesNotThrow(() => Struct.fromJavaScript(result.inputs), `${kind} without ${field}`);
      });
    }
    it(`${kind} with every field: the inputs serialize and carry no undefined`, async () => {
      const result = await implOf(kind).check({}, { connection: VALID_CONNECTION, ...VALID_ARGS[kind] });
      assert.equal(result.failures, undefined, JSON.stringify(result.failures));
      assert.doesNotThrow(() => Struct.fromJavaScript(result.inputs));
    });
  }
});
