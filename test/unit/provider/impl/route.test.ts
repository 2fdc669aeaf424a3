import { strict as assert } from "node:assert";
import type { Connection } from "../../../../provider/connection";
import { identityOf } from "../../../../provider/impl/route";
import { UNKNOWN } from "../../../../provider/validate";
import { defaultsTable, diffTable } from "./support";

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
