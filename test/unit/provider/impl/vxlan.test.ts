import { strict as assert } from "node:assert";
import * as vxlan from "../../../../provider/impl/vxlan";
import { UNKNOWN } from "../../../../provider/validate";
import { VALID_CONNECTION } from "../../../security/cases";

type Values = Record<string, unknown>;
const ARGS = { name: "vxlan0", vni: 42, local: "192.0.2.1", remotes: ["192.0.2.2", "192.0.2.3"] };

async function failuresOf(args: Values): Promise<string[]> {
  const r = await vxlan.check({}, { connection: VALID_CONNECTION, ...ARGS, ...args });
  return (r.failures ?? []).map((f) => f.reason);
}

async function changeOf(news: Values, olds: Values = {}): Promise<string[] | "update" | "none"> {
  const checked = (await vxlan.check({}, { connection: VALID_CONNECTION, ...ARGS })).inputs as Values;
  const state = { ...checked, mac: "02:00:00:00:0a:01", ifindex: 7, adopted: false, mark: "m", ...olds };
  const d = await vxlan.diff("id", state as never, { ...checked, ...news } as never);
  if (d.replaces?.length) return d.replaces;
  return d.changes ? "update" : "none";
}

describe("impl/vxlan: check and diff (no host)", () => {
  it("fills in dstPort 4789, adopt false, no addresses; keeps what is given", async () => {
    const r = await vxlan.check({}, { connection: VALID_CONNECTION, ...ARGS });
    assert.equal(r.failures, undefined, JSON.stringify(r.failures));
    const i = r.inputs as Values;
    assert.equal(i.dstPort, 4789);
    assert.equal(i.adopt, false);
    assert.deepEqual(i.addresses, []);
    assert.deepEqual(i.remotes, ARGS.remotes);
  });

  const refused: Array<[string, Values, RegExp]> = [
    ["a VNI of 0", { vni: 0 }, /^vni: 0 is not an integer from 1 to 16777215/],
    ["a VNI above 24 bits", { vni: 16777216 }, /^vni: 16777216 is not an integer from 1 to 16777215/],
    ["a fractional VNI", { vni: 1.5 }, /^vni: 1.5 is not an integer/],
    ["no VNI", { vni: undefined }, /^vni: is required/],
    ["dstPort 0", { dstPort: 0 }, /^dstPort: 0 is not an integer from 1 to 65535/],
    ["a remote that is no IPv4 address", { remotes: ["192.0.2.300"] }, /^remotes\[0\]: "192.0.2.300" is not an IPv4/],
    [
      "an IPv6 remote beside an IPv4 local",
      { remotes: ["fd00:2::2"] },
      /^remotes\[0\]: "fd00:2::2" is IPv6 but local "192.0.2.1" is IPv4: a VXLAN device has one underlay family/,
    ],
    [
      "remotes of both families",
      { local: undefined, remotes: ["fd00:2::2", "192.0.2.2"] },
      /^remotes\[1\]: "192.0.2.2" is IPv4 but remotes\[0\] "fd00:2::2" is IPv6/,
    ],
    [
      "an IPv6 remote not as the kernel writes it",
      { local: "fd00:2::1", remotes: ["fd00:2:0::2"] },
      /^remotes\[0\]: .*write "fd00:2::2"/,
    ],
    [
      "a link-local IPv6 remote",
      { local: undefined, remotes: ["fe80::2"] },
      /^remotes\[0\]: "fe80::2" is a link-local/,
    ],
    ["a multicast IPv6 remote", { local: undefined, remotes: ["ff02::1"] }, /^remotes\[0\]: "ff02::1" is a multicast/],
    [
      "an IPv6 remote that is local",
      { local: "fd00:2::1", remotes: ["fd00:2::1"] },
      /^remotes\[0\]: "fd00:2::1" is local/,
    ],
    ["a link-local local", { local: "fe80::1", remotes: [] }, /^local: "fe80::1" is a link-local/],
    ["a remote listed twice", { remotes: ["192.0.2.2", "192.0.2.2"] }, /^remotes\[1\]: "192.0.2.2" is listed twice/],
    ["a remote that is local", { remotes: ["192.0.2.1"] }, /^remotes\[0\]: "192.0.2.1" is local.*itself/],
    ["remotes not a list", { remotes: "192.0.2.2" }, /^remotes: "192.0.2.2" is not a list/],
    ["no remotes", { remotes: undefined }, /^remotes: is required/],
    ["a bad local", { local: "10.0.0.1/8" }, /^local: "10.0.0.1\/8" is not an IPv4 address/],
    ["a bad name", { name: "vxlan;reboot" }, /^name: "vxlan;reboot" may contain only/],
    ["a name too long", { name: "vxlan-0123456789" }, /^name: .* must be 1-15 characters/],
    ["a bad underlay device", { device: "eth 1" }, /^device: "eth 1" may contain only/],
    ["a bad bridge", { bridge: "-br" }, /^bridge: "-br" may contain only/],
    ["a bad MTU", { mtu: 40 }, /^mtu: 40 is not an integer from 68/],
  ];
  for (const [what, args, reason] of refused)
    it(`refuses ${what}, naming the field`, async () => {
      const failures = await failuresOf(args);
      assert.ok(
        failures.some((f) => reason.test(f)),
        `${JSON.stringify(failures)} has no ${reason}`,
      );
    });

  it("takes no remotes at all (a one-node overlay)", async () => {
    assert.deepEqual(await failuresOf({ remotes: [] }), []);
  });

  it("takes an IPv6 underlay: IPv6 local and remotes, or IPv6 remotes alone", async () => {
    assert.deepEqual(await failuresOf({ local: "fd00:2::1", remotes: ["fd00:2::2", "2001:db8::3"] }), []);
    assert.deepEqual(await failuresOf({ local: undefined, remotes: ["fd00:2::2"] }), []);
  });

  const diffs: Array<[string, Values, Values, string[] | "update" | "none"]> = [
    ["a remote added", { remotes: ["192.0.2.2", "192.0.2.3", "192.0.2.4"] }, {}, "update"],
    ["a remote removed", { remotes: ["192.0.2.2"] }, {}, "update"],
    ["the remotes in another order", { remotes: ["192.0.2.3", "192.0.2.2"] }, {}, "none"],
    ["another VNI", { vni: 43 }, {}, ["vni"]],
    ["the VNI unknown", { vni: UNKNOWN }, {}, ["vni"]],
    ["another dstPort", { dstPort: 8472 }, {}, ["dstPort"]],
    ["another local", { local: "192.0.2.9" }, {}, ["local"]],
    ["another underlay device", { device: "eth1" }, {}, ["device"]],
    ["another name", { name: "vxlan1" }, {}, ["name"]],
    ["into a namespace", { namespace: "red" }, {}, ["namespace"]],
    ["another bridge", { bridge: "v-net-0" }, {}, "update"],
    ["another MTU", { mtu: 1400 }, {}, "update"],
    ["an address", { addresses: ["10.244.0.1/16"] }, {}, "update"],
    ["refresh found an FDB entry missing", {}, { missingRemotes: ["192.0.2.2"] }, "update"],
    ["nothing", {}, { missingRemotes: [] }, "none"],
    // The device's socket family is set when it is made: remotes of the other family need a new device.
    [
      "no local, the remotes IPv4 -> IPv6",
      { local: undefined, remotes: ["fd00:2::2"] },
      { local: undefined },
      ["remotes"],
    ],
    ["no local, every remote removed", { local: undefined, remotes: [] }, { local: undefined }, "update"],
  ];
  for (const [what, news, olds, expect] of diffs)
    it(`diff: ${what} -> ${Array.isArray(expect) ? `replaces ${expect}` : expect}`, async () => {
      assert.deepEqual(await changeOf(news, olds), expect);
    });
});
