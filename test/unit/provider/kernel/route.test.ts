import { strict as assert } from "node:assert";
import { ROUTE_PROTOCOL } from "../../../../provider/kernel/mark";
import {
  addAndPrintRoute,
  addRoute,
  deleteRoute,
  describeRoute,
  missingRoutes,
  parseNotOurs,
  parseRoute,
  parseRoutesOver,
  printRoute,
  type RouteSpec,
  type RouteState,
  readdRoute,
  repointRoute,
} from "../../../../provider/kernel/route";
import { fixture } from "../../support";

const VIA = { via: "10.99.0.1", device: "ut-vb0" };

/** (fixture of `ip -j route show ...` in ut-b, the route looked for, what parseRoute finds). */
const ROWS: Array<[string, RouteSpec, RouteState | undefined]> = [
  ["default", { destination: "default" }, { ...VIA, metric: 0 }],
  ["default", { destination: "0.0.0.0/0" }, { ...VIA, metric: 0 }],
  ["default", { destination: "default", metric: 1 }, undefined],
  ["two-metrics", { destination: "10.98.0.0/24", metric: 10 }, { ...VIA, metric: 10 }],
  ["two-metrics", { destination: "10.98.0.0/24", metric: 20 }, { via: undefined, device: "ut-vb0", metric: 20 }],
  ["two-metrics", { destination: "10.98.0.0/24" }, undefined],
  ["two-metrics", { destination: "10.98.0.0/25", metric: 10 }, undefined],
  // The kernel prints a /32 without its prefix.
  ["host", { destination: "10.97.0.5/32" }, { via: undefined, device: "ut-vb0", metric: 0 }],
  ["add-and-show", { destination: "10.96.0.0/16", metric: 5 }, { ...VIA, metric: 5 }],
  ["absent-route", { destination: "10.95.0.0/24" }, undefined],
];

/** Every route of ut-b, looked for in the whole table (with and without -d, which adds fields). */
const WHOLE_TABLE: Array<[RouteSpec, RouteState]> = [
  [{ destination: "default" }, { ...VIA, metric: 0 }],
  [
    { destination: "10.96.0.0/16", metric: 5 },
    { ...VIA, metric: 5 },
  ],
  [{ destination: "10.97.0.5/32" }, { via: undefined, device: "ut-vb0", metric: 0 }],
  [
    { destination: "10.98.0.0/24", metric: 10 },
    { ...VIA, metric: 10 },
  ],
  [
    { destination: "10.98.0.0/24", metric: 20 },
    { via: undefined, device: "ut-vb0", metric: 20 },
  ],
  [{ destination: "10.99.0.0/24" }, { via: undefined, device: "ut-vb0", metric: 0 }],
];

describe("kernel/route: parseRoute", () => {
  for (const [file, spec, expected] of ROWS)
    it(`finds ${expected ? "" : "no "}route to ${spec.destination} metric ${spec.metric ?? "(none)"} in ${file}.json`, () => {
      assert.deepEqual(parseRoute(fixture(`ip-route/${file}.json`), spec), expected);
    });

  for (const file of ["all", "all-detailed"])
    it(`finds each of the ${WHOLE_TABLE.length} routes in ${file}.json by destination and metric`, () => {
      const text = fixture(`ip-route/${file}.json`);
      for (const [spec, expected] of WHOLE_TABLE)
        assert.deepEqual(parseRoute(text, spec), expected, JSON.stringify(spec));
    });

  it("finds nothing in empty output (the namespace is gone)", () => {
    assert.equal(parseRoute("", { destination: "default", namespace: "gone" }), undefined);
  });
});

describe("kernel/route: the routes over a device", () => {
  const text = JSON.stringify([
    { dst: "default", gateway: "192.168.15.5", dev: "veth-red", flags: [] },
    { dst: "192.168.15.0/24", dev: "veth-red", protocol: "kernel", scope: "link", prefsrc: "192.168.15.1", flags: [] },
    {
      dst: "203.0.113.0/24",
      gateway: "192.168.15.5",
      dev: "veth-red",
      metric: 5,
      protocol: "static",
      flags: ["onlink"],
    },
    { dst: "198.51.100.0/24", dev: "veth-red", scope: "link", prefsrc: "192.168.15.1", flags: [] },
  ]);

  it("lists the added routes, not the connected route an address brings", () => {
    assert.deepEqual(parseRoutesOver(text).map(describeRoute), [
      "default via 192.168.15.5",
      "203.0.113.0/24 via 192.168.15.5 metric 5",
      "198.51.100.0/24",
    ]);
    assert.deepEqual(parseRoutesOver(""), []);
  });

  it("puts a route back as it was; its source only if the device still has that address", () => {
    const [dflt, lan, link] = parseRoutesOver(text);
    assert.deepEqual(readdRoute(dflt, "veth-red", ["192.168.15.9/24"]), [
      "route",
      "add",
      "default",
      "via",
      "192.168.15.5",
      "dev",
      "veth-red",
    ]);
    assert.deepEqual(readdRoute(lan, "veth-red", []), [
      "route",
      "add",
      "203.0.113.0/24",
      "via",
      "192.168.15.5",
      "dev",
      "veth-red",
      "onlink",
      "metric",
      5,
      "proto",
      "static",
    ]);
    assert.deepEqual(readdRoute(link, "veth-red", ["192.168.15.1/24"]), [
      "route",
      "add",
      "198.51.100.0/24",
      "dev",
      "veth-red",
      "src",
      "192.168.15.1",
    ]);
    assert.deepEqual(readdRoute(link, "veth-red", ["192.168.15.9/24"]), [
      "route",
      "add",
      "198.51.100.0/24",
      "dev",
      "veth-red",
    ]);
  });

  it("finds the routes that went (by destination and metric)", () => {
    const before = parseRoutesOver(text);
    assert.deepEqual(missingRoutes(before, before.slice(1)).map(describeRoute), ["default via 192.168.15.5"]);
    assert.deepEqual(missingRoutes(before, before), []);
  });
});

describe("kernel/route: the owner mark (issue #10 item 6)", () => {
  const ours: RouteSpec = {
    namespace: "red",
    destination: "198.51.100.0/24",
    ...VIA,
    metric: 7,
    protocol: ROUTE_PROTOCOL,
  };
  const legacy: RouteSpec = { ...ours, protocol: undefined };

  it("adds our route with its protocol number", () => {
    assert.deepEqual(addRoute(ours).slice(-2), ["proto", ROUTE_PROTOCOL]);
    assert.ok(!addRoute(legacy).includes("proto"));
  });

  it("shows only routes with the mark", () => {
    assert.match(printRoute(ours), / route show table main exact 198\.51\.100\.0\/24 proto 113\b/);
    assert.doesNotMatch(printRoute(legacy), /proto/);
  });

  it("deletes by destination, gateway, device, metric, mark and table; a route from before marks by destination and metric", () => {
    assert.match(
      deleteRoute(ours),
      / route del 198\.51\.100\.0\/24 via 10\.99\.0\.1 dev ut-vb0 metric 7 proto 113 table main 2>/,
    );
    assert.match(deleteRoute(legacy), / route del 198\.51\.100\.0\/24 metric 7 2>/);
  });
});

describe("kernel/route: a via or device change re-points our route only (issue #10 leftovers)", () => {
  const ours = {
    namespace: "red",
    destination: "198.51.100.0/24",
    via: "192.0.2.132",
    metric: 7,
    protocol: ROUTE_PROTOCOL,
  };
  const text = repointRoute(ours);
  const sameMetric = "route show table main exact 198.51.100.0/24 metric 7";

  it("counts every route with our destination and metric, and ours among them, before it changes anything", () => {
    const all = text.indexOf(`'-o' ${sameMetric})`);
    const mine = text.indexOf(`'-o' ${sameMetric} proto 113)`);
    assert.ok(all >= 0 && mine > all, text);
    assert.ok(text.indexOf("route replace") > mine && text.indexOf("route add") > mine, text);
  });

  it("one not ours among them: prints them with protocol numbers and changes nothing; ours: replaced; none: added", () => {
    assert.match(text, /then ip '-n' red '-N' '-j' route show table main exact 198\.51\.100\.0\/24 metric 7; elif/);
    assert.match(
      text,
      /elif \[ -n "\$pnetns_ours" \]; then ip '-n' red route replace 198\.51\.100\.0\/24 via 192\.0\.2\.132 metric 7 proto 113; else/,
    );
    assert.match(text, /else ip '-n' red route add 198\.51\.100\.0\/24 via 192\.0\.2\.132 metric 7 proto 113; fi$/);
  });

  it("tells the routes that are not ours in what it printed (fixtures: a user's route alone; appended to ours)", () => {
    for (const file of ["same-metric-user", "same-metric-ours-and-user"])
      assert.deepEqual(
        parseNotOurs(fixture(`ip-route/${file}.json`), ROUTE_PROTOCOL).map((r) => [r.gateway, r.protocol]),
        [["192.0.2.5", undefined]],
        file,
      );
    assert.deepEqual(parseNotOurs("", ROUTE_PROTOCOL), []);
  });
});

describe("kernel/route: IPv6 routes (ip -6; metric 0 is the kernel's 1024)", () => {
  const GW6 = { via: "fd00:99:6::9", device: "ut-v6a" };
  const ROWS6: Array<[string, RouteSpec, RouteState | undefined]> = [
    // Added with metric 0 (ours, proto 113): the kernel made it 1024.
    ["v6-default", { destination: "default6" }, { ...GW6, metric: 1024 }],
    ["v6-default", { destination: "default6", protocol: ROUTE_PROTOCOL }, { ...GW6, metric: 1024 }],
    ["v6-default", { destination: "default6", metric: 1024 }, { ...GW6, metric: 1024 }],
    ["v6-default", { destination: "default6", metric: 5 }, undefined],
    ["v6-two-metrics", { destination: "fd00:98::/64", metric: 10 }, { ...GW6, metric: 10 }],
    [
      "v6-two-metrics",
      { destination: "fd00:98::/64", metric: 20 },
      { via: "fd00:99:6::8", device: "ut-v6a", metric: 20 },
    ],
    ["v6-two-metrics", { destination: "fd00:98::/64" }, undefined],
    // The kernel prints a /128 without its prefix.
    ["v6-host", { destination: "fd00:97::5/128" }, { via: undefined, device: "ut-v6a", metric: 1024 }],
  ];
  for (const [file, spec, expected] of ROWS6)
    it(`finds ${expected ? "" : "no "}route to ${spec.destination} metric ${spec.metric ?? "(none)"} in ${file}.json`, () => {
      assert.deepEqual(parseRoute(fixture(`ip-route/${file}.json`), spec), expected);
    });

  const ours: RouteSpec = { namespace: "red", destination: "default6", via: "fd00:15::5", protocol: ROUTE_PROTOCOL };
  it("adds, shows and deletes with -6; default6 is `default` with -6, `::/0` with exact; metric 0 as 1024", () => {
    assert.deepEqual(addRoute(ours), [
      "-6",
      "route",
      "add",
      "default",
      "via",
      "fd00:15::5",
      "metric",
      1024,
      "proto",
      113,
    ]);
    assert.match(
      printRoute(ours),
      /^if .*; then ip '-n' red '-6' '-j' route show table main exact ::\/0 proto 113; fi$/,
    );
    assert.match(deleteRoute(ours), / '-6' route del default via fd00:15::5 metric 1024 proto 113 table main 2>/);
    assert.match(
      addAndPrintRoute(ours),
      /^printf .*'route add default via fd00:15::5 metric 1024 proto 113' 'route show table main exact ::\/0 proto 113' \| ip '-n' red '-6' '-j' '-batch' '-'$/,
    );
  });
  it("an IPv4 route is as before: no family option", () => {
    assert.deepEqual(addRoute({ destination: "default", via: "10.0.0.1" }), [
      "route",
      "add",
      "default",
      "via",
      "10.0.0.1",
      "metric",
      0,
    ]);
  });
  it("re-points with -6, counting routes at the kernel's metric", () => {
    const text = repointRoute({ ...ours, protocol: ROUTE_PROTOCOL });
    assert.match(text, /'-6' route show table main exact ::\/0 metric 1024\)/);
    assert.match(text, /then ip '-n' red '-6' route replace default via fd00:15::5 metric 1024 proto 113; else/);
  });
});
