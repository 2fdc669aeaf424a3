import { strict as assert } from "node:assert";
import * as path from "node:path";
import { diagramOf } from "../../components/diagram";
import { type NetworkSpec, planNetwork } from "../../components/plan";
import type { LabHost, PulumiStack } from "../../provider/testing";
import { rewriteProgram, testingKit, writeProgram } from "../support/harness";
import { lessonSpec as lesson } from "../support/lessonSpec";
import { CLIENT, SERVER, waitListening } from "../support/tcp";
import { traceEvents } from "../support/trace";
import { HEADER } from "./programs";
import { changes, labConfig, netnsList, ok, ping, providerCounts } from "./support";

/** A second network for the same host: another bridge, subnet and names. */
const SECOND: NetworkSpec = {
  bridge: "v-net-1",
  subnet: "10.31.0.0/24",
  namespaces: [{ name: "alpha" }, { name: "beta" }],
  outboundNat: true,
  portForwards: [{ namespace: "alpha", hostPort: 8081, port: 80 }],
};

function networkProgram(spec: NetworkSpec, second?: NetworkSpec): string {
  let body = `${HEADER}
const net = new netns.IsolatedNetwork("lesson", { connection, ...${JSON.stringify(spec)} });
export const addresses = net.addresses;
export const gateway = net.gateway;
export const bridgeName = net.bridgeName;
export const diagram = net.diagram;
`;
  if (second)
    body += `
const other = new netns.IsolatedNetwork("other", { connection, ...${JSON.stringify(second)} });
export const otherAddresses = other.addresses;
`;
  return body;
}

describe("IsolatedNetwork on a lab host (through the real Pulumi engine, from the packed tarball)", function () {
  this.timeout(600_000);
  let lab: LabHost;
  let stack: PulumiStack;
  let dir: string;
  let pristine: string;
  let tracePath: string;
  const log: string[] = [];
  /** The remote commands the provider host sent so far (from the PULUMI_NETNS_TRACE file). */
  const commands = () =>
    traceEvents(tracePath)
      .filter((e) => e.event === "command")
      .map((e) => String(e.command));

  before(async () => {
    const kit = testingKit();
    lab = await kit.startLabHost({ name: `it-isonet-${process.pid}` });
    pristine = await kit.fingerprint(lab);
    dir = writeProgram("isolated", networkProgram(lesson()));
    tracePath = path.join(dir, "commands.jsonl");
    stack = new kit.PulumiStack({
      programDir: dir,
      config: labConfig(lab),
      log: (l) => log.push(l),
      env: { PULUMI_NETNS_TRACE: tracePath },
    });
  });

  after(async () => {
    if (stack) await stack.destroy().catch(() => undefined);
    if (lab) await lab.stop();
  });

  it("the lesson network: red<->blue, NAT to a LAN peer with no route back, port 8080 to blue:80 from the LAN; outputs as planned", async () => {
    const up = await stack.up();
    ok(up, log);
    assert.deepEqual(up.outputs.addresses, { red: "192.168.15.1", blue: "192.168.15.2" });
    assert.equal(up.outputs.gateway, "192.168.15.5");
    assert.equal(up.outputs.bridgeName, "v-net-0");
    assert.equal(up.outputs.diagram, diagramOf(planNetwork(lesson()), `host ${lab.connection.host}`));

    assert.equal((await ping(lab, "192.168.15.2", "red")).code, 0, "red -> blue");
    assert.equal((await ping(lab, "192.168.15.1", "blue")).code, 0, "blue -> red");
    const back = await lab.execLan(["ip", "-j", "route", "get", "192.168.15.2"], { allowFailure: true });
    assert.notEqual(back.code, 0, "the LAN peer must have no route to 192.168.15.0/24");
    assert.equal((await ping(lab, lab.lan.peerAddress, "blue")).code, 0, "blue -> LAN peer through NAT");
    assert.equal((await ping(lab, lab.lan.internetAddress, "red")).code, 0, "red -> 'internet' by its default route");

    const server = lab.spawn(SERVER("hello from blue", 80), { namespace: "blue" });
    try {
      await waitListening(server);
      const fromLan = await lab.execLan(CLIENT(lab.lan.hostAddress, 8080), { allowFailure: true });
      assert.equal(fromLan.stdout, "hello from blue\n", fromLan.stderr);
    } finally {
      await server.kill();
    }
    const again = await stack.up();
    ok(again, log);
    assert.equal(changes(again), 0, JSON.stringify(again.steps));
  });

  it("adding a third namespace creates only its Namespace, VethPair and default Route, at the planned address", async () => {
    rewriteProgram(dir, networkProgram(lesson(["green"])));
    const up = await stack.up();
    ok(up, log);
    assert.deepEqual(providerCounts(up), { create: 3, update: 0, replace: 0, delete: 0 }, JSON.stringify(up.steps));
    const created = up.steps.filter((s) => s.op === "create").map((s) => s.type);
    assert.deepEqual(created.map((t) => t.split(":").pop()).sort(), ["Namespace", "Route", "VethPair"].sort());
    const green = planNetwork(lesson(["green"])).namespaces.find((n) => n.name === "green")!;
    assert.deepEqual(up.outputs.addresses, { red: "192.168.15.1", blue: "192.168.15.2", green: green.address });
    assert.equal((await ping(lab, "192.168.15.1", "green")).code, 0, "green -> red");
    assert.equal((await ping(lab, green.address, "blue")).code, 0, "blue -> green");
    assert.equal((await ping(lab, lab.lan.peerAddress, "green")).code, 0, "green -> LAN through NAT");
  });

  it("removing it deletes only those three; red and blue keep working", async () => {
    rewriteProgram(dir, networkProgram(lesson()));
    const before = commands().length;
    const up = await stack.up();
    ok(up, log);
    assert.deepEqual(providerCounts(up), { create: 0, update: 0, replace: 0, delete: 3 }, JSON.stringify(up.steps));
    const deleted = up.steps.filter((s) => s.op === "delete").map((s) => s.urn.split("::").pop());
    assert.deepEqual(
      deleted.sort(),
      ["lesson-green", "lesson-green-default", "lesson-green-veth"],
      JSON.stringify(up.steps),
    );
    // The veth end and the route live in the namespace: they go with it (deletedWith). The engine
    // still shows their delete steps but asks no provider to delete them: the only deleting
    // command sent is the namespace's, no `ip link del` of the veth and no `ip route del`.
    const sent = commands().slice(before);
    assert.ok(
      sent.some((c) => /\bip netns del '?green'?/.test(c)),
      `no namespace delete was sent:\n${sent.join("\n")}`,
    );
    const ownDeletes = sent.filter((c) => /\b(link|route) del\b/.test(c));
    assert.deepEqual(ownDeletes, [], "the VethPair and Route of green were deleted by their own providers");
    assert.deepEqual((await netnsList(lab)).sort(), ["blue", "red"]);
    const links = JSON.parse((await lab.exec(["ip", "-j", "link", "show"])).stdout).map(
      (l: { ifname: string }) => l.ifname,
    );
    assert.ok(!links.some((n: string) => n.includes("green")), links.join());
    assert.equal((await ping(lab, "192.168.15.2", "red")).code, 0);
  });

  it("a second IsolatedNetwork (other bridge, subnet, names, port) coexists on the same host; removing it leaves the first", async () => {
    rewriteProgram(dir, networkProgram(lesson(), SECOND));
    const up = await stack.up();
    ok(up, log);
    // isolation + bridge + (namespace, veth, default route) x 2 + masquerade + port forward
    assert.deepEqual(providerCounts(up), { create: 10, update: 0, replace: 0, delete: 0 }, JSON.stringify(up.steps));
    const plan = planNetwork(SECOND);
    const [alpha, beta] = plan.namespaces;
    assert.deepEqual(up.outputs.otherAddresses, { alpha: alpha.address, beta: beta.address });
    assert.equal((await ping(lab, beta.address, "alpha")).code, 0, "alpha -> beta");
    assert.equal((await ping(lab, lab.lan.peerAddress, "alpha")).code, 0, "alpha -> LAN through its own NAT");
    assert.equal((await ping(lab, "192.168.15.2", "red")).code, 0, "red -> blue still");
    const nat = (await lab.exec(["iptables-save", "-t", "nat"])).stdout;
    assert.match(nat, /^-A POSTROUTING -s 192\.168\.15\.0\/24 ! -o v-net-0 .*-j MASQUERADE$/m);
    assert.match(nat, /^-A POSTROUTING -s 10\.31\.0\.0\/24 ! -o v-net-1 .*-j MASQUERADE$/m);

    const servers = [
      lab.spawn(SERVER("hello from blue", 80), { namespace: "blue" }),
      lab.spawn(SERVER("hello from alpha", 80), { namespace: "alpha" }),
    ];
    try {
      for (const s of servers) await waitListening(s);
      const blue = await lab.execLan(CLIENT(lab.lan.hostAddress, 8080), { allowFailure: true });
      assert.equal(blue.stdout, "hello from blue\n", blue.stderr);
      const alphaReply = await lab.execLan(CLIENT(lab.lan.hostAddress, 8081), { allowFailure: true });
      assert.equal(alphaReply.stdout, "hello from alpha\n", alphaReply.stderr);
    } finally {
      for (const s of servers) await s.kill();
    }

    rewriteProgram(dir, networkProgram(lesson()));
    const down = await stack.up();
    ok(down, log);
    assert.deepEqual(
      providerCounts(down),
      { create: 0, update: 0, replace: 0, delete: 10 },
      JSON.stringify(down.steps),
    );
    assert.deepEqual((await netnsList(lab)).sort(), ["blue", "red"]);
    assert.equal((await ping(lab, lab.lan.peerAddress, "blue")).code, 0, "the first network's NAT survived");
  });

  it("destroy puts the lab host back exactly as it was", async () => {
    const down = await stack.destroy();
    ok(down, log);
    assert.deepEqual(
      providerCounts(down),
      { create: 0, update: 0, replace: 0, delete: 10 },
      JSON.stringify(down.steps),
    );
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });
});

describe("IsolatedNetwork: two hosts in one program", function () {
  this.timeout(600_000);
  const labs: LabHost[] = [];
  let stack: PulumiStack;
  const pristine: string[] = [];
  const log: string[] = [];

  before(async () => {
    const kit = testingKit();
    labs.push(
      ...(await Promise.all(["a", "b"].map((s) => kit.startLabHost({ name: `it-isonet2${s}-${process.pid}` })))),
    );
    for (const lab of labs) pristine.push(await kit.fingerprint(lab));
    const connection = (s: string) => `{
  host: cfg.require("host${s}"),
  port: cfg.requireNumber("port${s}"),
  user: "root",
  privateKey: cfg.requireSecret("privateKey${s}"),
}`;
    const spec = JSON.stringify(lesson());
    const dir = writeProgram(
      "twohosts",
      `import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";
const cfg = new pulumi.Config();
const a = new netns.IsolatedNetwork("a", { connection: ${connection("A")}, ...${spec} });
const b = new netns.IsolatedNetwork("b", { connection: ${connection("B")}, ...${spec}, namespaces: [...${spec}.namespaces, { name: "only-on-b" }] });
export const addressesA = a.addresses;
export const addressesB = b.addresses;
`,
    );
    const config: Record<string, string> = {};
    for (const [i, s] of ["A", "B"].entries()) {
      config[`host${s}`] = labs[i].connection.host;
      config[`port${s}`] = String(labs[i].connection.port);
      config[`privateKey${s}`] = labs[i].connection.privateKey;
    }
    stack = new kit.PulumiStack({ programDir: dir, config, log: (l) => log.push(l) });
  });

  after(async () => {
    if (stack) await stack.destroy().catch(() => undefined);
    await Promise.all(labs.map((l) => l.stop()));
  });

  it("each host gets its own network (host B one namespace more); destroy restores both", async () => {
    const up = await stack.up();
    ok(up, log);
    assert.deepEqual(
      providerCounts(up),
      { create: 10 + 13, update: 0, replace: 0, delete: 0 },
      JSON.stringify(up.steps),
    );
    const [a, b] = labs;
    assert.deepEqual((await netnsList(a)).sort(), ["blue", "red"]);
    assert.deepEqual((await netnsList(b)).sort(), ["blue", "only-on-b", "red"]);
    for (const lab of labs) {
      assert.equal((await ping(lab, "192.168.15.2", "red")).code, 0, `${lab.name}: red -> blue`);
      assert.equal((await ping(lab, lab.lan.peerAddress, "blue")).code, 0, `${lab.name}: blue -> LAN`);
    }
    const onB = (up.outputs.addressesB as Record<string, string>)["only-on-b"];
    assert.equal((await ping(b, onB, "red")).code, 0, "red -> only-on-b on host B");
    const again = await stack.up();
    ok(again, log);
    assert.equal(changes(again), 0, JSON.stringify(again.steps));
    const down = await stack.destroy();
    ok(down, log);
    for (const [i, lab] of labs.entries()) assert.equal(await testingKit().fingerprint(lab), pristine[i], lab.name);
  });
});

describe("plan errors through the real Pulumi CLI: one clean message naming the field", function () {
  this.timeout(300_000);

  /** `pulumi up` of a program whose component's spec is refused: what the user sees, stdout and stderr. */
  async function upOf(name: string, body: string): Promise<{ code: number; out: string }> {
    const dir = writeProgram(
      name,
      `import * as netns from "pulumi-netns";
// Never dialled: the plan is refused before any resource is made.
const connection = { host: "127.0.0.1", user: "root", privateKey: "unused" };
${body}
`,
    );
    const stack = new (testingKit().PulumiStack)({ programDir: dir });
    const init = await stack.cli(["stack", "select", "--create", "dev", "--non-interactive"]);
    assert.equal(init.code, 0, init.stderr);
    const up = await stack.cli(["up", "--yes", "--non-interactive"]);
    return { code: up.code, out: `${up.stdout}${up.stderr}` };
  }

  function assertClean(out: string, message: RegExp): void {
    assert.match(out, message);
    // ESC of an ANSI colour code, and Node's stack frames ("    at planNetwork (...)").
    assert.doesNotMatch(out, new RegExp(String.fromCharCode(27)), `colour codes in:\n${JSON.stringify(out)}`);
    assert.doesNotMatch(out, /^\s+at /m, `a stack trace in:\n${out}`);
    assert.doesNotMatch(out, /unhandled exception|problems: \[/, `the error object dumped in:\n${out}`);
  }

  it("IsolatedNetwork: a namespace listed twice", async () => {
    const r = await upOf(
      "planerr-isolated",
      `new netns.IsolatedNetwork("bad", { connection, bridge: "v-net-0", subnet: "10.9.0.0/24", namespaces: [{ name: "red" }, { name: "red" }] });`,
    );
    assert.notEqual(r.code, 0, r.out);
    assertClean(r.out, /IsolatedNetwork: namespaces\[1\]\.name: "red" is listed twice/);
  });

  it("PodNetwork: a node that is null", async () => {
    const r = await upOf(
      "planerr-pod",
      `new netns.PodNetwork("bad", { clusterCidr: "10.244.0.0/16", nodes: [{ connection, name: "a", nodeAddress: "192.0.2.1", pods: [] }, null as never] });`,
    );
    assert.notEqual(r.code, 0, r.out);
    assertClean(r.out, /PodNetwork: nodes\[1\]: null is not a node/);
  });
});
