import { strict as assert } from "node:assert";
import type { Connection } from "../../../../provider/connection";
import { identityOf } from "../../../../provider/impl/route";
import { UNKNOWN } from "../../../../provider/validate";
import { VALID_CONNECTION } from "../../../security/cases";
import { defaultsTable, diffTable, implOf } from "./support";

describe("impl/route", () => {
  defaultsTable("route", [
    {
      what: "0.0.0.0/0 is stored as default",
      args: { destination: "0.0.0.0/0", device: "eth0" },
      expect: { destination: "default" },
      absent: ["metric", "via", "namespace"],
    },
    {
      what: "default stays default",
      args: { destination: "default", via: "10.0.0.1" },
      expect: { destination: "default", via: "10.0.0.1" },
    },
    {
      what: "a network is kept as given",
      args: { destination: "10.1.0.0/16", device: "eth0", metric: 0 },
      expect: { destination: "10.1.0.0/16", metric: 0 },
    },
  ]);

  diffTable("route", [
    { what: "another destination", news: { destination: "10.1.0.0/16" }, expect: ["destination"] },
    { what: "the destination unknown", news: { destination: UNKNOWN }, expect: ["destination"] },
    { what: "another namespace", news: { namespace: "red" }, expect: ["namespace"] },
    { what: "the host's namespace", news: { namespace: undefined }, expect: ["namespace"] },
    { what: "another gateway", news: { via: "192.168.15.6" }, expect: "update" },
    { what: "the gateway unknown", news: { via: UNKNOWN }, expect: "update" },
    { what: "another device", news: { device: "veth-red" }, expect: "update" },
    { what: "another metric", news: { metric: 20 }, expect: "update" },
    { what: "metric 0 in state, none given", olds: { metric: 0 }, news: { metric: undefined }, expect: "none" },
    { what: "the device the kernel chose (an output only)", olds: { observedDevice: "eth9" }, expect: "none" },
  ]);
});

describe("impl/route: the identity a create-first replacement leaves its route under (madeThisOperation)", () => {
  const route = { namespace: "red", destination: "198.51.100.0/24", metric: 7 };
  const at = (connection: Partial<Connection>) => identityOf({ ...route, connection: connection as Connection });
  const target = { host: "10.0.0.5", port: 22, user: "root" };

  it("the same address behind two jump hosts is two hosts", () => {
    assert.notEqual(
      at({ ...target, proxy: { host: "jump-a", port: 22 } as Connection }),
      at({ ...target, proxy: { host: "jump-b", port: 22 } as Connection }),
    );
    assert.notEqual(at(target), at({ ...target, proxy: { host: "jump-a", port: 22 } as Connection }));
  });

  it("the same hop path is the same host, whoever logs in (one machine, one route table)", () => {
    const proxy = { host: "jump-a", port: 22, user: "alice" } as Connection;
    assert.equal(at({ ...target, proxy }), at({ ...target, user: "ops", proxy: { ...proxy, user: "bob" } }));
    assert.equal(at(target), at({ ...target, port: undefined }));
  });
});

describe("impl/route: IPv6 destinations and gateways", () => {
  defaultsTable("route", [
    {
      what: "::/0 is stored as default6",
      args: { destination: "::/0", via: "fd00:15::1" },
      expect: { destination: "default6", via: "fd00:15::1" },
    },
    {
      what: "default6 stays default6",
      args: { destination: "default6", device: "eth0" },
      expect: { destination: "default6" },
    },
    {
      what: "an IPv6 network is kept as given",
      args: { destination: "fd00:16::/64", via: "fd00:15::1" },
      expect: { destination: "fd00:16::/64" },
    },
  ]);

  const failures = async (args: Record<string, unknown>) =>
    ((await implOf("route").check({}, { connection: VALID_CONNECTION, ...args })).failures ?? []).map(
      (f) => `${f.property}: ${f.reason}`,
    );

  for (const [destination, via] of [
    ["default", "fd00:15::1"],
    ["default6", "192.168.15.5"],
    ["fd00:16::/64", "192.168.15.5"],
    ["10.1.0.0/16", "fd00:15::1"],
  ])
    it(`destination ${destination} via ${via}: a family mismatch is refused naming both fields`, async () => {
      const got = await failures({ destination, via });
      assert.ok(
        got.some(
          (f) =>
            f.startsWith("via:") &&
            f.includes(JSON.stringify(via)) &&
            f.includes(`destination ${JSON.stringify(destination)}`),
        ),
        JSON.stringify(got),
      );
    });
  it('an invalid destination ("DEFAULT6") is refused alone: no family-mismatch error beside it (new user: "is IPv4")', async () => {
    const got = await failures({ destination: "DEFAULT6", via: "fd00:66::1" });
    assert.ok(
      got.some((f) => f.startsWith("destination:")),
      JSON.stringify(got),
    );
    assert.deepEqual(
      got.filter((f) => f.startsWith("via:")),
      [],
    );
  });
  it("a link-local gateway needs its device", async () => {
    assert.ok((await failures({ destination: "default6", via: "fe80::1" })).some((f) => f.startsWith("device:")));
    assert.deepEqual(await failures({ destination: "default6", via: "fe80::1", device: "eth0" }), []);
  });
  for (const destination of ["fd00:16::1/64", "FD00:16::/64", "fd00:16::/129", "ff00::/8x"])
    it(`destination ${destination} is refused`, async () => {
      assert.ok((await failures({ destination, device: "eth0" })).some((f) => f.startsWith("destination:")));
    });
});
