import { strict as assert } from "node:assert";
import { announcesAfter, type BridgeInputs } from "../../../../provider/impl/bridge";
import { UNKNOWN } from "../../../../provider/validate";
import { defaultsTable, diffTable } from "./support";

describe("impl/bridge", () => {
  defaultsTable("bridge", [
    {
      what: "addresses [], up, adopt false by default",
      args: { name: "v-net-0" },
      expect: { addresses: [], up: true, adopt: false, forwardFrom: [] },
      absent: ["mtu", "namespace"],
    },
    {
      what: "given values are kept",
      args: { name: "v-net-0", addresses: ["10.0.0.1/8"], up: false, adopt: true, mtu: 9000 },
      expect: { addresses: ["10.0.0.1/8"], up: false, adopt: true, mtu: 9000 },
    },
  ]);

  diffTable("bridge", [
    { what: "another name", news: { name: "v-net-1" }, expect: ["name"] },
    { what: "the name unknown", news: { name: UNKNOWN }, expect: ["name"] },
    { what: "moved into a namespace", news: { namespace: "red" }, expect: ["namespace"] },
    { what: "another name and namespace", news: { name: "v-net-1", namespace: "red" }, expect: ["name", "namespace"] },
    { what: "an address added", news: { addresses: ["192.168.15.5/24", "10.0.0.1/8"] }, expect: "update" },
    { what: "no addresses", news: { addresses: [] }, expect: "update" },
    {
      what: "addresses in another order",
      olds: { addresses: ["10.0.0.1/8", "192.168.15.5/24"] },
      news: { addresses: ["192.168.15.5/24", "10.0.0.1/8"] },
      expect: "none",
    },
    { what: "another MTU", news: { mtu: 9000 }, expect: "update" },
    { what: "down", news: { up: false }, expect: "update" },
    { what: "adopt switched on", news: { adopt: true }, expect: "update" },
    { what: "another network let in (forwardFrom)", news: { forwardFrom: ["10.8.0.0/16"] }, expect: "update" },
    {
      what: "no forwardFrom in state (an older release's), none given",
      olds: { forwardFrom: undefined },
      news: { forwardFrom: [] },
      expect: "none",
    },
    {
      what: "refresh found its FORWARD rule missing",
      olds: { missingRules: ["-t filter -I FORWARD ..."] },
      expect: "update",
    },
    { what: "no missingRules in state (an older release's)", olds: { missingRules: undefined }, expect: "none" },
    { what: "another MAC and ifindex (outputs only)", olds: { mac: "02:00:00:00:00:09", ifindex: 9 }, expect: "none" },
  ]);

  describe("announcesAfter: an address added, or the bridge coming up, is announced", () => {
    const inputs = (o: Partial<BridgeInputs> = {}) =>
      ({ name: "v-net-0", addresses: ["192.168.15.5/24"], up: true, adopt: false, ...o }) as BridgeInputs;
    const current = (addresses: string[], up = true) => ({
      ifname: "v-net-0",
      ifindex: 2,
      mac: "02:00:00:00:0a:01",
      mtu: 1500,
      up,
      addresses,
    });
    const rows: Array<[string, BridgeInputs, ReturnType<typeof current>, boolean]> = [
      ["an address added", inputs(), current([]), true],
      ["the bridge comes up", inputs(), current(["192.168.15.5/24"], false), true],
      ["nothing changes", inputs(), current(["192.168.15.5/24"]), false],
      ["an address removed only", inputs(), current(["192.168.15.5/24", "10.0.0.1/8"]), false],
      ["up with no address: nothing to announce", inputs({ addresses: [] }), current([], false), false],
      ["an address added to a bridge kept down", inputs({ up: false }), current([], false), false],
    ];
    for (const [what, i, c, expected] of rows) it(what, () => assert.equal(announcesAfter(i, c), expected));
  });
});
