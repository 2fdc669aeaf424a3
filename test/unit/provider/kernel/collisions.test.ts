import { strict as assert } from "node:assert";
import { addressCollisions, forwardCollisions, overlaps } from "../../../../provider/kernel/collisions";

// `ip -j addr show` / `ip -j route show` of a host with the lesson's network on v-net-0.
const ADDR = JSON.stringify([
  { ifname: "lo", addr_info: [{ family: "inet", local: "127.0.0.1", prefixlen: 8 }] },
  { ifname: "eth0", addr_info: [{ family: "inet", local: "10.200.0.2", prefixlen: 24 }] },
  { ifname: "v-net-0", addr_info: [{ family: "inet", local: "192.168.15.5", prefixlen: 24 }] },
]);
const ROUTE = JSON.stringify([
  { dst: "default", gateway: "10.200.0.1", dev: "eth0" },
  { dst: "10.200.0.0/24", dev: "eth0", protocol: "kernel", scope: "link" },
  { dst: "192.168.15.0/24", dev: "v-net-0", protocol: "kernel", scope: "link" },
  { dst: "172.30.0.0/16", dev: "tun0", scope: "link" },
  { dst: "10.50.0.0/16", gateway: "10.200.0.9", dev: "eth0" },
]);

describe("kernel/collisions: addresses", () => {
  it("overlaps: containment either way, not neighbours", () => {
    assert.ok(overlaps("192.168.15.0/25", "192.168.15.0/24"));
    assert.ok(overlaps("192.168.15.5/24", "192.168.15.128/25"));
    assert.ok(!overlaps("192.168.15.0/25", "192.168.15.128/25"));
    assert.ok(!overlaps("10.31.0.1/24", "192.168.15.0/24"));
  });

  it("a prefix overlapping another interface's network is refused naming both interfaces and prefixes", () => {
    const [p] = addressCollisions("v-net-2", ["192.168.15.1/25"], ADDR, ROUTE);
    assert.match(
      p,
      /v-net-2's 192\.168\.15\.1\/25 \(network 192\.168\.15\.0\/25\) overlaps interface v-net-0's 192\.168\.15\.0\/24/,
    );
  });

  it("an address another interface has is refused as taken, naming that interface", () => {
    const [p] = addressCollisions("v-net-3", ["192.168.15.5/32"], ADDR, ROUTE);
    assert.match(p, /address 192\.168\.15\.5\/32 for v-net-3 is already on interface v-net-0 \(192\.168\.15\.5\/24\)/);
  });

  it("a connected route through another interface counts; routes via a gateway and the default do not", () => {
    assert.match(
      addressCollisions("br", ["172.30.1.1/24"], ADDR, ROUTE)[0],
      /route to 172\.30\.0\.0\/16 on interface tun0/,
    );
    assert.deepEqual(addressCollisions("br", ["10.50.1.1/24"], ADDR, ROUTE), []);
    assert.deepEqual(addressCollisions("br", ["10.31.0.1/24"], ADDR, ROUTE), []);
  });

  it("the device's own addresses and routes (an adopted bridge) are not collisions", () => {
    assert.deepEqual(addressCollisions("v-net-0", ["192.168.15.5/24"], ADDR, ROUTE), []);
  });
});

const OUTPUT_RULE =
  '-A OUTPUT -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 8080 -m comment --comment "pulumi-netns/pfwd/0a1b2c3d/ipfw=0,tnat=0" -j DNAT --to-destination 192.168.15.2:80';

describe("kernel/collisions: host ports", () => {
  const NAT = [
    "*nat",
    ":PREROUTING ACCEPT [0:0]",
    '-A PREROUTING -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 8080 -m comment --comment "pulumi-netns/pfwd/0a1b2c3d/ipfw=0,tnat=0" -j DNAT --to-destination 192.168.15.2:80',
    "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 9000:9010 -j DNAT --to-destination 172.17.0.2:80",
    "-A PREROUTING -i eth1 -p udp -m udp --dport 53 -j DNAT --to-destination 10.0.0.53",
    "-A POSTROUTING -d 192.168.15.2/32 -p tcp -m tcp --dport 8080 -j MASQUERADE",
    "COMMIT",
  ].join("\n");

  it("a port another DNAT rule takes is refused naming that rule's owner comment", () => {
    const all = forwardCollisions("tcp", 8080, undefined, NAT.replace("COMMIT", `${OUTPUT_RULE}\nCOMMIT`));
    assert.equal(all.length, 1, "one owner is named once, not once per chain");
    const [p] = all;
    assert.match(p, /--dport 8080 .*\(owner: pulumi-netns\/pfwd\/0a1b2c3d\/ipfw=0,tnat=0\)$/);
  });

  it("anyone's rule counts, in any nat chain and in port ranges; its lack of an owner is said", () => {
    assert.match(forwardCollisions("tcp", 9005, undefined, NAT)[0], /^-A DOCKER .*not made by pulumi-netns/);
  });

  it("a forward into the network's own subnet is its own (a stack made before the check), not a collision", () => {
    assert.deepEqual(forwardCollisions("tcp", 8080, undefined, NAT, ["192.168.15.5/24"]), []);
    assert.equal(forwardCollisions("tcp", 8080, undefined, NAT, ["10.31.0.1/24"]).length, 1);
  });

  it("another protocol, another port, another in-interface or POSTROUTING are no collision", () => {
    assert.deepEqual(forwardCollisions("udp", 8080, undefined, NAT), []);
    assert.deepEqual(forwardCollisions("tcp", 8081, undefined, NAT), []);
    assert.deepEqual(forwardCollisions("udp", 53, "eth0", NAT), []);
    assert.equal(forwardCollisions("udp", 53, undefined, NAT).length, 1);
  });
});
