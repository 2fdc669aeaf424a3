import { strict as assert } from "node:assert";
import type { LabHost, PulumiStack } from "../../provider/testing";
import { rewriteProgram, testingKit, writeProgram } from "../support/harness";
import { CLIENT, SERVER, waitListening } from "../support/tcp";
import { bridged, DIRECT, program } from "./programs";
import { changes, labConfig, ok, ping, providerCounts } from "./support";

async function linksIn(lab: LabHost, ns: string): Promise<string[]> {
  return JSON.parse((await lab.exec(["ip", "-j", "link", "show"], { namespace: ns })).stdout)
    .map((l: { ifname: string }) => l.ifname)
    .sort();
}

for (const forwardPolicyDrop of [false, true]) {
  describe(`the lesson, step by step, on a lab host${forwardPolicyDrop ? " whose FORWARD policy is DROP" : ""}`, function () {
    this.timeout(600_000);
    let lab: LabHost;
    let stack: PulumiStack;
    let dir: string;
    let pristine: string;
    const log: string[] = [];

    before(async () => {
      const kit = testingKit();
      lab = await kit.startLabHost({
        name: `it-lesson${forwardPolicyDrop ? "-drop" : ""}-${process.pid}`,
        forwardPolicyDrop,
      });
      pristine = await kit.fingerprint(lab);
      dir = writeProgram("lesson", program(DIRECT));
      stack = new kit.PulumiStack({
        programDir: dir,
        config: labConfig(lab),
        log: (l) => log.push(l),
      });
    });

    after(async () => {
      if (stack) await stack.destroy().catch(() => undefined);
      if (lab) await lab.stop();
    });

    if (!forwardPolicyDrop) {
      it("1. one veth pair: red pings blue; red sees only lo and veth-red; red's ARP table has blue's MAC; the host, sending to both, reaches neither and holds no entry for them", async () => {
        const up = await stack.up();
        ok(up, log);
        assert.equal((await ping(lab, "192.168.15.2", "red")).code, 0);
        assert.deepEqual(await linksIn(lab, "red"), ["lo", "veth-red"]);
        const neigh = JSON.parse((await lab.exec(["ip", "-j", "neigh", "show"], { namespace: "red" })).stdout);
        const entry = neigh.find((n: { dst: string }) => n.dst === "192.168.15.2");
        assert.equal(entry?.lladdr, up.outputs.blueMac);
        // The host now tries to reach both ends: were it on their link, it would ARP for them there.
        assert.notEqual((await ping(lab, "192.168.15.2")).code, 0, "the host reaches blue");
        assert.notEqual((await ping(lab, "192.168.15.1")).code, 0, "the host reaches red");
        const hostNeigh = JSON.parse((await lab.exec(["ip", "-j", "neigh", "show"])).stdout);
        const onLink = hostNeigh.filter((n: { dst: string }) => n.dst.startsWith("192.168.15."));
        assert.deepEqual(onLink, [], "the host's neighbour table holds red or blue");
      });
    }

    it("2. bridge v-net-0 replaces the direct pair: red and blue ping each other, the host pings red", async () => {
      if (!forwardPolicyDrop) {
        // As in the lesson: first the direct pair goes (its names are reused), then the bridge version comes.
        rewriteProgram(dir, program(bridged({ withoutCables: true })));
        const removed = await stack.up();
        ok(removed, log);
        assert.equal(removed.counts.delete, 1, "the direct pair is removed");
        assert.deepEqual(await linksIn(lab, "red"), ["lo"]);
      }
      rewriteProgram(dir, program(bridged()));
      const up = await stack.up();
      ok(up, log);
      assert.equal((await ping(lab, "192.168.15.2", "red")).code, 0);
      assert.equal((await ping(lab, "192.168.15.1", "blue")).code, 0);
      assert.equal((await ping(lab, "192.168.15.1")).code, 0);
      const br = JSON.parse((await lab.exec(["ip", "-j", "addr", "show", "dev", "v-net-0"])).stdout)[0];
      assert.deepEqual(
        br.addr_info
          .filter((a: { family: string }) => a.family === "inet")
          .map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`),
        ["192.168.15.5/24"],
      );
      assert.equal(br.address, up.outputs.bridgeMac, "the bridge keeps the MAC it was created with");
    });

    it("3. blue cannot reach the LAN until a Route and a MasqueradeRule exist; then the LAN peer, with no route back, answers", async () => {
      const unreachable = await ping(lab, lab.lan.peerAddress, "blue");
      assert.notEqual(unreachable.code, 0);
      assert.match(unreachable.stdout + unreachable.stderr, /Network is unreachable/);
      rewriteProgram(dir, program(bridged({ lanRoute: true, nat: true })));
      ok(await stack.up(), log);
      const lanRoute = await lab.execLan(["ip", "-j", "route", "get", "192.168.15.2"], { allowFailure: true });
      assert.notEqual(lanRoute.code, 0, "the LAN peer must have no route to 192.168.15.0/24");
      assert.equal((await ping(lab, lab.lan.peerAddress, "blue")).code, 0);
    });

    it("4. a default route gives red the 'internet' behind the LAN", async () => {
      assert.notEqual((await ping(lab, lab.lan.internetAddress, "red")).code, 0);
      rewriteProgram(dir, program(bridged({ lanRoute: true, nat: true, redDefault: true })));
      ok(await stack.up(), log);
      assert.equal((await ping(lab, lab.lan.internetAddress, "red")).code, 0);
    });

    it("5. PortForward: the LAN peer reaches a server in blue through the lab host's port, and so does the lab host itself", async () => {
      const server = lab.spawn(SERVER("hello from blue", 80), { namespace: "blue" });
      await waitListening(server);
      rewriteProgram(dir, program(bridged({ lanRoute: true, nat: true, redDefault: true, portForward: true })));
      ok(await stack.up(), log);
      const fromLan = await lab.execLan(CLIENT(lab.lan.hostAddress, 8080), { allowFailure: true });
      assert.equal(fromLan.stdout, "hello from blue\n", fromLan.stderr);
      const fromHostLan = await lab.exec(CLIENT(lab.lan.hostAddress, 8080), { allowFailure: true });
      assert.equal(fromHostLan.stdout, "hello from blue\n", fromHostLan.stderr);
      const fromLocalhost = await lab.exec(CLIENT("127.0.0.1", 8080), { allowFailure: true });
      assert.equal(fromLocalhost.stdout, "hello from blue\n", fromLocalhost.stderr);
      await server.kill();
    });

    it("6. a second up changes nothing and refresh finds no drift", async () => {
      const again = await stack.up();
      ok(again, log);
      assert.equal(changes(again), 0, JSON.stringify(again.steps));
      const refreshed = await stack.refresh();
      ok(refreshed, log);
      assert.equal(refreshed.counts.update + refreshed.counts.delete, 0, JSON.stringify(refreshed.steps));
    });

    it("6. editing an address and a route's metric updates in place", async () => {
      rewriteProgram(
        dir,
        program(
          bridged({
            lanRoute: true,
            nat: true,
            redDefault: true,
            portForward: true,
            redAddresses: ["192.168.15.1/24", "192.168.15.11/24"],
            routeMetric: 7,
          }),
        ),
      );
      const up = await stack.up();
      ok(up, log);
      assert.equal(up.counts.update, 2, JSON.stringify(up.steps));
      assert.equal(up.counts.replace + up.counts.create + up.counts.delete, 0, JSON.stringify(up.steps));
      assert.equal((await ping(lab, "192.168.15.11", "blue")).code, 0);
      const routes = JSON.parse(
        (await lab.exec(["ip", "-j", "route", "show", "exact", "203.0.113.0/24"], { namespace: "blue" })).stdout,
      );
      assert.deepEqual(
        routes.map((r: { metric?: number }) => r.metric ?? 0),
        [7],
      );
    });

    it("6. a namespace, a link and a rule removed behind the program's back: refresh sees it, up repairs it", async () => {
      await lab.exec(["ip", "netns", "del", "red"]);
      await lab.exec(["ip", "link", "del", "veth-blue-br"]);
      const masq = (await lab.exec(["iptables-save", "-t", "nat"])).stdout
        .split("\n")
        .find((l) => l.includes("MASQUERADE") && l.includes("192.168.15.0/24"));
      assert.ok(masq, "the masquerade rule is there");
      await lab.exec([
        "iptables",
        "-w",
        "-t",
        "nat",
        ...masq
          .replace(/^-A/, "-D")
          .match(/"[^"]*"|\S+/g)!
          .map((w) => w.replace(/^"|"$/g, "")),
      ]);
      const refreshed = await stack.refresh();
      ok(refreshed, log);
      // The engine's refresh: a resource its read finds gone is dropped (op "delete"), one whose
      // state changed is updated (op "update"); the summary counts them the same way.
      const named = (op: string) =>
        refreshed.steps
          .filter((s) => s.op === op && s.type.startsWith("pulumi-nodejs:dynamic/"))
          .map((s) => s.urn.split("::").pop())
          .sort();
      // red takes its cable and red's route with it; veth-blue-br takes its peer veth-blue, and
      // with it blue's route to the LAN (via an address only reachable over veth-blue).
      assert.deepEqual(
        named("delete"),
        ["blue-br", "blue-to-lan", "red", "red-br", "red-default"],
        JSON.stringify(refreshed.steps),
      );
      assert.deepEqual(named("update"), ["nat"], JSON.stringify(refreshed.steps));
      assert.equal(refreshed.counts.delete, 5, JSON.stringify(refreshed.counts));
      assert.equal(refreshed.counts.update, 1, JSON.stringify(refreshed.counts));
      const up = await stack.up();
      ok(up, log);
      assert.equal((await ping(lab, "192.168.15.2", "red")).code, 0);
      assert.equal((await ping(lab, lab.lan.peerAddress, "blue")).code, 0);
      assert.equal((await ping(lab, lab.lan.internetAddress, "red")).code, 0);
      assert.deepEqual(
        providerCounts(up),
        { create: 5, update: 1, replace: 0, delete: 0 },
        `up re-creates what refresh dropped and puts the rule back: ${JSON.stringify(up.steps)}`,
      );
      const second = await stack.up();
      ok(second, log);
      assert.equal(changes(second), 0, JSON.stringify(second.steps));
    });

    it("7. destroy puts the lab host back exactly as it was", async () => {
      const down = await stack.destroy();
      ok(down, log);
      assert.equal(await testingKit().fingerprint(lab), pristine);
    });
  });
}
