import { strict as assert } from "node:assert";
import { at } from "../../../../provider/kernel/namespace";
import {
  addVxlan,
  appendFdb,
  deleteFdb,
  parseFdbRemotes,
  parseVxlanInfo,
  printFdb,
} from "../../../../provider/kernel/vxlan";

// Captured on this machine (iproute2 6.1): `bridge -j fdb show dev vxt0` of a vxlan port of br0 with two peers,
// and an entry it learned from a peer (a real MAC with a dst), which is not a flood entry.
const FDB = JSON.stringify([
  { mac: "0a:e8:e8:ff:e3:e7", flags: [], master: "br0", state: "permanent" },
  { mac: "00:00:00:00:00:00", dst: "192.0.2.1", flags: ["self"], state: "permanent" },
  { mac: "00:00:00:00:00:00", dst: "192.0.2.2", flags: ["self"], state: "permanent" },
  { mac: "5a:11:22:33:44:55", dst: "192.0.2.7", flags: ["self"], state: "" },
]);

const LINK = JSON.stringify([
  {
    ifindex: 4,
    ifname: "vxt0",
    flags: ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"],
    mtu: 1450,
    master: "br0",
    address: "0a:e8:e8:ff:e3:e7",
    linkinfo: {
      info_kind: "vxlan",
      info_data: { id: 42, local: "192.0.2.9", link: "d0", port: 4789, learning: true },
      info_slave_kind: "bridge",
    },
  },
]);

describe("kernel/vxlan: builders and parsers", () => {
  it("adds a VXLAN device with its VNI, port, and local address and underlay when given", () => {
    assert.equal(
      addVxlan(at(undefined), { name: "vxlan0", vni: 42, dstPort: 4789 }),
      "ip link add name vxlan0 type vxlan id 42 dstport 4789",
    );
    assert.equal(
      addVxlan(at("red"), { name: "vxlan0", vni: 1, dstPort: 8472, local: "192.0.2.1", device: "eth1" }),
      "ip '-n' red link add name vxlan0 type vxlan id 1 dstport 8472 local 192.0.2.1 dev eth1",
    );
    // IPv6 peers without a local address: "local ::" makes the device's socket IPv6 (measured: without it
    // \`bridge fdb append ... dst fd00:9::2\` is refused, "Address family not supported by protocol").
    assert.equal(
      addVxlan(at(undefined), { name: "vxlan0", vni: 42, dstPort: 4789, remotes: ["fd00:9::2"] }),
      "ip link add name vxlan0 type vxlan id 42 dstport 4789 local ::",
    );
    assert.equal(
      addVxlan(at(undefined), { name: "vxlan0", vni: 42, dstPort: 4789, local: "fd00:9::1", remotes: ["fd00:9::2"] }),
      "ip link add name vxlan0 type vxlan id 42 dstport 4789 local fd00:9::1",
    );
  });

  it("appends and deletes a peer's all-zeros (flood) FDB entry, in the device's namespace", () => {
    assert.equal(
      appendFdb(at(undefined), "vxlan0", "192.0.2.2"),
      "bridge fdb append 00:00:00:00:00:00 dst 192.0.2.2 dev vxlan0",
    );
    assert.equal(
      deleteFdb(at("red"), "vxlan0", "192.0.2.2"),
      "ip netns exec red bridge fdb del 00:00:00:00:00:00 dst 192.0.2.2 dev vxlan0",
    );
    assert.equal(printFdb(at(undefined), "vxlan0"), "bridge '-j' fdb show dev vxlan0");
  });

  it("reads the peers from the all-zeros entries only (not learned ones, not the bridge's)", () => {
    assert.deepEqual(parseFdbRemotes(FDB, "vxt0"), ["192.0.2.1", "192.0.2.2"]);
    assert.deepEqual(parseFdbRemotes("", "vxt0"), []);
    assert.throws(() => parseFdbRemotes("{nope", "vxt0"), /cannot parse the JSON of vxt0/);
  });

  it("reads VNI, port, local and underlay from `ip -d -j`; nothing for another kind", () => {
    assert.deepEqual(parseVxlanInfo(LINK), { vni: 42, dstPort: 4789, local: "192.0.2.9", device: "d0" });
    assert.equal(parseVxlanInfo(LINK.replace('"vxlan"', '"bridge"')), undefined);
    assert.equal(parseVxlanInfo(""), undefined);
    // An IPv6 local address is "local6" (iproute2 6.1, captured here).
    const v6 = LINK.replace('"local":"192.0.2.9"', '"local6":"fd00:9::2"');
    assert.deepEqual(parseVxlanInfo(v6), { vni: 42, dstPort: 4789, local: "fd00:9::2", device: "d0" });
  });
});
