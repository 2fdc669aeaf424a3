import { strict as assert } from "node:assert";
import type { Connection } from "../../../../provider/connection";
import { declareVeths, tookAlong } from "../../../../provider/impl/declaredVeths";
import { setProgressSink } from "../../../../provider/transport/progress";

/**
 * A Namespace delete tells which veths it took along that a VethPair of the
 * program still declares, whichever the engine runs first: the VethPair's
 * check (the namespace removed from the program) or the delete (a Namespace
 * replaced delete-first: the engine deletes it before it checks the resources
 * registered after it).
 */
describe("impl/declaredVeths: the veths a Namespace delete took along, told once, in either order", () => {
  let lines: string[];
  let previous: (line: string) => void;
  // Each test on its own host: the module's records live for the process (one engine operation).
  let host = 0;
  let connection: Connection;
  const tell = (wanted: (veth: string) => boolean) =>
    ["veth-a", "veth-b"].filter(wanted).length ? `took ${["veth-a", "veth-b"].filter(wanted).join(" ")}` : undefined;

  beforeEach(() => {
    lines = [];
    previous = setProgressSink((l) => lines.push(l));
    connection = { host: `10.0.0.${++host}`, port: 22 } as Connection;
  });
  afterEach(() => setProgressSink(previous));

  it("the VethPair checked before the delete: the delete tells", () => {
    declareVeths(connection, [{ name: "veth-a", namespace: "red" }, { name: "veth-host" }]);
    tookAlong(connection, "red", ["veth-a", "veth-b"], tell);
    assert.deepEqual(lines, ["took veth-a"]);
  });

  it("the delete before the VethPair's check (a replace, delete-first): the check tells, once", () => {
    tookAlong(connection, "red", ["veth-a", "veth-b"], tell);
    assert.deepEqual(lines, []);
    declareVeths(connection, [{ name: "veth-a", namespace: "red" }, { name: "veth-host" }]);
    declareVeths(connection, [{ name: "veth-a", namespace: "red" }, { name: "veth-host" }]);
    assert.deepEqual(lines, ["took veth-a"]);
  });

  it("a veth of the same name in another namespace or on another host is another veth", () => {
    tookAlong(connection, "red", ["veth-a"], tell);
    declareVeths(connection, [{ name: "veth-a", namespace: "blue" }]);
    declareVeths({ ...connection, host: "10.9.9.9" }, [{ name: "veth-a", namespace: "red" }]);
    assert.deepEqual(lines, []);
  });

  it("the same address behind two different jump hosts is two hosts (private labs reached through each their own gateway)", () => {
    const behind = (jump: string) =>
      ({ ...connection, host: "10.0.0.2", proxy: { host: jump, port: 22 } }) as Connection;
    tookAlong(behind("198.51.100.7"), "red", ["veth-a"], tell);
    declareVeths(behind("198.51.100.8"), [{ name: "veth-a", namespace: "red" }]);
    assert.deepEqual(lines, []);
    declareVeths(behind("198.51.100.7"), [{ name: "veth-a", namespace: "red" }]);
    assert.deepEqual(lines, ["took veth-a"]);
  });
});
