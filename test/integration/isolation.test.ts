import { strict as assert } from "node:assert";
import type { NetworkSpec } from "../../components/plan";
import { planNetwork } from "../../components/plan";
import type { LabHost, PulumiStack } from "../../provider/testing";
import { rewriteProgram, testingKit, writeProgram } from "../support/harness";
import { lessonSpec } from "../support/lessonSpec";
import { CLIENT, SERVER, waitListening } from "../support/tcp";
import { HEADER } from "./programs";
import { changes, labConfig, ok, ping } from "./support";

/**
 * Issue #10 items 4 and 5, through the real engine on one lab host: two
 * IsolatedNetworks of two stacks are kept apart (allowFrom opens one to the
 * other), and a third stack whose subnet, bridge address or host port
 * collides with the first is refused naming both sides, leaving the host as it was.
 */

const SECOND: NetworkSpec = {
  bridge: "v-net-1",
  subnet: "10.31.0.0/24",
  namespaces: [{ name: "alpha" }, { name: "beta" }],
  outboundNat: true,
  portForwards: [{ namespace: "alpha", hostPort: 8081, port: 80 }],
};

const networkProgram = (spec: object) =>
  `${HEADER}\nconst net = new netns.IsolatedNetwork("net", { connection, ...${JSON.stringify(spec)} });\nexport const addresses = net.addresses;\n`;

/** Counters aside (pings move them), the host as the fingerprint sees it. */
const withoutCounters = (text: string) => text.replace(/packets \d+ bytes \d+/g, "");

describe("IsolatedNetwork isolation and collisions: stacks sharing one lab host (real engine)", function () {
  this.timeout(900_000);
  let lab: LabHost;
  let pristine: string;
  const stacks: PulumiStack[] = [];
  const dirs: string[] = [];
  const log: string[] = [];
  const alpha = planNetwork(SECOND).namespaces[0].address;
  const beta = planNetwork(SECOND).namespaces[1].address;

  const newStack = (name: string, source: string) => {
    const kit = testingKit();
    const dir = writeProgram(name, source);
    dirs.push(dir);
    const stack = new kit.PulumiStack({ programDir: dir, config: labConfig(lab), log: (l) => log.push(l) });
    stacks.push(stack);
    return stack;
  };

  before(async () => {
    const kit = testingKit();
    lab = await kit.startLabHost({ name: `it-isol-${process.pid}` });
    pristine = await kit.fingerprint(lab);
  });

  after(async () => {
    for (const s of stacks.reverse()) await s.destroy().catch(() => undefined);
    if (lab) await lab.stop();
  });

  it("two networks of two stacks cannot reach each other; gateway, host, NAT to the LAN and port forwards still work", async () => {
    const first = newStack("isol-first", networkProgram(lessonSpec()));
    const second = newStack("isol-second", networkProgram(SECOND));
    ok(await first.up(), log);
    ok(await second.up(), log);
    const again = await first.up();
    ok(again, log);
    assert.equal(changes(again), 0, `a second up changed something: ${JSON.stringify(again.steps)}`);

    assert.notEqual((await ping(lab, alpha, "red")).code, 0, "red -> alpha must be dropped");
    assert.notEqual((await ping(lab, "192.168.15.1", "alpha")).code, 0, "alpha -> red must be dropped");
    assert.notEqual((await ping(lab, "192.168.15.2", "beta")).code, 0, "beta -> blue must be dropped");
    // The other network's gateway is the host's own address: the host itself is not isolated.
    for (const [ns, target, what] of [
      ["red", "192.168.15.5", "red -> its gateway"],
      ["alpha", "10.31.0.1", "alpha -> its gateway"],
      ["red", "192.168.15.2", "red -> blue (same network)"],
      ["alpha", beta, "alpha -> beta (same network)"],
      ["red", lab.lan.peerAddress, "red -> LAN peer through NAT"],
      ["alpha", lab.lan.peerAddress, "alpha -> LAN peer through NAT"],
      [undefined, "192.168.15.1", "host -> red"],
      [undefined, alpha, "host -> alpha"],
    ] as const)
      assert.equal((await ping(lab, target, ns)).code, 0, what);

    // Each network's isolation rule carries its owner comment, in the mangle table's FORWARD chain.
    const mangle = (await lab.exec(["iptables", "-t", "mangle", "-S", "FORWARD"])).stdout;
    for (const br of ["v-net-0", "v-net-1"])
      assert.match(
        mangle,
        new RegExp(`^-A FORWARD ! -i ${br} -o ${br} .*--comment "?pulumi-netns/isol/.*-j DROP$`, "m"),
      );

    const servers = [
      lab.spawn(SERVER("hello from blue", 80), { namespace: "blue" }),
      lab.spawn(SERVER("hello from alpha", 80), { namespace: "alpha" }),
    ];
    try {
      for (const s of servers) await waitListening(s);
      for (const [port, text] of [
        [8080, "hello from blue\n"],
        [8081, "hello from alpha\n"],
      ] as const) {
        const fromLan = await lab.execLan(CLIENT(lab.lan.hostAddress, port), { allowFailure: true });
        assert.equal(fromLan.stdout, text, `LAN -> host:${port}: ${fromLan.stderr}`);
        const fromHost = await lab.exec(CLIENT("127.0.0.1", port), { allowFailure: true });
        assert.equal(fromHost.stdout, text, `host -> 127.0.0.1:${port}: ${fromHost.stderr}`);
      }
      // A published port is published to every network (as Docker's are): red reaches alpha's through the host.
      const published = await lab.exec(CLIENT(lab.lan.hostAddress, 8081), { namespace: "red", allowFailure: true });
      assert.equal(published.stdout, "hello from alpha\n", `red -> host:8081: ${published.stderr}`);
      const direct = await lab.exec(CLIENT(alpha, 80), { namespace: "red", allowFailure: true });
      assert.notEqual(direct.stdout, "hello from alpha\n", "red -> alpha:80 directly must be dropped");
    } finally {
      for (const s of servers) await s.kill();
    }
  });

  it("allowFrom opens the second network to the first's subnet only: red reaches alpha, alpha still cannot reach red", async () => {
    rewriteProgram(dirs[1], networkProgram({ ...SECOND, allowFrom: ["192.168.15.0/24"] }));
    ok(await stacks[1].up(), log);
    assert.equal((await ping(lab, alpha, "red")).code, 0, "red -> alpha, allowed");
    assert.equal((await ping(lab, beta, "blue")).code, 0, "blue -> beta, allowed");
    assert.notEqual((await ping(lab, "192.168.15.1", "alpha")).code, 0, "alpha -> red still dropped");
    rewriteProgram(dirs[1], networkProgram(SECOND));
    ok(await stacks[1].up(), log);
    assert.notEqual((await ping(lab, alpha, "red")).code, 0, "red -> alpha dropped again");
  });

  /** The interface group of a host link, from `ip -j link show` (absent or "default": 0). */
  const groupOf = async (dev: string): Promise<number> => {
    const [link] = JSON.parse((await lab.exec(["ip", "-j", "link", "show", "dev", dev])).stdout);
    return link.group === undefined || link.group === "default" ? 0 : Number(link.group);
  };

  it("a bridge's group reset by hand (ip link set group default) lets nothing across; refresh sees the drift and up puts the group back", async () => {
    await lab.exec(["ip", "link", "set", "dev", "v-net-1", "group", "default"]);
    assert.notEqual((await ping(lab, "192.168.15.1", "alpha")).code, 0, "alpha -> red must stay dropped");
    assert.notEqual((await ping(lab, alpha, "red")).code, 0, "red -> alpha must stay dropped");
    const refreshed = await stacks[1].refresh();
    ok(refreshed, log);
    const drifted = refreshed.steps.filter((s) => s.type.endsWith(":Bridge") && s.op === "update");
    assert.equal(drifted.length, 1, `refresh did not see the bridge's group drift: ${JSON.stringify(refreshed.steps)}`);
    ok(await stacks[1].up(), log);
    assert.equal(await groupOf("v-net-1"), 0x4e53, "up puts the isolation group back");
    assert.equal((await ping(lab, beta, "alpha")).code, 0, "alpha -> beta (same network) after up");
    assert.notEqual((await ping(lab, "192.168.15.1", "alpha")).code, 0, "alpha -> red dropped after up");
  });

  it("allowFrom is exact: another network's namespace spoofing an allowed source gets nothing in", async () => {
    // The first network lets in 10.99.0.0/24 (say, a VPN routed elsewhere); alpha forges 10.99.0.7 towards red.
    rewriteProgram(dirs[0], networkProgram({ ...lessonSpec(), allowFrom: ["10.99.0.0/24"] }));
    ok(await stacks[0].up(), log);
    const alphaVeth = planNetwork(SECOND).namespaces[0].vethName;
    const counter = ["INPUT", "-s", "10.99.0.7/32", "-p", "icmp", "-j", "ACCEPT"];
    await lab.exec(["ip", "addr", "add", "10.99.0.7/32", "dev", alphaVeth], { namespace: "alpha" });
    await lab.exec(["iptables", "-I", ...counter], { namespace: "red" });
    try {
      await lab.exec(["ping", "-c", "3", "-i", "0.2", "-W", "1", "-I", "10.99.0.7", "192.168.15.1"], {
        namespace: "alpha",
        allowFailure: true,
      });
      const saved = (await lab.exec(["iptables-save", "-c", "-t", "filter"], { namespace: "red" })).stdout;
      const line = saved.split("\n").find((l) => l.endsWith(`-A ${counter.join(" ")}`));
      assert.ok(line, `red's counting rule is listed by iptables-save -c: ${saved}`);
      const packets = Number(/^\[(\d+):\d+\]/.exec(line)![1]);
      assert.equal(packets, 0, `${line}: alpha's packets forged from 10.99.0.7 reached red`);
    } finally {
      await lab.exec(["iptables", "-D", ...counter], { namespace: "red", allowFailure: true });
      await lab.exec(["ip", "addr", "del", "10.99.0.7/32", "dev", alphaVeth], {
        namespace: "alpha",
        allowFailure: true,
      });
      rewriteProgram(dirs[0], networkProgram(lessonSpec()));
      ok(await stacks[0].up(), log);
    }
    assert.equal((await ping(lab, lab.lan.peerAddress, "red")).code, 0, "red -> LAN peer through NAT");
  });

  const refused = async (name: string, body: string, expected: RegExp[]) => {
    const before = withoutCounters(await testingKit().fingerprint(lab));
    const stack = newStack(name, `${HEADER}\n${body}\n`);
    const up = await stack.up();
    assert.ok(!up.ok, `the colliding stack was accepted: ${JSON.stringify(up.steps)}`);
    for (const re of expected) assert.match(up.error ?? "", re);
    if (process.env.SHOW_REFUSALS) console.log(up.error);
    const made = up.steps.filter((s) => s.type.startsWith("pulumi-nodejs:dynamic/") && s.op === "create" && !s.failed);
    assert.deepEqual(made, [], "a resource was made before the refusal");
    assert.equal(withoutCounters(await testingKit().fingerprint(lab)), before, "the refused up changed the host");
    assert.equal((await ping(lab, "192.168.15.2", "red")).code, 0, "the first network still works");
    assert.equal((await ping(lab, lab.lan.peerAddress, "red")).code, 0, "and its NAT");
  };

  it("a subnet overlapping the first network's (192.168.15.0/25 on another bridge) is refused naming both", async () => {
    await refused(
      "isol-overlap",
      `new netns.IsolatedNetwork("net", { connection, bridge: "v-net-2", subnet: "192.168.15.0/25", namespaces: [{ name: "green" }] });`,
      [/v-net-2/, /192\.168\.15\.1\/25/, /v-net-0/, /192\.168\.15\.0\/24/],
    );
  });

  it("a Bridge taking the first bridge's address is refused naming both", async () => {
    await refused(
      "isol-sameaddr",
      `new netns.Bridge("br", { connection, name: "v-net-3", addresses: ["192.168.15.5/32"] });`,
      [/v-net-3/, /192\.168\.15\.5/, /v-net-0/, /already/],
    );
  });

  it("a second forward of host port 8080 is refused naming the first's owner comment", async () => {
    const owner = (await lab.exec(["iptables", "-t", "nat", "-S", "PREROUTING"])).stdout.match(
      /--dport 8080 .*--comment "?(pulumi-netns\/pfwd\/[0-9a-f]+)/,
    );
    assert.ok(owner, "the first network's forward of 8080 is on the host");
    await refused(
      "isol-port",
      `new netns.PortForward("pf", { connection, hostPort: 8080, toAddress: "10.99.0.2", toPort: 80 });`,
      [/8080/, /10\.99\.0\.2/, new RegExp(owner[1].replace(/\//g, "\\/"))],
    );
  });

  it("a third stack's IsolatedNetwork on the first's bridge name (v-net-0) is refused naming the first's isolation", async () => {
    // The bridge is in the isolation group, so it is no stranger's interface; but its isolation is another
    // network's, and a second set of rules for the same bridge would override the first's allowFrom.
    const owner = (await lab.exec(["iptables", "-t", "mangle", "-S", "FORWARD"])).stdout.match(
      /-o v-net-0 .*--comment "?(pulumi-netns\/isol\/[0-9a-f]+)/,
    );
    assert.ok(owner, "the first network's isolation rule is on the host");
    await refused(
      "isol-samebridge",
      `new netns.IsolatedNetwork("net", { connection, bridge: "v-net-0", subnet: "10.77.0.0/24", allowFrom: ["10.31.0.0/24"], namespaces: [{ name: "green" }] });`,
      [/v-net-0/, new RegExp(owner[1].replace(/\//g, "\\/")), /bridge/],
    );
    assert.notEqual((await ping(lab, "192.168.15.1", "alpha")).code, 0, "alpha -> red still dropped");
  });

  it("renaming a network's bridge (v-net-1 -> v-net-9) replaces it in one up: pings work, still isolated, refresh finds no drift", async () => {
    rewriteProgram(dirs[1], networkProgram({ ...SECOND, bridge: "v-net-9" }));
    const renamed = await stacks[1].up();
    ok(renamed, log);
    const steps = renamed.steps.filter((s) => s.op !== "same").map((s) => `${s.op} ${s.urn.split("::").pop()}`);
    const routes = (await lab.exec(["ip", "-j", "route", "show"], { namespace: "alpha" })).stdout;
    for (const [target, what] of [
      [beta, "alpha -> beta"],
      ["10.31.0.1", "alpha -> its gateway"],
      [lab.lan.peerAddress, "alpha -> LAN peer through NAT"],
    ] as const)
      assert.equal((await ping(lab, target, "alpha")).code, 0, `${what}; alpha's routes: ${routes}; steps: ${steps}`);
    assert.notEqual((await ping(lab, "192.168.15.1", "alpha")).code, 0, "alpha -> red dropped");
    assert.notEqual((await ping(lab, alpha, "red")).code, 0, "red -> alpha dropped");
    const mangle = (await lab.exec(["iptables", "-t", "mangle", "-S"])).stdout;
    assert.doesNotMatch(mangle, /v-net-1\b/, "the old bridge's isolation rules are gone");
    const links = JSON.parse((await lab.exec(["ip", "-j", "link", "show"])).stdout).map(
      (l: { ifname: string }) => l.ifname,
    );
    assert.ok(!links.includes("v-net-1") && links.includes("v-net-9"), `links: ${links}`);
    const refreshed = await stacks[1].refresh();
    ok(refreshed, log);
    assert.equal(refreshed.counts.update + refreshed.counts.delete, 0, JSON.stringify(refreshed.steps));
    const again = await stacks[1].up();
    ok(again, log);
    assert.equal(changes(again), 0, JSON.stringify(again.steps));
  });

  it("destroying both networks puts the lab host back exactly as it was", async () => {
    for (const s of [...stacks].reverse()) ok(await s.destroy(), log);
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });
});
