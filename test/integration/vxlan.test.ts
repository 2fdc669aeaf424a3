import { strict as assert } from "node:assert";
import { type PodNetworkSpec, planPodNetwork } from "../../components/podPlan";
import type { LabHost, LabSegment, PulumiStack } from "../../provider/testing";
import { rewriteProgram, testingKit, writeProgram } from "../support/harness";
import { changes, labConfig, ok, ping, providerCounts } from "./support";

/** Two nodes on the segment linkLabHosts makes (192.0.2.1 and .2), one pod each, over a VXLAN overlay. */
const SPEC: PodNetworkSpec = {
  clusterCidr: "10.244.0.0/16",
  mode: "vxlan",
  nodes: [
    { name: "node-a", nodeAddress: "192.0.2.1", pods: [{ name: "web" }] },
    { name: "node-b", nodeAddress: "192.0.2.2", pods: [{ name: "db" }] },
  ],
};

const HEADER = `
import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";

const cfg = new pulumi.Config();
const connectionOf = (suffix: string) => ({
  host: cfg.require("host" + suffix),
  port: cfg.requireNumber("port" + suffix),
  user: "root",
  privateKey: cfg.requireSecret("privateKey" + suffix),
});
`;

const POD_PROGRAM = `${HEADER}
const spec = ${JSON.stringify(SPEC)};
const net = new netns.PodNetwork("cluster", {
  ...spec,
  nodes: spec.nodes.map((n, i) => ({ ...n, connection: connectionOf(i === 0 ? "" : "B") })),
});
export const addresses = net.addresses;
`;

/** A Vxlan of its own on each lab, an address on it: the two labs share 10.99.0.0/24 over the overlay. */
const standalone = (vni: number, remotesOfA = ["192.0.2.2"]) => `${HEADER}
const a = new netns.Vxlan("vx-a", {
  connection: connectionOf(""), name: "vx9", vni: ${vni}, local: "192.0.2.1",
  remotes: ${JSON.stringify(remotesOfA)}, addresses: ["10.99.0.1/24"],
});
const b = new netns.Vxlan("vx-b", {
  connection: connectionOf("B"), name: "vx9", vni: ${vni}, local: "192.0.2.2", remotes: ["192.0.2.1"],
  addresses: ["10.99.0.2/24"],
});
export const macA = a.mac;
`;

/** A TCP server that answers each connection with the address it came from. */
const PEER_ECHO = (port: number) => [
  process.execPath,
  "-e",
  `require("net").createServer((s) => s.end(s.remoteAddress + "\\n")).listen(${port}, "0.0.0.0", () => console.log("listening"))`,
];
const CONNECT = (host: string, port: number) => [
  process.execPath,
  "-e",
  `const s = require("net").connect(${port}, ${JSON.stringify(host)}); let d = ""; s.on("data", (c) => (d += c)); s.on("end", () => process.stdout.write(d)); s.on("error", (e) => { console.error(e.message); process.exit(1); }); setTimeout(() => process.exit(2), 3000).unref();`,
];

/** The peers of a VXLAN device: the destinations of its all-zeros FDB entries (`bridge -j fdb show`). */
async function fdbRemotes(lab: LabHost, dev: string): Promise<string[]> {
  const text = (await lab.exec(["bridge", "-j", "fdb", "show", "dev", dev])).stdout.trim();
  const entries: Array<{ mac: string; dst?: string }> = text ? JSON.parse(text) : [];
  return entries
    .filter((e) => e.mac === "00:00:00:00:00:00" && e.dst)
    .map((e) => e.dst as string)
    .sort();
}

interface RouteJson {
  dst: string;
  gateway?: string;
  dev?: string;
}
const inCluster = (dst: string) => dst.startsWith("10.244.");

describe("Vxlan and PodNetwork mode vxlan on two linked lab hosts, through the real Pulumi engine", function () {
  this.timeout(600_000);
  let a: LabHost;
  let b: LabHost;
  let segment: LabSegment;
  const stacks: PulumiStack[] = [];
  let pristine: string[];
  const log: string[] = [];
  const plan = planPodNetwork(SPEC);
  const address = (pod: string) => plan.nodes.flatMap((n) => n.pods).find((p) => p.name === pod)!.address;
  const fingerprints = () => Promise.all([testingKit().fingerprint(a), testingKit().fingerprint(b)]);
  const stackOf = (name: string, source: string) => {
    const stack = new (testingKit().PulumiStack)({
      programDir: writeProgram(name, source),
      config: { ...labConfig(a), ...labConfig(b, "B") },
      log: (l) => log.push(l),
    });
    stacks.push(stack);
    return stack;
  };

  before(async () => {
    const kit = testingKit();
    // FORWARD policy DROP on both nodes, as Docker leaves hosts: pod traffic must be let through by the stack's rules.
    [a, b] = await Promise.all(
      ["a", "b"].map((x) => kit.startLabHost({ name: `it-vxlan-${x}-${process.pid}`, forwardPolicyDrop: true })),
    );
    segment = await kit.linkLabHosts([a, b], { subnet: "192.0.2.0/24" });
    pristine = await fingerprints();
  });

  after(async () => {
    for (const s of stacks) await s.destroy().catch(() => undefined);
    await segment?.remove();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  describe("PodNetwork mode vxlan", () => {
    let stack: PulumiStack;
    before(() => {
      stack = stackOf("podvxlan", POD_PROGRAM);
    });

    it("pods reach each other across nodes over the overlay, with no pod-CIDR route on the shared segment, without NAT; a second up changes nothing", async () => {
      const up = await stack.up();
      ok(up, log);
      assert.deepEqual(up.outputs.addresses, { web: address("web"), db: address("db") });

      // The shared segment carries nothing for the pods: no route names another node's pod CIDR, none into
      // the cluster goes through a gateway or the segment's device; the other node's pods are on the bridge.
      for (const [lab, other] of [
        [a, "db"],
        [b, "web"],
      ] as const) {
        const routes: RouteJson[] = JSON.parse((await lab.exec(["ip", "-j", "route", "show", "table", "all"])).stdout);
        const podRoutes = routes.filter((r) => inCluster(r.dst));
        assert.ok(podRoutes.length > 0, JSON.stringify(routes));
        for (const r of podRoutes) {
          assert.equal(r.gateway, undefined, `${lab.name}: ${JSON.stringify(r)}`);
          assert.notEqual(r.dev, segment.device, `${lab.name}: ${JSON.stringify(r)}`);
        }
        for (const n of plan.nodes)
          assert.ok(!routes.some((r) => r.dst === n.podCidr && r.dev !== "v-net-0"), `${lab.name}: ${n.podCidr}`);
        const [seen] = JSON.parse((await lab.exec(["ip", "-j", "route", "get", address(other)])).stdout);
        assert.equal(seen.dev, "v-net-0", JSON.stringify(seen));
        assert.equal(seen.gateway, undefined, JSON.stringify(seen));
      }
      assert.deepEqual(await fdbRemotes(a, "vxlan0"), ["192.0.2.2"]);
      assert.deepEqual(await fdbRemotes(b, "vxlan0"), ["192.0.2.1"]);

      assert.equal((await ping(a, address("db"), "web")).code, 0, "web (node a) -> db (node b)");
      assert.equal((await ping(b, address("web"), "db")).code, 0, "db (node b) -> web (node a)");
      // The largest packet that fits the pods' MTU (1450 - 28), not fragmented, crosses the overlay.
      const big = await a.exec(["ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1422", address("db")], {
        namespace: "web",
        allowFailure: true,
      });
      assert.equal(big.code, 0, `1422-byte ping with DF: ${big.stdout}${big.stderr}`);

      const server = a.spawn(PEER_ECHO(8080), { namespace: "web" });
      try {
        for (let i = 0; i < 50 && !server.stdout().includes("listening"); i++)
          await new Promise((r) => setTimeout(r, 100));
        const seen = await b.exec(CONNECT(address("web"), 8080), { namespace: "db" });
        assert.equal(seen.stdout.trim(), address("db"), "the server on node a saw another address than the pod's");
      } finally {
        await server.kill();
      }

      const again = await stack.up();
      ok(again, log);
      assert.equal(changes(again), 0, JSON.stringify(again.steps));
    });

    it("refresh sees a VXLAN FDB entry removed by hand, and the next up puts it back (an update, nothing replaced)", async () => {
      await a.exec(["bridge", "fdb", "del", "00:00:00:00:00:00", "dst", "192.0.2.2", "dev", "vxlan0"]);
      assert.deepEqual(await fdbRemotes(a, "vxlan0"), []);
      const refreshed = await stack.refresh();
      ok(refreshed, log);
      const up = await stack.up();
      ok(up, log);
      assert.deepEqual(providerCounts(up), { create: 0, update: 1, replace: 0, delete: 0 }, JSON.stringify(up.steps));
      assert.deepEqual(await fdbRemotes(a, "vxlan0"), ["192.0.2.2"]);
      assert.equal((await ping(b, address("web"), "db")).code, 0, "db (node b) -> web (node a) after the repair");
    });

    it("switched to mode routes in one up: the pods' veths back to 1500 and their redirect caches flushed, so pods reach each other at once", async () => {
      // Trials of the dual-stack PodNetwork: the pods kept MTU 1450 and the ICMP redirects the vxlan bridge
      // (a /16 on one link) sent them, so IPv4 across the nodes failed for up to 5 minutes.
      assert.equal((await ping(a, address("db"), "web")).code, 0, "web -> db over the overlay first");
      const cached = (await a.exec(["ip", "route", "show", "cache"], { namespace: "web" })).stdout;
      assert.match(cached, /redirected/, "web holds a redirect from the vxlan bridge (the case is real)");
      rewriteProgram(stack.programDir, POD_PROGRAM.replace('"mode":"vxlan"', '"mode":"routes"'));
      const up = await stack.up();
      ok(up, log);
      const after = (await a.exec(["ip", "route", "show", "cache"], { namespace: "web" })).stdout;
      assert.doesNotMatch(after, /redirected/, "web still holds the vxlan bridge's redirect");
      assert.equal((await ping(a, address("db"), "web")).code, 0, "web (node a) -> db (node b) right after the switch");
      assert.equal((await ping(b, address("web"), "db")).code, 0, "db (node b) -> web (node a) right after the switch");
      const [veth] = JSON.parse(
        (await a.exec(["ip", "-j", "link", "show", "dev", "veth-web"], { namespace: "web" })).stdout,
      );
      assert.equal(veth.mtu, 1500);
    });

    it("destroy leaves both labs as they were", async () => {
      ok(await stack.destroy(), log);
      assert.deepEqual(await fingerprints(), pristine);
    });
  });

  describe("Vxlan on its own", () => {
    let stack: PulumiStack;
    before(() => {
      stack = stackOf("vxlan", standalone(42));
    });

    it("links the two labs at layer 2; a change of remotes updates the FDB in place, leaving entries it did not add", async () => {
      const up = await stack.up();
      ok(up, log);
      assert.equal((await ping(a, "10.99.0.2")).code, 0, "lab a -> 10.99.0.2 over the overlay");
      const [link] = JSON.parse((await a.exec(["ip", "-d", "-j", "link", "show", "dev", "vx9"])).stdout);
      assert.equal(link.linkinfo.info_data.id, 42);
      assert.equal(link.linkinfo.info_data.port, 4789);
      assert.equal(link.ifalias.startsWith("pulumi-netns:vxlan/"), true, link.ifalias);

      // An entry someone else added stays: only the peers the program drops are removed.
      await a.exec(["bridge", "fdb", "append", "00:00:00:00:00:00", "dst", "192.0.2.77", "dev", "vx9"]);
      rewriteProgram(stack.programDir, standalone(42, ["192.0.2.9"]));
      const more = await stack.up();
      ok(more, log);
      assert.deepEqual(
        providerCounts(more),
        { create: 0, update: 1, replace: 0, delete: 0 },
        JSON.stringify(more.steps),
      );
      assert.deepEqual(await fdbRemotes(a, "vx9"), ["192.0.2.77", "192.0.2.9"]);
      const [after] = JSON.parse((await a.exec(["ip", "-d", "-j", "link", "show", "dev", "vx9"])).stdout);
      assert.equal(after.ifindex, link.ifindex, "the device was kept");
    });

    it("a local address changed by hand (the overlay breaks): refresh shows it, the next up re-makes the device and the overlay works", async () => {
      // Back to the peer that answers (the test above moved lab a's remotes away from lab b).
      rewriteProgram(stack.programDir, standalone(42));
      ok(await stack.up(), log);
      assert.equal((await ping(a, "10.99.0.2")).code, 0, "the overlay works before the change");
      await a.exec(["ip", "link", "set", "dev", "vx9", "type", "vxlan", "local", "192.0.2.77"]);
      const refreshed = await stack.refresh();
      ok(refreshed, log);
      assert.ok(changes(refreshed) >= 1, `refresh saw no drift: ${JSON.stringify(refreshed.steps)}`);
      const up = await stack.up();
      ok(up, log);
      assert.ok(
        up.steps.some((st) => st.op === "replace" && st.urn.endsWith("::vx-a")),
        `vx-a replaced: ${JSON.stringify(up.steps)}`,
      );
      const [link] = JSON.parse((await a.exec(["ip", "-d", "-j", "link", "show", "dev", "vx9"])).stdout);
      assert.equal(link.linkinfo.info_data.local, "192.0.2.1");
      assert.equal((await ping(a, "10.99.0.2")).code, 0, "the overlay works again");
    });

    it("a second device with the same VNI and port on a host is refused naming vni, and changes nothing", async () => {
      // Attacker round 2, D6: the kernel's "A VXLAN device with the specified VNI already exists" came out raw.
      const before = await fingerprints();
      rewriteProgram(
        stack.programDir,
        `${standalone(42)}\nnew netns.Vxlan("vx-dup", { connection: connectionOf(""), name: "vx8", vni: 42, local: "192.0.2.1", remotes: ["192.0.2.2"] });\n`,
      );
      const up = await stack.up();
      assert.equal(up.ok, false, "a second VNI 42 device was accepted");
      assert.match(
        up.error ?? "",
        /vni: 42 \(dstPort 4789\) is already another VXLAN device's in the host namespace on [^;]+; .*Choose another vni or dstPort/,
      );
      assert.deepEqual(await fingerprints(), before);
      rewriteProgram(stack.programDir, standalone(42));
    });

    it("a VNI out of range is refused at preview, naming the field, and nothing changes", async () => {
      const before = await fingerprints();
      rewriteProgram(stack.programDir, standalone(16777216, ["192.0.2.9"]));
      const preview = await stack.preview();
      assert.equal(preview.ok, false);
      assert.match(preview.error ?? "", /vni: 16777216 is not an integer from 1 to 16777215/);
      assert.deepEqual(await fingerprints(), before);
      rewriteProgram(stack.programDir, standalone(42, ["192.0.2.9"]));
    });

    it("a device deleted by hand, then an update: refused saying it is gone and to refresh, not the kernel's text; refresh and up bring it back", async () => {
      await a.exec(["ip", "link", "delete", "vx9"]);
      // The program now changes vx-a's remotes: an update of a device that is not there.
      const up = await stack.up();
      assert.equal(up.ok, false, "the update of a deleted device succeeded");
      assert.match(up.error ?? "", /vxlan vx9 is gone from the host namespace on [^;]+; run refresh, then up/);
      assert.doesNotMatch(up.error ?? "", /Cannot find device/);
      rewriteProgram(stack.programDir, standalone(42));
      ok(await stack.refresh(), log);
      const again = await stack.up();
      ok(again, log);
      assert.ok(
        again.steps.some((st) => st.op === "create" && st.urn.endsWith("::vx-a")),
        `vx-a created again: ${JSON.stringify(again.steps)}`,
      );
      assert.equal((await ping(a, "10.99.0.2")).code, 0, "the overlay works again");
    });

    it("destroy leaves both labs as they were", async () => {
      ok(await stack.destroy(), log);
      assert.deepEqual(await fingerprints(), pristine);
    });
  });

  describe("Vxlan over an IPv6 underlay (issue #13 item 5)", () => {
    let stack: PulumiStack;
    let before6: string[];
    /** Lab a: local given; lab b: IPv6 remotes without local (the device is made IPv6 by "local ::"). */
    const v6 = (remotesOfB = ["fd00:4789::1"]) => `${HEADER}
new netns.Vxlan("vx6-a", {
  connection: connectionOf(""), name: "vx6", vni: 46, local: "fd00:4789::1", remotes: ["fd00:4789::2"],
  addresses: ["10.98.0.1/24", "fd00:98::1/64"], mtu: 1430,
});
new netns.Vxlan("vx6-b", {
  connection: connectionOf("B"), name: "vx6", vni: 46, remotes: ${JSON.stringify(remotesOfB)},
  addresses: ["10.98.0.2/24", "fd00:98::2/64"], mtu: 1430,
});
`;
    const eth1Address6 = (lab: LabHost, x: string, op: "add" | "del") =>
      lab.exec([
        "ip",
        "-6",
        "addr",
        op,
        `fd00:4789::${x}/64`,
        "dev",
        segment.device,
        ...(op === "add" ? ["nodad"] : []),
      ]);

    before(async () => {
      // The segment's IPv6 side, by hand (linkLabHosts gives it IPv4 only); taken off again in after.
      await eth1Address6(a, "1", "add");
      await eth1Address6(b, "2", "add");
      before6 = await fingerprints();
      stack = stackOf("vxlan6", v6());
    });

    after(async () => {
      await eth1Address6(a, "1", "del").catch(() => undefined);
      await eth1Address6(b, "2", "del").catch(() => undefined);
    });

    it("a mixed-family underlay is refused at preview, naming the remote and both families, and nothing changes", async () => {
      rewriteProgram(stack.programDir, v6(["192.0.2.1", "fd00:4789::1"]));
      const preview = await stack.preview();
      assert.equal(preview.ok, false);
      assert.match(
        preview.error ?? "",
        /remotes\[1\]: "fd00:4789::1" is IPv6 but remotes\[0\] "192.0.2.1" is IPv4: a VXLAN device has one underlay family/,
      );
      assert.deepEqual(await fingerprints(), before6);
      rewriteProgram(stack.programDir, v6());
    });

    it("links the labs over IPv6 (both address families inside), reads back local6, and a second up changes nothing", async () => {
      ok(await stack.up(), log);
      assert.equal((await ping(a, "10.98.0.2")).code, 0, "lab a -> 10.98.0.2 over the IPv6 underlay");
      const ping6 = await a.exec(["ping", "-6", "-c", "1", "-W", "3", "fd00:98::2"], { allowFailure: true });
      assert.equal(ping6.code, 0, `lab a -> fd00:98::2: ${ping6.stdout}${ping6.stderr}`);
      const [link] = JSON.parse((await a.exec(["ip", "-d", "-j", "link", "show", "dev", "vx6"])).stdout);
      assert.equal(link.linkinfo.info_data.local6, "fd00:4789::1");
      assert.deepEqual(await fdbRemotes(b, "vx6"), ["fd00:4789::1"]);
      const again = await stack.up();
      ok(again, log);
      assert.equal(changes(again), 0, JSON.stringify(again.steps));
      const refreshed = await stack.refresh();
      ok(refreshed, log);
      assert.equal(changes(refreshed), 0, `refresh saw drift: ${JSON.stringify(refreshed.steps)}`);
    });

    it("an IPv6 FDB entry removed by hand: refresh sees it, the next up puts it back in place", async () => {
      await b.exec(["bridge", "fdb", "del", "00:00:00:00:00:00", "dst", "fd00:4789::1", "dev", "vx6"]);
      const refreshed = await stack.refresh();
      ok(refreshed, log);
      assert.ok(changes(refreshed) >= 1, `refresh saw no drift: ${JSON.stringify(refreshed.steps)}`);
      const up = await stack.up();
      ok(up, log);
      assert.deepEqual(providerCounts(up), { create: 0, update: 1, replace: 0, delete: 0 }, JSON.stringify(up.steps));
      assert.deepEqual(await fdbRemotes(b, "vx6"), ["fd00:4789::1"], "the flood entry is back");
      assert.equal((await ping(b, "10.98.0.1")).code, 0, "lab b -> 10.98.0.1 after the repair");
    });

    it("remotes that change the underlay's family replace the device (an IPv6 one refuses IPv4 peers)", async () => {
      rewriteProgram(stack.programDir, v6(["192.0.2.1"]));
      const up = await stack.up();
      ok(up, log);
      assert.ok(
        up.steps.some((st) => st.op === "replace" && st.urn.endsWith("::vx6-b")),
        `vx6-b replaced: ${JSON.stringify(up.steps)}`,
      );
      assert.deepEqual(await fdbRemotes(b, "vx6"), ["192.0.2.1"]);
    });

    it("destroy leaves both labs as they were", async () => {
      ok(await stack.destroy(), log);
      assert.deepEqual(await fingerprints(), before6);
    });
  });
});
