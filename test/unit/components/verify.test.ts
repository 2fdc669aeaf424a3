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
  // Networks of one program on one host probe each other: each test's networks get a host of their own.
  let hosts = 0;
  const fresh = () => ({ ...connection, host: `198.18.1.${++hosts}` });
  const settle = () => new Promise((r) => setTimeout(r, 50));

  it("exposes its Namespace, Bridge and VethPair objects by namespace name", async () => {
    const net = new IsolatedNetwork("lab", { connection: fresh(), ...lessonSpec() });
    assert.ok(net.bridge instanceof Bridge);
    assert.deepEqual(Object.keys(net.namespaces), ["red", "blue"]);
    assert.ok(net.namespaces.red instanceof Namespace);
    assert.ok(net.vethPairs.blue instanceof VethPair);
    const name = await new Promise((r) => net.namespaces.red.name.apply(r));
    assert.equal(name, "red");
  });

  it("verify absent: no Probe", async () => {
    const net = new IsolatedNetwork("lab", { connection: fresh(), ...three() });
    await settle();
    assert.equal(probes().length, 0);
    assert.deepEqual(net.probes, {});
  });

  it("verify: true adds one Probe per row of the matrix, with the network's connection", async () => {
    const net = new IsolatedNetwork("lab", { connection: fresh(), ...three(), verify: true });
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
      () => new IsolatedNetwork("lab", { connection: fresh(), ...three(), verify: "yes" as never }),
      /verify: "yes" is not a boolean/,
    );
  });

  it("two networks on one host: each namespace of each probes the other's first namespace, expect-unreachable unless its allowFrom lets it in", async () => {
    const host = fresh();
    const first = new IsolatedNetwork("one", { connection: host, ...lessonSpec(), verify: true });
    const second = new IsolatedNetwork("two", {
      connection: { ...host },
      bridge: "v-net-1",
      subnet: "10.31.0.0/24",
      namespaces: [{ name: "alpha" }, { name: "beta" }],
      allowFrom: ["192.168.15.1/32"],
      verify: true,
    });
    await settle();
    const isolation = probes()
      .filter((p) => /-to-(one|two)\//.test(p.name))
      .map((p) => `${p.name}: ${p.inputs.namespace} -> ${p.inputs.target} ${p.inputs.expect}`);
    const alpha = second.plan.namespaces[0].address;
    assert.deepEqual(isolation.sort(), [
      `two-probe-alpha-to-one/red: alpha -> 192.168.15.1 unreachable`,
      `two-probe-beta-to-one/red: beta -> 192.168.15.1 unreachable`,
      `two-probe-blue-to-two/alpha: blue -> ${alpha} unreachable`,
      `two-probe-red-to-two/alpha: red -> ${alpha} reachable`,
    ]);
    assert.ok(first.probes["red-to-two/alpha"], "the first network's direction is in its own probes");
    assert.ok(second.probes["alpha-to-one/red"], "and the second's in its");
  });

  it("only the verifying network's direction; another host, or a host given as an Output, is no neighbour", async () => {
    const host = fresh();
    new IsolatedNetwork("one", { connection: host, ...lessonSpec() });
    new IsolatedNetwork("two", {
      connection: host,
      bridge: "v-net-1",
      subnet: "10.31.0.0/24",
      namespaces: [{ name: "alpha" }],
      verify: true,
    });
    new IsolatedNetwork("three", {
      connection: fresh(),
      bridge: "v-net-2",
      subnet: "10.32.0.0/24",
      namespaces: [{ name: "gamma" }],
      verify: true,
    });
    new IsolatedNetwork("four", {
      connection: pulumi.output(host),
      bridge: "v-net-3",
      subnet: "10.33.0.0/24",
      namespaces: [{ name: "delta" }],
      verify: true,
    });
    await settle();
    const isolation = probes()
      .filter((p) => /-to-(one|two|three|four)\//.test(p.name))
      .map((p) => p.name);
    assert.deepEqual(isolation, ["two-probe-alpha-to-one/red"]);
  });

  it("no isolation probes where either network has no outbound NAT (no default route: nothing to prove)", async () => {
    const host = fresh();
    new IsolatedNetwork("one", { connection: host, ...lessonSpec(), verify: true });
    new IsolatedNetwork("two", {
      connection: host,
      bridge: "v-net-1",
      subnet: "10.31.0.0/24",
      namespaces: [{ name: "alpha" }],
      outboundNat: false,
      verify: true,
    });
    await settle();
    assert.deepEqual(
      probes().filter((p) => /-to-(one|two)\//.test(p.name)),
      [],
    );
  });

  it("a bridge or namespace name another network of the program has on the same host is refused at plan time, naming both", () => {
    const host = fresh();
    new IsolatedNetwork("x1", {
      connection: host,
      bridge: "br-x",
      subnet: "10.33.0.0/24",
      namespaces: [{ name: "api" }],
    });
    assert.throws(
      () =>
        new IsolatedNetwork("x2", {
          connection: { ...host },
          bridge: "br-x",
          subnet: "10.34.0.0/24",
          namespaces: [{ name: "api" }],
        }),
      /bridge: "br-x" is also IsolatedNetwork "x1"'s bridge on this host; .*namespaces\[0\]\.name: "api" is also a namespace of IsolatedNetwork "x1"/,
    );
    // Another host: no clash.
    new IsolatedNetwork("x3", {
      connection: fresh(),
      bridge: "br-x",
      subnet: "10.35.0.0/24",
      namespaces: [{ name: "api" }],
    });
  });

  it("an isolation probe's key never equals a matrix key, though namespace names may hold dots (network n1 with namespace a, namespace n1.a)", async () => {
    const host = fresh();
    new IsolatedNetwork("n1", {
      connection: host,
      bridge: "br-n1",
      subnet: "10.36.0.0/24",
      namespaces: [{ name: "a" }],
    });
    const second = new IsolatedNetwork("n2", {
      connection: { ...host },
      bridge: "br-n2",
      subnet: "10.37.0.0/24",
      namespaces: [{ name: "b" }, { name: "n1.a" }],
      verify: true,
    });
    await settle();
    const names = probes().map((p) => p.name);
    assert.equal(new Set(names).size, names.length, `two Probes share a name: ${names.sort().join(", ")}`);
    assert.equal(Object.keys(second.probes).length, names.length);
  });

  it("dual stack: the bridge, the cables, NAT, default routes and port forwards get their IPv6 side; outputs addresses6", async () => {
    const net = new IsolatedNetwork("ds", { connection: fresh(), ...three(), subnet6: "fd00:15::/64" });
    await settle();
    const byName = (name: string) => made.find((r) => r.name === name)!;
    const six = net.plan.namespaces.find((n) => n.name === "blue")!.address6!;
    assert.deepEqual(byName("ds-v-net-0").inputs.addresses, ["192.168.15.5/24", "fd00:15::1/64"]);
    assert.deepEqual(byName("ds-isolation").inputs.bridgeAddresses, ["192.168.15.5/24", "fd00:15::1/64"]);
    assert.deepEqual((byName("ds-blue-veth").inputs.a as { addresses: string[] }).addresses, [
      "192.168.15.2/24",
      `${six}/64`,
    ]);
    assert.equal(byName("ds-nat6").inputs.source, "fd00:15::/64");
    assert.equal(byName("ds-nat6").inputs.inInterface, "v-net-0");
    assert.deepEqual(
      [byName("ds-red-default6").inputs.destination, byName("ds-red-default6").inputs.via],
      ["default6", "fd00:15::1"],
    );
    assert.equal(byName("ds-tcp-8080-ipv6").inputs.toAddress, six);
    assert.equal(byName("ds-tcp-8080").inputs.toAddress, "192.168.15.2");
    const addresses6 = await new Promise((r) => net.addresses6.apply(r));
    assert.deepEqual(Object.keys(addresses6 as object).sort(), ["blue", "green", "red"]);
    assert.equal(await new Promise((r) => net.gateway6.apply(r)), "fd00:15::1");
  });

  it("IPv4 only: nothing IPv6 is made (no nat6, no default6, no -ipv6 forward) and addresses6 is empty", async () => {
    const net = new IsolatedNetwork("v4", { connection: fresh(), ...three() });
    await settle();
    assert.deepEqual(
      made.filter((r) => /nat6|default6|-ipv6/.test(r.name)).map((r) => r.name),
      [],
    );
    assert.deepEqual(await new Promise((r) => net.addresses6.apply(r)), {});
  });

  it('dual stack with verify: the matrix twice, the IPv6 rows keyed "@ipv6"; isolation over IPv6 where both networks have it', async () => {
    const host = fresh();
    const one = new IsolatedNetwork("one", {
      connection: host,
      ...lessonSpec(),
      subnet6: "fd00:15::/64",
      verify: true,
    });
    const two = new IsolatedNetwork("two", {
      connection: { ...host },
      bridge: "v-net-1",
      subnet: "10.31.0.0/24",
      subnet6: "fd00:31::/64",
      namespaces: [{ name: "alpha" }],
      allowFrom: ["fd00:15::/64"],
      verify: true,
    });
    await settle();
    const red6 = one.plan.namespaces.find((n) => n.name === "red")!.address6;
    assert.equal(one.probes["red-to-blue@ipv6"] !== undefined, true, Object.keys(one.probes).join());
    const row = (name: string) => {
      const p = made.find((r) => r.name === name)!;
      return `${p.inputs.namespace} -> ${p.inputs.target} ${p.inputs.expect}`;
    };
    assert.equal(row("one-probe-red-to-gateway@ipv6"), "red -> fd00:15::1 reachable");
    assert.equal(row("one-probe-blue-to-red@ipv6"), `blue -> ${red6} reachable`);
    // IPv4 kept out; IPv6 let in by two's allowFrom; two's own direction both ways out.
    const alpha = two.plan.namespaces[0];
    assert.equal(row("two-probe-red-to-two/alpha"), `red -> ${alpha.address} unreachable`);
    assert.equal(row("two-probe-red-to-two/alpha@ipv6"), `red -> ${alpha.address6} reachable`);
    assert.equal(row("two-probe-alpha-to-one/red@ipv6"), `alpha -> ${red6} unreachable`);
  });

  it("retainOnDelete on the component reaches what it made (the SDK does not pass it from parent to child)", async () => {
    new IsolatedNetwork("kept", { connection: fresh(), ...lessonSpec() }, { retainOnDelete: true });
    new IsolatedNetwork("gone", { connection: fresh(), ...lessonSpec() });
    await settle();
    const retained = (prefix: string) =>
      made
        .filter((r) => r.name.startsWith(prefix) && /:(Bridge|Namespace|VethPair)$/.test(r.type))
        .map((r) => r.inputs.retainOnDelete);
    assert.deepEqual(retained("kept-"), [true, true, true, true, true]);
    assert.ok(retained("gone-").every((v) => v !== true) && retained("gone-").length === 5);
  });
});
