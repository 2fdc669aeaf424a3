import { strict as assert } from "node:assert";
import * as pulumi from "@pulumi/pulumi";
import { IsolatedNetwork } from "../../../components/isolatedNetwork";
import { planNetwork } from "../../../components/plan";
import { probeMatrix } from "../../../components/verify";
import { Bridge } from "../../../provider/resources/bridge";
import { Namespace } from "../../../provider/resources/namespace";
import { VethPair } from "../../../provider/resources/vethPair";
import { lessonSpec } from "../../support/lessonSpec";

const connection = { host: "198.18.0.1", privateKey: "k" };
const three = () => ({ ...lessonSpec(["green"]), portForwards: [{ namespace: "blue", hostPort: 8080, port: 80 }] });

describe("components/verify: the probe matrix as plain data", () => {
  it("every namespace to the gateway and to each other, and each port forward's destination from the host", () => {
    const plan = planNetwork(three());
    const matrix = probeMatrix(plan);
    const green = plan.namespaces.find((n) => n.name === "green")!.address;
    const rows = matrix.map((p) => `${p.key}: ${p.namespace ?? "host"} -> ${p.target}`);
    assert.deepEqual(rows.sort(), [
      `blue-to-gateway: blue -> 192.168.15.5`,
      `blue-to-green: blue -> ${green}`,
      `blue-to-red: blue -> 192.168.15.1`,
      `green-to-blue: green -> 192.168.15.2`,
      `green-to-gateway: green -> 192.168.15.5`,
      `green-to-red: green -> 192.168.15.1`,
      `host-to-tcp-8080: host -> 192.168.15.2`,
      `red-to-blue: red -> 192.168.15.2`,
      `red-to-gateway: red -> 192.168.15.5`,
      `red-to-green: red -> ${green}`,
    ]);
    assert.ok(
      matrix.every((p) => p.port === undefined),
      "ICMP only: a forwarded port needs a service listening",
    );
    assert.deepEqual(matrix.find((p) => p.key === "red-to-blue")!.needs, ["red", "blue"]);
  });
});

describe("components/IsolatedNetwork: exposed objects and verify (under the SDK's mocks)", () => {
  const made: Array<{ type: string; name: string; inputs: Record<string, unknown> }> = [];
  before(() =>
    pulumi.runtime.setMocks({
      newResource: (args) => {
        made.push({ type: args.type, name: args.name, inputs: args.inputs });
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call: () => ({}),
    }),
  );
  beforeEach(() => {
    made.length = 0;
  });
  const probes = () => made.filter((r) => r.type.endsWith(":Probe"));
  const settle = () => new Promise((r) => setTimeout(r, 50));

  it("exposes its Namespace, Bridge and VethPair objects by namespace name", async () => {
    const net = new IsolatedNetwork("lab", { connection, ...lessonSpec() });
    assert.ok(net.bridge instanceof Bridge);
    assert.deepEqual(Object.keys(net.namespaces), ["red", "blue"]);
    assert.ok(net.namespaces.red instanceof Namespace);
    assert.ok(net.vethPairs.blue instanceof VethPair);
    const name = await new Promise((r) => net.namespaces.red.name.apply(r));
    assert.equal(name, "red");
  });

  it("verify absent: no Probe", async () => {
    const net = new IsolatedNetwork("lab", { connection, ...three() });
    await settle();
    assert.equal(probes().length, 0);
    assert.deepEqual(net.probes, {});
  });

  it("verify: true adds one Probe per row of the matrix, with the network's connection", async () => {
    const net = new IsolatedNetwork("lab", { connection, ...three(), verify: true });
    await settle();
    assert.equal(
      probes().length,
      10,
      probes()
        .map((p) => p.name)
        .join(),
    );
    assert.equal(Object.keys(net.probes).length, 10);
    const redBlue = probes().find((p) => p.name === "lab-probe-red-to-blue")!;
    assert.equal(redBlue.inputs.namespace, "red");
    assert.equal(redBlue.inputs.target, "192.168.15.2");
  });

  it("refuses a verify that is not a boolean, naming the field and the value", () => {
    assert.throws(
      () => new IsolatedNetwork("lab", { connection, ...three(), verify: "yes" as never }),
      /verify: "yes" is not a boolean/,
    );
  });
});
