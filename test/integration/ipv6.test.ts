import { strict as assert } from "node:assert";
import type { LabHost, PulumiStack } from "../../provider/testing";
import { testingKit, writeProgram } from "../support/harness";
import { program } from "./programs";
import { changes, labConfig, ok } from "./support";

/**
 * Dual stack on one lab host (issue #13 item 5; issue #10 item 1 for IPv6):
 * red and blue on a bridge, each with an IPv6 and an IPv4 address, a
 * "default6" Route in each via the bridge's IPv6 address, and an IPv6 /64
 * route in blue via the bridge. (Not a route in red via blue: the kernel
 * probes a route's gateway by itself, which would hide a missing announcement.) Addresses: ULA fd00:6a::/64 and 198.51.100.0/24
 * (TEST-NET-2); the /64 routed through blue, fd00:6b::/64, is not on any link.
 */
const PROGRAM = program(`
const red = new netns.Namespace("red", { connection, name: "red" });
const blue = new netns.Namespace("blue", { connection, name: "blue" });
const bridge = new netns.Bridge("v6-br", { connection, name: "v6-br", addresses: ["fd00:6a::5/64", "198.51.100.5/24"] });
const redCable = new netns.VethPair("red-br", {
  connection,
  a: { name: "veth-red", namespace: red.name, addresses: ["fd00:6a::1/64", "198.51.100.1/24"] },
  b: { name: "veth-red-br", bridge: bridge.name },
});
const blueCable = new netns.VethPair("blue-br", {
  connection,
  a: { name: "veth-blue", namespace: blue.name, addresses: ["fd00:6a::2/64", "198.51.100.2/24"] },
  b: { name: "veth-blue-br", bridge: bridge.name },
});
new netns.Route("red-default6", { connection, namespace: "red", destination: "default6", via: "fd00:6a::5" }, { dependsOn: [redCable] });
new netns.Route("blue-default6", { connection, namespace: "blue", destination: "::/0", via: "fd00:6a::5" }, { dependsOn: [blueCable] });
new netns.Route("blue-to-6b", { connection, namespace: "blue", destination: "fd00:6b::/64", via: "fd00:6a::5", metric: 5 }, { dependsOn: [blueCable] });
`);

interface Addr6 {
  family: string;
  local: string;
  prefixlen: number;
  scope: string;
  tentative?: boolean;
  dadfailed?: boolean;
}

/** The IPv6 addresses of global scope of `dev`, from `ip -j -6 addr show`. */
async function globals6(lab: LabHost, dev: string, namespace?: string): Promise<Addr6[]> {
  const text = (await lab.exec(["ip", "-j", "-6", "addr", "show", "dev", dev], { namespace })).stdout;
  const [entry] = JSON.parse(text) as Array<{ addr_info: Addr6[] }>;
  return entry.addr_info.filter((a) => a.scope === "global");
}

/** `ip -j -6 route show` of a namespace. */
async function routes6(lab: LabHost, namespace: string) {
  const text = (await lab.exec(["ip", "-j", "-6", "route", "show"], { namespace })).stdout;
  return JSON.parse(text) as Array<{ dst: string; gateway?: string; dev?: string; metric?: number; protocol?: string }>;
}

const ping6 = (lab: LabHost, address: string, namespace: string) =>
  lab.exec(["ping", "-6", "-c1", "-W1", address], { namespace, allowFailure: true });

async function macOf(lab: LabHost, namespace: string, dev: string): Promise<string> {
  return JSON.parse((await lab.exec(["ip", "-j", "link", "show", "dev", dev], { namespace })).stdout)[0].address;
}

async function neighbours6(lab: LabHost, namespace: string) {
  const text = (await lab.exec(["ip", "-j", "-6", "neigh", "show"], { namespace })).stdout;
  return (text.trim() ? JSON.parse(text) : []) as Array<{ dst: string; lladdr?: string; state?: string[] }>;
}

describe("IPv6 on links and routes: usable the moment up returns, no drift, re-made by drift repair", function () {
  this.timeout(900_000);
  let lab: LabHost;
  let pristine: string;
  let stack: PulumiStack;
  const log: string[] = [];

  before(async () => {
    const kit = testingKit();
    lab = await kit.startLabHost({ name: `it-v6-${process.pid}` });
    pristine = await kit.fingerprint(lab);
    stack = new kit.PulumiStack({
      programDir: writeProgram("ipv6", PROGRAM),
      config: labConfig(lab),
      log: (l) => log.push(l),
    });
  });

  after(async () => {
    if (stack) await stack.destroy().catch(() => undefined);
    if (lab) await lab.stop();
  });

  it("up: the IPv6 addresses are there and not tentative; red reaches blue and the bridge over IPv6 at once", async () => {
    ok(await stack.up(), log);
    for (const [dev, ns, want] of [
      ["veth-red", "red", "fd00:6a::1"],
      ["veth-blue", "blue", "fd00:6a::2"],
      ["v6-br", undefined, "fd00:6a::5"],
    ] as const) {
      const found = (await globals6(lab, dev, ns)).find((a) => a.local === want);
      assert.ok(found, `${want} on ${dev}`);
      assert.equal(found.prefixlen, 64);
      assert.ok(!found.tentative && !found.dadfailed, `${want} on ${dev} is usable: ${JSON.stringify(found)}`);
    }
    // The first ping, right after up: no wait for DAD or neighbour discovery to settle.
    assert.equal((await ping6(lab, "fd00:6a::2", "red")).code, 0, "red -> blue over IPv6");
    assert.equal((await ping6(lab, "fd00:6a::5", "red")).code, 0, "red -> the bridge over IPv6");
    assert.equal((await ping6(lab, "fd00:6a::5", "blue")).code, 0, "blue -> the bridge over IPv6");
  });

  it("the routes are in the kernel as ip -6 shows them, with the owner mark", async () => {
    const red = await routes6(lab, "red");
    const dflt = red.find((r) => r.dst === "default");
    assert.deepEqual([dflt?.gateway, dflt?.protocol], ["fd00:6a::5", "113"], JSON.stringify(red));
    const blue = await routes6(lab, "blue");
    assert.equal(blue.find((r) => r.dst === "default")?.gateway, "fd00:6a::5", JSON.stringify(blue));
    const six = blue.find((r) => r.dst === "fd00:6b::/64");
    assert.deepEqual([six?.gateway, six?.metric, six?.protocol], ["fd00:6a::5", 5, "113"], JSON.stringify(blue));
  });

  it("a second up changes nothing and refresh sees no drift", async () => {
    const again = await stack.up();
    ok(again, log);
    assert.equal(changes(again), 0, JSON.stringify(again.steps));
    const refreshed = await stack.refresh();
    ok(refreshed, log);
    assert.equal(refreshed.counts.update + refreshed.counts.delete, 0, JSON.stringify(refreshed.steps));
    const after = await stack.up();
    ok(after, log);
    assert.equal(changes(after), 0, JSON.stringify(after.steps));
  });

  it("blue deleted by hand: refresh + up re-create it, and red's FIRST ping -6 reaches the new blue", async () => {
    const oldMac = await macOf(lab, "blue", "veth-blue");
    // Red's entry for blue is then fresh (REACHABLE, the old MAC): the case the announcement is for.
    assert.equal((await ping6(lab, "fd00:6a::2", "red")).code, 0, "red -> blue before the drift");
    await lab.exec(["ip", "netns", "del", "blue"]);
    ok(await stack.refresh(), log);
    ok(await stack.up(), log);
    const newMac = await macOf(lab, "blue", "veth-blue");
    assert.notEqual(newMac, oldMac, "blue's interface is a new one");
    const held = (await neighbours6(lab, "red")).find((n) => n.dst === "fd00:6a::2");
    const first = await ping6(lab, "fd00:6a::2", "red");
    assert.equal(
      first.code,
      0,
      `red's first ping -6 to the new blue failed; red's neighbour entry before it: ${JSON.stringify(held)} (old MAC ${oldMac}, new ${newMac})`,
    );
    assert.equal((await neighbours6(lab, "red")).find((n) => n.dst === "fd00:6a::2")?.lladdr, newMac);
    assert.equal((await ping6(lab, "fd00:6a::5", "blue")).code, 0, "the new blue -> the bridge");
  });

  it("destroy leaves the lab host as it was (IPv6 routes and forwarding included)", async () => {
    ok(await stack.destroy(), log);
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });
});

/**
 * A namespace given its own bridge's IPv6 address (attacker, dual-stack round):
 * whichever side loses duplicate address detection, the up must fail naming the
 * address. Before, when the bridge lost (it starts DAD only once the pair's port
 * gives it carrier), `up` said ok with the gateway `dadfailed`.
 */
describe("IPv6 edges from the attacker trial: an address removed by hand, the same address on a bridge and behind it", function () {
  this.timeout(600_000);
  let lab: LabHost;
  let pristine: string;
  const log: string[] = [];

  before(async () => {
    lab = await testingKit().startLabHost({ name: `it-dad-${process.pid}` });
    pristine = await testingKit().fingerprint(lab);
  });

  after(async () => {
    if (lab) await lab.stop();
  });

  it("a bridge's IPv6 address removed by hand, then refresh: destroy still removes its IPv6 accept (attacker: left in ip6tables)", async () => {
    const stack = new (testingKit().PulumiStack)({
      programDir: writeProgram(
        "dad-hand",
        program(
          `new netns.Bridge("hbr", { connection, name: "hbr", addresses: ["fd00:d3::1/64", "198.51.100.9/24"] });`,
        ),
      ),
      config: labConfig(lab),
      log: (l) => log.push(l),
    });
    const accepts = async () =>
      (await lab.exec(["ip6tables", "-w", "-S", "FORWARD"], { allowFailure: true })).stdout
        .split("\n")
        .filter((l) => l.includes("-i hbr -o hbr"));
    // The IPv6 filter table is there before (someone's chain in it), as on the attacker's host: destroy
    // then cannot take the rule away with a table it brought, only by the rule itself.
    await lab.exec(["ip6tables", "-w", "-N", "someones-chain"]);
    try {
      ok(await stack.up(), log);
      assert.equal((await accepts()).length, 1, "the bridge with IPv6 has its IPv6 accept");
      await lab.exec(["ip", "addr", "del", "fd00:d3::1/64", "dev", "hbr"]);
      ok(await stack.refresh(), log);
    } finally {
      ok(await stack.destroy(), log);
    }
    try {
      assert.deepEqual(await accepts(), [], "destroy left the IPv6 accept");
    } finally {
      await lab.exec(["ip6tables", "-w", "-F", "FORWARD"]);
      await lab.exec(["ip6tables", "-w", "-X", "someones-chain"]);
      await lab.exec(["nft", "delete", "table", "ip6", "filter"]);
    }
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });

  for (const round of [1, 2, 3])
    it(`round ${round}: up fails naming fd00:d2::1/64 (dadfailed), destroy leaves the lab as it was`, async () => {
      const stack = new (testingKit().PulumiStack)({
        programDir: writeProgram(
          `dad-${round}`,
          program(`
const ns = new netns.Namespace("dn", { connection, name: "dn" });
const br = new netns.Bridge("dbr", { connection, name: "dbr", addresses: ["fd00:d2::1/64"] });
new netns.VethPair("dvp", {
  connection,
  a: { name: "dva", namespace: ns.name, addresses: ["fd00:d2::1/64"] },
  b: { name: "dva-br", bridge: br.name },
});
`),
        ),
        config: labConfig(lab),
        log: (l) => log.push(l),
      });
      try {
        const up = await stack.up();
        assert.equal(up.ok, false, "up said ok with one IPv6 address on both sides of a cable");
        assert.match(up.error ?? "", /fd00:d2::1\/64 on (dva|dbr): duplicate address detection failed \(dadfailed\)/);
      } finally {
        ok(await stack.destroy(), log);
      }
      assert.equal(await testingKit().fingerprint(lab), pristine);
    });
});
