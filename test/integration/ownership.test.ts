import { strict as assert } from "node:assert";
import * as net from "node:net";
import * as path from "node:path";
import type { LabHost, OperationResult, PulumiStack } from "../../provider/testing";
import { rewriteProgram, testingKit, writeProgram } from "../support/harness";
import { program } from "./programs";
import { labConfig, netnsList, ok } from "./support";

/**
 * Issue #10 items 6 and 7, through the real engine on a lab host: destroy
 * deletes only what is provably ours (a namespace or bridge someone else made
 * under the same name stays, and the destroy says so), recorded originals
 * survive a firewall reload (iptables -F) and its repair; a veth pair or a
 * route someone else made under our names or destination is neither deleted
 * nor read as ours; a port change on the same host deletes first (item 3).
 * Addresses: 192.0.2.0/24 (TEST-NET-1), 198.51.100.0/24 (TEST-NET-2, route destinations only).
 */

const SAME_NAMES = `
const ns = new netns.Namespace("own-ns", { connection, name: "own-ns" });
new netns.Bridge("br-own", { connection, name: "br-own", addresses: ["192.0.2.1/26"] });
`;

const PAIR = `
new netns.VethPair("own-pair", {
  connection,
  a: { name: "own-va", addresses: ["192.0.2.65/26"] },
  b: { name: "own-vb" },
});
`;

const PAIR_AND_NS = `${PAIR}
new netns.Namespace("own-nsr", { connection, name: "own-nsr" });
`;

/** A route of ours in a namespace the test made, over the test's own interface. */
const routeInTestNs = (via = "192.0.2.130") => `
new netns.Route("own-route", { connection, namespace: "own-rt", destination: "198.51.100.0/24", via: "${via}", metric: 7 });
`;
const ROUTE_IN_TEST_NS = routeInTestNs();

const ONE_NAMESPACE = `
new netns.Namespace("own-port", { connection, name: "own-port" });
`;

const MASQ = `
new netns.MasqueradeRule("masq", { connection, source: "192.0.2.0/26", enableIpForward: true });
`;

interface IpLink {
  ifname: string;
  ifindex: number;
  ifalias?: string;
}

async function link(lab: LabHost, name: string): Promise<IpLink | undefined> {
  const r = await lab.exec(["ip", "-j", "link", "show", "dev", name], { allowFailure: true });
  return r.code === 0 && r.stdout.trim() ? (JSON.parse(r.stdout) as IpLink[])[0] : undefined;
}

async function inode(lab: LabHost, name: string): Promise<string> {
  return (await lab.exec(["stat", "-L", "-c", "%i", `/run/netns/${name}`])).stdout.trim();
}

async function ipForward(lab: LabHost): Promise<string> {
  return (await lab.exec(["cat", "/proc/sys/net/ipv4/ip_forward"])).stdout.trim();
}

/** The rules (`iptables -S` lines) of the lab host that carry an owner comment of this package. */
async function ownerRules(lab: LabHost): Promise<string[]> {
  const lines: string[] = [];
  for (const table of ["filter", "nat"]) {
    const r = await lab.exec(["iptables", "-w", "-t", table, "-S"], { allowFailure: true });
    lines.push(...r.stdout.split("\n").filter((l) => l.startsWith("-A ") && l.includes("pulumi-netns/")));
  }
  return lines;
}

interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  metric?: number;
  /** Absent: "boot" (what \`ip route add\` gives a route by default). */
  protocol?: string;
}

async function routesTo(lab: LabHost, namespace: string, destination: string): Promise<IpRoute[]> {
  const r = await lab.exec(["ip", "-j", "route", "show", "table", "main", "exact", destination], { namespace });
  return r.stdout.trim() ? (JSON.parse(r.stdout) as IpRoute[]) : [];
}

/** The URNs of the resources an operation deleted (refresh: those it read as gone). */
const deleted = (r: OperationResult) => r.steps.filter((s) => s.op === "delete").map((s) => s.urn);

/** Waits until something accepts TCP connections on host:port (10 s at most). */
async function listening(host: string, port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host, port, timeout: 500 });
      const done = (v: boolean) => {
        s.destroy();
        resolve(v);
      };
      s.once("connect", () => done(true));
      s.once("error", () => done(false));
      s.once("timeout", () => done(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on ${host}:${port}`);
}

const shown = (r: OperationResult) => r.diagnostics.map((d) => d.message).join("\n");

describe("ownership through the real engine on a lab host (issue #10 items 6, 7)", function () {
  this.timeout(600_000);
  let lab: LabHost;
  let pristine: string;
  const stacks: PulumiStack[] = [];
  const log: string[] = [];

  before(async () => {
    lab = await testingKit().startLabHost({ name: `it-owner-${process.pid}` });
    pristine = await testingKit().fingerprint(lab);
  });

  after(async () => {
    for (const s of stacks) await s.destroy().catch(() => undefined);
    if (lab) await lab.stop();
  });

  function stackOf(name: string, body: string, config: Record<string, string> = labConfig(lab)): PulumiStack {
    const kit = testingKit();
    const stack = new kit.PulumiStack({
      programDir: writeProgram(name, program(body)),
      config,
      log: (l) => log.push(l),
    });
    stacks.push(stack);
    return stack;
  }

  it("destroy leaves a namespace and a bridge someone else made under our names, and says so", async () => {
    const stack = stackOf("owner-same-names", SAME_NAMES);
    ok(await stack.up(), log);
    // Behind the program's back: ours go, another owner makes objects with the same names.
    await lab.exec(["ip", "netns", "del", "own-ns"]);
    await lab.exec(["ip", "netns", "add", "own-ns"]);
    await lab.exec(["ip", "link", "del", "br-own"]);
    await lab.exec(["ip", "link", "add", "br-own", "type", "bridge"]);
    const theirs = { ns: await inode(lab, "own-ns"), bridge: (await link(lab, "br-own"))?.ifindex };
    const destroyed = await stack.destroy();
    ok(destroyed, log);
    assert.ok((await netnsList(lab)).includes("own-ns"), "the other owner's namespace own-ns was deleted");
    assert.equal(await inode(lab, "own-ns"), theirs.ns);
    assert.equal((await link(lab, "br-own"))?.ifindex, theirs.bridge, "the other owner's bridge br-own was deleted");
    const said = shown(destroyed) + log.join("\n");
    assert.match(said, /namespace "own-ns".*not (the one|ours)/s, said.slice(-3000));
    assert.match(said, /bridge "br-own".*not (the one|ours)/s);
    await lab.exec(["ip", "netns", "del", "own-ns"]);
    await lab.exec(["ip", "link", "del", "br-own"]);
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });

  it("after iptables -F (a firewall reload), refresh + up repair, and destroy puts back ip_forward and the tables", async () => {
    assert.equal(await ipForward(lab), "0");
    const stack = stackOf("owner-flush", MASQ);
    ok(await stack.up(), log);
    assert.equal(await ipForward(lab), "1");
    await lab.exec(["sh", "-c", "iptables -w -F && iptables -w -t nat -F"]);
    assert.deepEqual(await ownerRules(lab), []);
    const refreshed = await stack.refresh();
    ok(refreshed, log);
    assert.equal(refreshed.counts.delete ?? 0, 0, `refresh dropped the rule: ${JSON.stringify(refreshed.steps)}`);
    ok(await stack.up(), log);
    const repaired = await ownerRules(lab);
    assert.equal(repaired.length, 3, repaired.join("\n"));
    for (const rule of repaired) assert.match(rule, /ipfw=0/, `the repair recorded another original: ${rule}`);
    ok(await stack.destroy(), log);
    assert.equal(await ipForward(lab), "0", "destroy left ip_forward=1");
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });

  it("destroy leaves a veth pair someone else made under our names, and says so", async () => {
    const stack = stackOf("owner-pair", PAIR);
    ok(await stack.up(), log);
    // Behind the program's back: ours goes, another owner makes a pair with the same names.
    await lab.exec(["ip", "link", "del", "own-va"]);
    await lab.exec(["ip", "link", "add", "own-va", "type", "veth", "peer", "name", "own-vb"]);
    const theirs = { a: (await link(lab, "own-va"))?.ifindex, b: (await link(lab, "own-vb"))?.ifindex };
    const destroyed = await stack.destroy();
    ok(destroyed, log);
    try {
      assert.equal((await link(lab, "own-va"))?.ifindex, theirs.a, "the other owner's veth own-va was deleted");
      assert.equal((await link(lab, "own-vb"))?.ifindex, theirs.b, "the other owner's veth own-vb was deleted");
      const said = shown(destroyed) + log.join("\n");
      assert.match(said, /veth end "own-va".*not the one this stack made.*left in place/s, said.slice(-3000));
    } finally {
      await lab.exec(["ip", "link", "del", "own-va"], { allowFailure: true });
    }
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });

  it("refresh reads a veth pair and a namespace someone else made under our names as ours gone", async () => {
    const stack = stackOf("owner-refresh", PAIR_AND_NS);
    ok(await stack.up(), log);
    await lab.exec(["ip", "link", "del", "own-va"]);
    await lab.exec(["ip", "link", "add", "own-va", "type", "veth", "peer", "name", "own-vb"]);
    await lab.exec(["ip", "netns", "del", "own-nsr"]);
    await lab.exec(["ip", "netns", "add", "own-nsr"]);
    const theirs = await inode(lab, "own-nsr");
    try {
      const refreshed = await stack.refresh();
      ok(refreshed, log);
      const gone = deleted(refreshed);
      assert.ok(
        gone.some((u) => u.endsWith("::own-pair")),
        `refresh read the other owner's pair as ours: ${gone}`,
      );
      assert.ok(
        gone.some((u) => u.endsWith("::own-nsr")),
        `refresh read the other owner's namespace as ours: ${gone}`,
      );
      ok(await stack.destroy(), log);
      assert.equal(await inode(lab, "own-nsr"), theirs, "the other owner's namespace own-nsr was deleted");
      assert.ok(await link(lab, "own-va"), "the other owner's veth own-va was deleted");
    } finally {
      await lab.exec(["ip", "link", "del", "own-va"], { allowFailure: true });
      await lab.exec(["ip", "netns", "del", "own-nsr"], { allowFailure: true });
    }
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });

  it("a user's route with our destination and metric over another gateway is neither deleted nor read as ours", async () => {
    // The namespace and the interface are the test's: only the Route is the stack's.
    await lab.exec(["ip", "netns", "add", "own-rt"]);
    try {
      await lab.exec(["ip", "link", "add", "u0", "type", "veth", "peer", "name", "u1"], { namespace: "own-rt" });
      await lab.exec(["ip", "addr", "add", "192.0.2.129/26", "dev", "u0"], { namespace: "own-rt" });
      await lab.exec(["ip", "link", "set", "u0", "up"], { namespace: "own-rt" });
      await lab.exec(["ip", "link", "set", "u1", "up"], { namespace: "own-rt" });
      const theirs = ["ip", "route", "add", "198.51.100.0/24", "via", "192.0.2.131", "metric", "7"];
      const swap = async () => {
        await lab.exec(["ip", "route", "del", "198.51.100.0/24", "metric", "7"], { namespace: "own-rt" });
        await lab.exec(theirs, { namespace: "own-rt" });
      };
      const stack = stackOf("owner-route", ROUTE_IN_TEST_NS);
      ok(await stack.up(), log);
      await swap();
      ok(await stack.destroy(), log);
      const left = await routesTo(lab, "own-rt", "198.51.100.0/24");
      assert.deepEqual(
        left.map((r) => r.gateway),
        ["192.0.2.131"],
        `destroy deleted the user's route: ${JSON.stringify(left)}`,
      );
      await lab.exec(["ip", "route", "del", "198.51.100.0/24", "metric", "7"], { namespace: "own-rt" });
      ok(await stack.up(), log);
      await swap();
      const refreshed = await stack.refresh();
      ok(refreshed, log);
      assert.ok(
        deleted(refreshed).some((u) => u.endsWith("::own-route")),
        `refresh read the user's route as ours: ${JSON.stringify(refreshed.steps)}`,
      );
      ok(await stack.destroy(), log);
      assert.deepEqual(
        (await routesTo(lab, "own-rt", "198.51.100.0/24")).map((r) => r.gateway),
        ["192.0.2.131"],
      );
    } finally {
      await lab.exec(["ip", "netns", "del", "own-rt"], { allowFailure: true });
    }
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });

  it("a via change does not overwrite a user's route that took our destination and metric after ours was deleted by hand", async () => {
    // The namespace and the interface are the test's: only the Route is the stack's.
    await lab.exec(["ip", "netns", "add", "own-rt"]);
    try {
      await lab.exec(["ip", "link", "add", "u0", "type", "veth", "peer", "name", "u1"], { namespace: "own-rt" });
      await lab.exec(["ip", "addr", "add", "192.0.2.129/26", "dev", "u0"], { namespace: "own-rt" });
      await lab.exec(["ip", "link", "set", "u0", "up"], { namespace: "own-rt" });
      await lab.exec(["ip", "link", "set", "u1", "up"], { namespace: "own-rt" });
      const dir = writeProgram("owner-route-update", program(routeInTestNs("192.0.2.130")));
      const stack = new (testingKit().PulumiStack)({
        programDir: dir,
        config: labConfig(lab),
        log: (l) => log.push(l),
      });
      stacks.push(stack);
      ok(await stack.up(), log);
      await lab.exec(["ip", "route", "del", "198.51.100.0/24", "metric", "7"], { namespace: "own-rt" });
      await lab.exec(["ip", "route", "add", "198.51.100.0/24", "via", "192.0.2.131", "metric", "7"], {
        namespace: "own-rt",
      });
      rewriteProgram(dir, program(routeInTestNs("192.0.2.132")));
      const up = await stack.up();
      const theirs = (await routesTo(lab, "own-rt", "198.51.100.0/24")).map((r) => ({
        gateway: r.gateway,
        metric: r.metric,
        protocol: r.protocol,
      }));
      assert.deepEqual(
        theirs,
        [{ gateway: "192.0.2.131", metric: 7, protocol: undefined }],
        "the user's route is as they made it",
      );
      assert.ok(!up.ok, "the up refused");
      assert.match(
        `${up.error}\n${shown(up)}`,
        /route to 198\.51\.100\.0\/24 metric 7 .* is not ours \(proto boot, via 192\.0\.2\.131\): nothing was changed; remove it or run refresh/,
      );
      // The user's route removed, the same up adds ours (as a create would); the next via change replaces it.
      await lab.exec(["ip", "route", "del", "198.51.100.0/24", "metric", "7"], { namespace: "own-rt" });
      ok(await stack.up(), log);
      rewriteProgram(dir, program(routeInTestNs("192.0.2.133")));
      ok(await stack.up(), log);
      const ours = (await routesTo(lab, "own-rt", "198.51.100.0/24")).map((r) => [r.gateway, r.protocol]);
      assert.deepEqual(ours, [["192.0.2.133", "113"]], "ours alone, re-pointed");
      ok(await stack.destroy(), log);
      assert.deepEqual(await routesTo(lab, "own-rt", "198.51.100.0/24"), [], "destroy removed ours");
    } finally {
      await lab.exec(["ip", "netns", "del", "own-rt"], { allowFailure: true });
    }
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });

  it("a Bridge that adopts a bridge of its name removes the FORWARD rule a gone Bridge of that name left", async () => {
    const body = (adopt: boolean) => `
new netns.Bridge("br-orph", { connection, name: "br-orph", addresses: ["192.0.2.193/26"], adopt: ${adopt} });
`;
    const dir = writeProgram("owner-orphan", program(body(false)));
    const stack = new (testingKit().PulumiStack)({ programDir: dir, config: labConfig(lab), log: (l) => log.push(l) });
    stacks.push(stack);
    const forwardOf = async () => (await ownerRules(lab)).filter((l) => / -i br-orph -o br-orph /.test(l));
    try {
      ok(await stack.up(), log);
      const [old] = await forwardOf();
      assert.ok(old, "the Bridge's FORWARD rule is there");
      // The bridge goes behind the program's back; refresh drops the Bridge, not its rule (its link is gone).
      await lab.exec(["ip", "link", "del", "dev", "br-orph"]);
      ok(await stack.refresh(), log);
      // Someone makes a bridge of that name (no mark); the program takes it over.
      await lab.exec(["ip", "link", "add", "br-orph", "type", "bridge"]);
      rewriteProgram(dir, program(body(true)));
      ok(await stack.up(), log);
      const rules = await forwardOf();
      assert.equal(rules.length, 1, `one FORWARD rule for br-orph, the adopting Bridge's: ${JSON.stringify(rules)}`);
      assert.notEqual(rules[0], old, "the gone Bridge's rule is still there");
      ok(await stack.destroy(), log);
      assert.deepEqual(await forwardOf(), []);
    } finally {
      await lab.exec(["ip", "link", "del", "dev", "br-orph"], { allowFailure: true });
      for (const l of await forwardOf()) {
        const spec = l.replace(/^-A /, "").match(/"[^"]*"|\S+/g) ?? [];
        await lab.exec(["iptables", "-w", "-D", ...spec.map((w) => w.replace(/^"(.*)"$/, "$1"))], {
          allowFailure: true,
        });
      }
    }
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });

  it("the adopting Bridge also removes the gone Bridge's forwardFrom accepts it does not share (both families)", async () => {
    // Trial of stop 19: only the gone owner's rules of the new Bridge's own shapes went; its other forwardFrom stayed for good.
    const body = (adopt: boolean, forwardFrom: string[]) => `
new netns.Bridge("br-orph2", { connection, name: "br-orph2", addresses: ["192.0.2.193/26", "fd00:193::1/64"], adopt: ${adopt}, forwardFrom: ${JSON.stringify(forwardFrom)} });
`;
    const dir = writeProgram("owner-orphan2", program(body(false, ["198.51.100.64/26", "fd00:77::/64"])));
    const stack = new (testingKit().PulumiStack)({ programDir: dir, config: labConfig(lab), log: (l) => log.push(l) });
    stacks.push(stack);
    const bridgeRules = async () => {
      const lines: string[] = [];
      for (const cmd of ["iptables", "ip6tables"]) {
        const r = await lab.exec([cmd, "-w", "-S", "FORWARD"], { allowFailure: true });
        lines.push(
          ...r.stdout
            .split("\n")
            .filter((l) => / -o br-orph2 /.test(l))
            .map((l) => `${cmd} ${l}`),
        );
      }
      return lines.sort();
    };
    try {
      ok(await stack.up(), log);
      assert.equal((await bridgeRules()).length, 4, JSON.stringify(await bridgeRules()));
      await lab.exec(["ip", "link", "del", "dev", "br-orph2"]);
      ok(await stack.refresh(), log);
      await lab.exec(["ip", "link", "add", "br-orph2", "type", "bridge"]);
      rewriteProgram(dir, program(body(true, ["198.51.100.128/26"])));
      ok(await stack.up(), log);
      const rules = await bridgeRules();
      assert.deepEqual(
        rules.map((l) => l.replace(/"pulumi-netns\/bridge\/[0-9a-f]+\/[^"]*"/, "OWNER")),
        [
          "ip6tables -A FORWARD -i br-orph2 -o br-orph2 -m comment --comment OWNER -j ACCEPT",
          "iptables -A FORWARD -i br-orph2 -o br-orph2 -m comment --comment OWNER -j ACCEPT",
          "iptables -A FORWARD -s 198.51.100.128/26 -o br-orph2 -m comment --comment OWNER -j ACCEPT",
        ],
        "only the adopting Bridge's accepts (its IPv6 one for the adopted bridge's IPv6 address)",
      );
      ok(await stack.destroy(), log);
      assert.deepEqual(await bridgeRules(), []);
    } finally {
      await lab.exec(["ip", "link", "del", "dev", "br-orph2"], { allowFailure: true });
      for (const l of await bridgeRules()) {
        const [cmd, ...rest] = l.split(" ");
        const spec =
          rest
            .join(" ")
            .replace(/^-A /, "")
            .match(/"[^"]*"|\S+/g) ?? [];
        await lab.exec([cmd, "-w", "-D", ...spec.map((w) => w.replace(/^"(.*)"$/, "$1"))], { allowFailure: true });
      }
    }
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });

  it("a port change on the same host deletes first: the namespace is replaced, not refused as already there", async () => {
    // A second sshd in the lab (its own config, another port): the same machine under two ports.
    const config = labConfig(lab);
    const dir = testingKit().readLabState(lab.name)?.dir;
    assert.ok(dir, "the lab's state has no dir");
    const second = lab.spawn(["/usr/sbin/sshd", "-D", "-e", "-f", path.join(dir, "sshd_config"), "-p", "2222"]);
    try {
      await listening(lab.address, 2222);
      const stack = stackOf("owner-port", ONE_NAMESPACE, config);
      ok(await stack.up(), log);
      config.port = "2222";
      const moved = await stack.up();
      ok(moved, log);
      assert.ok((await netnsList(lab)).includes("own-port"), "the namespace is gone after the port change");
      ok(await stack.destroy(), log);
      assert.ok(!(await netnsList(lab)).includes("own-port"), "destroy left own-port");
    } finally {
      await lab.exec(["ip", "netns", "del", "own-port"], { allowFailure: true });
      await second.kill();
    }
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });
});
