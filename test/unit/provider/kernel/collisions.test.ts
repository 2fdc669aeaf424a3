import { strict as assert } from "node:assert";
import {
  addressCollisions,
  foreignDevice,
  forwardCollisions,
  otherIsolations,
} from "../../../../provider/kernel/collisions";

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

  it("a connected route through another interface counts; the default route does not", () => {
    assert.match(
      addressCollisions("br", ["172.30.1.1/24"], ADDR, ROUTE)[0],
      /route to 172\.30\.0\.0\/16 on interface tun0/,
    );
    assert.deepEqual(addressCollisions("br", ["10.31.0.1/24"], ADDR, ROUTE), []);
  });

  // `ip -j route show table all`: every table, every route type the kernel routes by prefix.
  const ALL_TABLES = JSON.stringify([
    ...JSON.parse(ROUTE),
    { type: "blackhole", dst: "10.60.0.0/16", flags: [] },
    { type: "unreachable", dst: "10.61.0.0/24", flags: [] },
    { dst: "10.62.0.0/24", dev: "eth0", table: "100", flags: [] },
    { type: "throw", dst: "10.63.0.0/24", table: "100", flags: [] },
    { dst: "fe80::/64", dev: "eth0", protocol: "kernel", metric: 256, flags: [], pref: "medium" },
    { type: "local", dst: "192.168.15.5", dev: "v-net-0", table: "local", protocol: "kernel", scope: "host" },
    { type: "broadcast", dst: "10.200.0.255", dev: "eth0", table: "local", protocol: "kernel", scope: "link" },
  ]);

  it("a route via a gateway, a blackhole or unreachable route, and a route in another table count, named with their kind and table", () => {
    assert.match(
      addressCollisions("br", ["10.50.1.1/24"], ADDR, ALL_TABLES)[0],
      /route to 10\.50\.0\.0\/16 via 10\.200\.0\.9 on interface eth0/,
    );
    assert.match(addressCollisions("br", ["10.60.3.1/24"], ADDR, ALL_TABLES)[0], /blackhole route to 10\.60\.0\.0\/16/);
    assert.match(
      addressCollisions("br", ["10.61.0.1/24"], ADDR, ALL_TABLES)[0],
      /unreachable route to 10\.61\.0\.0\/24/,
    );
    assert.match(
      addressCollisions("br", ["10.62.0.1/24"], ADDR, ALL_TABLES)[0],
      /route to 10\.62\.0\.0\/24 on interface eth0 \(table 100\)/,
    );
  });

  it("throw routes, IPv6 routes and the local table's own entries for addresses are not routes to a network", () => {
    assert.deepEqual(addressCollisions("br", ["10.63.0.1/24"], ADDR, ALL_TABLES), []);
    assert.deepEqual(addressCollisions("v-net-0", ["192.168.15.5/24"], ADDR, ALL_TABLES), []);
    assert.deepEqual(addressCollisions("br", ["10.200.1.1/24"], ADDR, ALL_TABLES), []);
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

  it("a port another DNAT rule takes is refused naming the owner once, its kind, and how to find it", () => {
    const all = forwardCollisions("tcp", 8080, undefined, NAT.replace("COMMIT", `${OUTPUT_RULE}\nCOMMIT`));
    assert.equal(all.length, 1, "one owner is named once, not once per chain");
    const [p] = all;
    assert.equal(p.split("pulumi-netns/pfwd/0a1b2c3d").length - 1, 1, `the owner comment once: ${p}`);
    assert.match(
      p,
      /^-A PREROUTING -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 8080 -j DNAT --to-destination 192\.168\.15\.2:80 /,
    );
    assert.match(
      p,
      /made by a pulumi-netns PortForward \(find it with: iptables-save \| grep -- pulumi-netns\/pfwd\/0a1b2c3d\/\)/,
    );
  });

  it("anyone's rule counts, in any nat chain and in port ranges; its lack of an owner is said", () => {
    assert.match(forwardCollisions("tcp", 9005, undefined, NAT)[0], /^-A DOCKER .*not made by pulumi-netns/);
  });

  const rules = (...lines: string[]) => ["*nat", ...lines, "COMMIT"].join("\n");
  const LOCALS = ["127.0.0.1/8", "10.200.0.2/24"];

  it("REDIRECT takes a port as DNAT does", () => {
    const nat = rules("-A PREROUTING -p tcp -m tcp --dport 8095 -j REDIRECT --to-ports 3128");
    assert.match(forwardCollisions("tcp", 8095, undefined, nat, [], LOCALS)[0], /REDIRECT --to-ports 3128/);
  });

  it("a DNAT without a port (or without a protocol) takes every port of the addresses it matches", () => {
    const toLocal = rules("-A PREROUTING -d 10.200.0.2/32 -j DNAT --to-destination 10.9.0.2");
    assert.equal(forwardCollisions("tcp", 8095, undefined, toLocal, [], LOCALS).length, 1);
    const anyPortTcp = rules("-A PREROUTING -p tcp -j DNAT --to-destination 10.9.0.2");
    assert.equal(forwardCollisions("tcp", 8095, undefined, anyPortTcp, [], LOCALS).length, 1);
    // Traffic to an address that is not the host's never reaches our rule (it matches local destinations only).
    const toOther = rules("-A PREROUTING -d 10.77.0.9/32 -j DNAT --to-destination 10.9.0.2");
    assert.deepEqual(forwardCollisions("tcp", 8095, undefined, toOther, [], LOCALS), []);
  });

  it("! --dport 8080 takes every port but 8080; ! -p tcp takes no tcp port", () => {
    const negated = rules("-A PREROUTING -p tcp -m tcp ! --dport 8080 -j DNAT --to-destination 10.9.0.2");
    assert.equal(forwardCollisions("tcp", 8095, undefined, negated, [], LOCALS).length, 1);
    assert.deepEqual(forwardCollisions("tcp", 8080, undefined, negated, [], LOCALS), []);
    const notTcp = rules("-A PREROUTING ! -p tcp -j DNAT --to-destination 10.9.0.2");
    assert.deepEqual(forwardCollisions("tcp", 8095, undefined, notTcp, [], LOCALS), []);
    assert.equal(forwardCollisions("udp", 8095, undefined, notTcp, [], LOCALS).length, 1);
  });

  it("! -i eth0 does not take what arrives on eth0 only; a non-LOCAL --dst-type takes nothing of ours", () => {
    const notEth0 = rules("-A PREROUTING ! -i eth0 -p tcp -m tcp --dport 8095 -j DNAT --to-destination 10.9.0.2");
    assert.deepEqual(forwardCollisions("tcp", 8095, "eth0", notEth0, [], LOCALS), []);
    assert.equal(forwardCollisions("tcp", 8095, "eth1", notEth0, [], LOCALS).length, 1);
    const bcast = rules(
      "-A PREROUTING -p tcp -m addrtype --dst-type BROADCAST -m tcp --dport 8095 -j DNAT --to-destination 10.9.0.2",
    );
    assert.deepEqual(forwardCollisions("tcp", 8095, undefined, bcast, [], LOCALS), []);
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

describe("kernel/collisions: an isolation's bridge name", () => {
  const links = JSON.stringify([
    { ifname: "v-net-0", group: "default", linkinfo: { info_kind: "bridge" } },
    { ifname: "v-net-1", group: "20051", linkinfo: { info_kind: "bridge" } },
  ]);
  it("someone else's interface under the name (not in the isolation group) is refused, naming it, its group and kind", () => {
    assert.equal(
      foreignDevice("v-net-0", links, 0x4e53),
      "interface v-net-0 already exists and is not an isolated network's bridge (group default, kind bridge)",
    );
  });
  it("an isolated network's own bridge (group 0x4e53), or no interface by that name, is not", () => {
    assert.equal(foreignDevice("v-net-1", links, 0x4e53), undefined);
    assert.equal(foreignDevice("v-net-7", links, 0x4e53), undefined);
  });
});

describe("kernel/collisions: a bridge another IsolatedNetwork isolates", () => {
  // As iptables-save prints two networks' rules (kernel/isolation), plus a stranger's rule naming v-net-0.
  const SAVE = [
    "*mangle",
    ":PREROUTING ACCEPT [0:0]",
    ":FORWARD ACCEPT [0:0]",
    '-A PREROUTING -i v-net-0 -m rpfilter --invert -m comment --comment "pulumi-netns/isol/0a1b2c3d/tmangle=0" -j DROP',
    '-A FORWARD ! -i v-net-0 -o v-net-0 -m devgroup --src-group 0x4e53 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment "pulumi-netns/isol/0a1b2c3d/tmangle=0" -j DROP',
    '-A FORWARD ! -i v-net-10 -o v-net-10 -m devgroup --src-group 0x4e53 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment "pulumi-netns/isol/99999999/" -j DROP',
    "COMMIT",
    "*filter",
    '-A FORWARD -i v-net-1 -o v-net-1 -m comment --comment "pulumi-netns/bridge/12345678/tfilter=0" -j ACCEPT',
    "-A FORWARD -i v-net-1 -j ACCEPT",
    "COMMIT",
  ].join("\n");
  it("names the other network's owner comment once, for the bridge it names as -i or -o", () => {
    assert.deepEqual(otherIsolations("v-net-0", SAVE), ["pulumi-netns/isol/0a1b2c3d/"]);
    assert.deepEqual(otherIsolations("v-net-10", SAVE), ["pulumi-netns/isol/99999999/"]);
  });
  it("a bridge's own FORWARD accept, a stranger's rule or a name that is only a prefix is no isolation", () => {
    assert.deepEqual(otherIsolations("v-net-1", SAVE), []);
    assert.deepEqual(otherIsolations("v-net", SAVE), []);
  });
});

describe("kernel/collisions: IPv6 addresses", () => {
  // `ip -N -d -j addr show` and `ip -6 -j route show table all` of a host with an IPv6 lab on v-net-0.
  const ADDR6 = JSON.stringify([
    {
      ifname: "lo",
      addr_info: [
        { family: "inet", local: "127.0.0.1", prefixlen: 8, scope: "254" },
        { family: "inet6", local: "::1", prefixlen: 128, scope: "254" },
      ],
    },
    {
      ifname: "v-net-0",
      addr_info: [
        { family: "inet6", local: "fd00:15::5", prefixlen: 64, scope: "0" },
        { family: "inet6", local: "fe80::1", prefixlen: 64, scope: "253" },
      ],
    },
  ]);
  const ROUTE6 = JSON.stringify([
    { dst: "fd00:15::/64", dev: "v-net-0", protocol: "kernel", metric: 256 },
    { dst: "fd00:40::/48", gateway: "fd00:15::9", dev: "v-net-0", protocol: "113", metric: 1024 },
    { dst: "fe80::/64", dev: "v-net-0", protocol: "kernel", metric: 256 },
    { dst: "default", gateway: "fd00:15::1", dev: "v-net-0", metric: 1024 },
    { type: "multicast", dst: "ff00::/8", dev: "v-net-0", table: "local", protocol: "kernel", metric: 256 },
    { type: "local", dst: "fd00:15::5", dev: "v-net-0", table: "local", protocol: "kernel", metric: 0 },
  ]);
  it("an address another interface has is refused naming both", () => {
    const [p] = addressCollisions("v-net-1", ["fd00:15::5/64"], ADDR6, "[]", ROUTE6);
    assert.match(p, /address fd00:15::5\/64 for v-net-1 is already on interface v-net-0 \(fd00:15::5\/64\)/);
  });
  it("a prefix overlapping another interface's is refused", () => {
    const [p] = addressCollisions("v-net-1", ["fd00:15::7/56"], ADDR6, "[]", ROUTE6);
    assert.match(p, /v-net-1's fd00:15::7\/56 \(network fd00:15::\/56\) overlaps interface v-net-0's fd00:15::\/64/);
  });
  it("a prefix overlapping a route (read with -6) is refused naming it", () => {
    const [p] = addressCollisions("v-net-1", ["fd00:40:0:1::1/64"], ADDR6, "[]", ROUTE6);
    assert.match(p, /overlaps the route to fd00:40::\/48 via fd00:15::9 on interface v-net-0/);
  });
  it("no collision: another prefix, the default route, multicast and local entries, the other family", () => {
    assert.deepEqual(addressCollisions("v-net-1", ["fd00:16::1/64", "192.168.16.1/24"], ADDR6, "[]", ROUTE6), []);
    // The device's own addresses and routes are not another's.
    assert.deepEqual(addressCollisions("v-net-0", ["fd00:15::5/64"], ADDR6, "[]", ROUTE6), []);
  });
});
