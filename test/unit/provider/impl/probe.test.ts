import { strict as assert } from "node:assert";
import * as probe from "../../../../provider/impl/probe";
import { UNKNOWN } from "../../../../provider/validate";
import { VALID_CONNECTION } from "../../../security/cases";

const check = (args: Record<string, unknown>) => probe.check({}, { connection: VALID_CONNECTION, ...args });

async function checked(args: Record<string, unknown>): Promise<Record<string, unknown>> {
  const r = await check(args);
  assert.equal(r.failures, undefined, JSON.stringify(r.failures));
  return r.inputs as Record<string, unknown>;
}

describe("impl/probe", () => {
  describe("check", () => {
    it("fills in expect reachable and a 2000 ms timeout; namespace and port stay absent", async () => {
      const inputs = await checked({ target: "192.168.15.2" });
      assert.equal(inputs.expect, "reachable");
      assert.equal(inputs.timeoutMs, 2000);
      assert.ok(!("namespace" in inputs) && !("port" in inputs), JSON.stringify(inputs));
    });

    it("takes IPv6 targets, a port, expect unreachable and a namespace", async () => {
      const inputs = await checked({ target: "fd00::2", port: 80, expect: "unreachable", namespace: "red" });
      assert.deepEqual([inputs.target, inputs.port, inputs.expect], ["fd00::2", 80, "unreachable"]);
    });

    const refused: Array<[string, Record<string, unknown>, RegExp]> = [
      ["a host name as target", { target: "example.com" }, /^target: "example.com" is not an IPv4 or IPv6 address/],
      ["a CIDR as target", { target: "10.0.0.1/24" }, /^target: .* is not an IPv4 or IPv6 address/],
      ["a shell word as target", { target: "1.2.3.4;reboot" }, /^target: /],
      ["an inet_aton spelling", { target: "127.1" }, /^target: "127.1" is not/],
      ["no target", {}, /^target: is required/],
      ["port 0", { target: "10.0.0.1", port: 0 }, /^port: 0 is not an integer from 1 to 65535/],
      ["port 65536", { target: "10.0.0.1", port: 65536 }, /^port: 65536 is not an integer/],
      ["another expect", { target: "10.0.0.1", expect: "up" }, /^expect: "up" must be one of reachable, unreachable/],
      [
        "a timeout too short",
        { target: "10.0.0.1", timeoutMs: 10 },
        /^timeoutMs: 10 is not an integer from 100 to 60000/,
      ],
      ["a timeout too long", { target: "10.0.0.1", timeoutMs: 600000 }, /^timeoutMs: 600000 is not an integer/],
      ["a namespace path", { target: "10.0.0.1", namespace: "../etc" }, /^namespace: "..\/etc" may contain only/],
      ["a misspelt field", { target: "10.0.0.1", expected: "reachable" }, /did you mean "expect"\?/],
    ];
    for (const [what, args, reason] of refused)
      it(`refuses ${what}, naming the field and the value`, async () => {
        const r = await check(args);
        assert.ok(r.failures && r.failures.length === 1, JSON.stringify(r.failures));
        assert.match(r.failures[0].reason, reason);
      });
  });

  describe("diff", () => {
    const base = { connection: VALID_CONNECTION, target: "192.168.15.2", expect: "reachable", timeoutMs: 2000 };
    const stored = { ...base, reachable: true, rttMs: 0.05, seen: "echo reply in 0.05 ms", knownHostKeys: {} };
    const rows: Array<[string, Record<string, unknown>, Record<string, unknown>, boolean]> = [
      ["nothing changed", {}, {}, false],
      ["another target: the check runs again (update)", {}, { target: "192.168.15.3" }, true],
      ["a port added", {}, { port: 80 }, true],
      ["expect switched", {}, { expect: "unreachable" }, true],
      ["the target unknown", {}, { target: UNKNOWN }, true],
      ["refresh saw it unreachable (expect reachable): the next up checks again", { reachable: false }, {}, true],
      [
        "refresh saw it unreachable, as expected",
        { reachable: false, expect: "unreachable" },
        { expect: "unreachable" },
        false,
      ],
      ["another round trip only (an output)", { rttMs: 9.9 }, {}, false],
    ];
    for (const [what, olds, news, changes] of rows)
      it(what, async () => {
        const d = await probe.diff("id", { ...stored, ...olds } as never, { ...base, ...news } as never);
        assert.equal(d.changes, changes, JSON.stringify(d));
        assert.deepEqual(d.replaces, [], "nothing on the host to replace: a probe is only updated");
      });
  });
});
