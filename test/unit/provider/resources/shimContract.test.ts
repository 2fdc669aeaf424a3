import { strict as assert } from "node:assert";
import * as path from "node:path";
import { shimProvider } from "../../../../provider/resources/shim";

// The shim is serialized into every resource's state and outlives the release
// that wrote it: a stack moves between releases both ways (an upgrade, then a
// rollback after a bad one). What joins a stored shim to whatever release is
// installed is only this: the impl module's six operations, by name.
const IMPLS = ["namespace", "vethPair", "bridge", "route", "masqueradeRule", "portForward", "vxlan"];
const OPERATIONS = ["check", "diff", "create", "read", "update", "remove"];

describe("provider shim: the contract between a stored shim and the installed impl modules", () => {
  it("calls only the six named operations (so a stack written by this release still runs on an older one)", async () => {
    const shim = shimProvider(path.join(__dirname, "../../fixtures/impl-contract/namedOnly.js")) as unknown as Record<
      string,
      (...args: unknown[]) => Promise<{ op: string; args: unknown[] }>
    >;
    const calls: Array<[string, unknown[], string]> = [
      ["check", [{}, { a: 1 }], "check"],
      ["diff", ["id", {}, {}], "diff"],
      ["create", [{ a: 1 }], "create"],
      ["read", ["id", {}], "read"],
      ["update", ["id", {}, {}], "update"],
      ["delete", ["id", {}], "remove"],
    ];
    for (const [method, args, op] of calls) {
      const answer = await shim[method](...args);
      assert.equal(answer.op, op, method);
      assert.deepEqual(answer.args, args, method);
    }
  });

  for (const impl of IMPLS)
    it(`impl/${impl} exports the six named operations (which shims stored by older releases call)`, () => {
      const module = require(`../../../../provider/impl/${impl}`) as Record<string, unknown>;
      for (const op of OPERATIONS) assert.equal(typeof module[op], "function", `${impl}.${op}`);
    });
});
