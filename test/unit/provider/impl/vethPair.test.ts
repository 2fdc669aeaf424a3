import { strict as assert } from "node:assert";
import { bridgesToAnnounce } from "../../../../provider/impl/vethPair";
import { UNKNOWN } from "../../../../provider/validate";
import { VALID_ARGS, VALID_CONNECTION } from "../../../security/cases";
import { defaultsTable, diffTable, implOf } from "./support";

/** The baseline's ends after check, and as state records them (with what the kernel said). */
const A = { name: "veth-red", namespace: "red", addresses: ["192.168.15.1/24"], up: true };
const B = { name: "veth-red-br", bridge: "v-net-0", addresses: [], up: true };
const observed = { mac: "02:00:00:00:0a:02", ifindex: 3 };
const state = (a: object, b: object = B) => ({ a: { ...a, ...observed }, b: { ...b, ...observed } });

describe("impl/vethPair", () => {
  defaultsTable("vethPair", [
    {
      what: "each end: addresses [] and up by default, adopt false",
      args: { a: { name: "x" }, b: { name: "y" } },
      expect: { a: { name: "x", addresses: [], up: true }, b: { name: "y", addresses: [], up: true }, adopt: false },
      absent: ["mtu"],
    },
    {
      what: "given values are kept",
      args: { ...VALID_ARGS.vethPair, adopt: true },
      expect: { a: A, b: B, mtu: 1500, adopt: true },
    },
    { what: "an unknown end stays unknown", args: { a: UNKNOWN, b: { name: "y" } }, expect: { a: UNKNOWN } },
    // In preview both ends may still be unknown (built by apply() from outputs to come): nothing to compare yet.
    { what: "both ends unknown pass", args: { a: UNKNOWN, b: UNKNOWN }, expect: { a: UNKNOWN, b: UNKNOWN } },
    {
      what: "one name in two namespaces not known yet passes",
      args: { a: { name: "x", namespace: UNKNOWN }, b: { name: "x", namespace: UNKNOWN } },
      expect: { a: { name: "x", namespace: UNKNOWN, addresses: [], up: true } },
    },
  ]);

  diffTable("vethPair", [
    { what: "the ends as state records them (mac, ifindex)", olds: state(A), expect: "none" },
    { what: "a renamed", olds: state(A), news: { a: { ...A, name: "veth-red2" } }, expect: ["a"] },
    { what: "a moved to another namespace", olds: state(A), news: { a: { ...A, namespace: "blue" } }, expect: ["a"] },
    { what: "b moved into a namespace", olds: state(A), news: { b: { ...B, namespace: "blue" } }, expect: ["b"] },
    { what: "a unknown", olds: state(A), news: { a: UNKNOWN }, expect: ["a"] },
    {
      what: "both renamed",
      olds: state(A),
      news: { a: { ...A, name: "x" }, b: { ...B, name: "y" } },
      expect: ["a", "b"],
    },
    {
      what: "a renamed and the MTU changed",
      olds: state(A),
      news: { a: { ...A, name: "x" }, mtu: 9000 },
      expect: ["a"],
    },
    {
      what: "an address added to a",
      olds: state(A),
      news: { a: { ...A, addresses: [...A.addresses, "10.0.0.1/8"] } },
      expect: "update",
    },
    {
      what: "a's addresses in another order",
      olds: state({ ...A, addresses: ["10.0.0.1/8", "192.168.15.1/24"] }),
      news: { a: { ...A, addresses: ["192.168.15.1/24", "10.0.0.1/8"] } },
      expect: "none",
    },
    { what: "b on another bridge", olds: state(A), news: { b: { ...B, bridge: "v-net-1" } }, expect: "update" },
    { what: "b off its bridge", olds: state(A), news: { b: { ...B, bridge: undefined } }, expect: "update" },
    { what: "a down", olds: state(A), news: { a: { ...A, up: false } }, expect: "update" },
    { what: "refresh saw b down", olds: state(A, { ...B, up: false }), expect: "update" },
    { what: "another MTU", olds: state(A), news: { mtu: 9000 }, expect: "update" },
    { what: "the MTU dropped", olds: state(A), news: { mtu: undefined }, expect: "update" },
    { what: "adopt switched on", olds: state(A), news: { adopt: true }, expect: "update" },
  ]);

  describe("bridgesToAnnounce: the bridge an end joins or comes up in is announced (a re-created bridge has a new MAC)", () => {
    const link = (master: string | undefined, up = true) => ({
      ifname: "veth-red-br",
      ifindex: 3,
      mac: "02:00:00:00:0a:02",
      mtu: 1500,
      up,
      master,
      addresses: [],
    });
    const rows: Array<[string, object, ReturnType<typeof link> | undefined, string[]]> = [
      ["b joins v-net-0 (its bridge was re-created)", B, link(undefined), ["v-net-0"]],
      ["b moves to v-net-1", { ...B, bridge: "v-net-1" }, link("v-net-0"), ["v-net-1"]],
      ["b comes up in v-net-0", B, link("v-net-0", false), ["v-net-0"]],
      ["b already up in v-net-0: nothing", B, link("v-net-0"), []],
      ["b joins v-net-0 but stays down: nothing", { ...B, up: false }, link(undefined, false), []],
      ["b leaves its bridge: nothing", { ...B, bridge: undefined }, link("v-net-0"), []],
    ];
    for (const [what, b, current, bridges] of rows)
      it(what, () => {
        const cmds = bridgesToAnnounce([A, b as typeof B], [link(undefined), current]);
        assert.deepEqual(
          cmds.map((c) => / announce-bridge (\S+)$/.exec(c)?.[1]),
          bridges,
        );
      });
    it("announces a bridge in a namespace there", () => {
      const [cmd] = bridgesToAnnounce([A, { ...B, namespace: "blue" }], [undefined, undefined]);
      assert.match(cmd, /^ip netns exec blue sh /);
    });
  });

  it("refuses one name for both ends in one place, a null namespace being the host's too", async () => {
    for (const [a, b] of [
      [{ name: "dup0" }, { name: "dup0" }],
      [{ name: "dup0", namespace: null }, { name: "dup0" }],
      [
        { name: "dup0", namespace: "red" },
        { name: "dup0", namespace: "red" },
      ],
    ]) {
      const failures = (await implOf("vethPair").check({}, { connection: VALID_CONNECTION, a, b })).failures ?? [];
      assert.deepEqual(
        failures.map((f) => f.property),
        ["b.name"],
        JSON.stringify([a, b]),
      );
    }
  });
});
