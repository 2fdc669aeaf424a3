import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import type { LabHost, PulumiStack } from "../../provider/testing";
import { rewriteProgram, testingKit, writeProgram } from "../support/harness";
import { program } from "./programs";
import { changes, labConfig, ok, ping } from "./support";

/**
 * A namespace renamed in an IsolatedNetwork that forwards a host port to it
 * (new-user trial, stop 20): the engine makes the new namespace, its cable
 * with the same address and its forward before it deletes the old ones. The
 * forward was refused as a second forward of the port, every later `up` too;
 * with no forward, neighbours kept the old namespace's MAC for the address
 * (~20 s unreachable). One `up` must converge, and the address answer at once.
 */
const net = (second: string) => `
new netns.IsolatedNetwork("rn", {
  connection,
  bridge: "v-rn",
  subnet: "192.168.47.0/24",
  gateway: "192.168.47.1",
  // Attacker trial round 2: the IPv6 address is derived from the name, so the renamed namespace's IPv6
  // forward goes elsewhere and was refused as a second forward of the port.
  subnet6: "fd00:47::/64",
  namespaces: [{ name: "rn-red", address: "192.168.47.10" }, { name: "${second}", address: "192.168.47.20" }],
  portForwards: [{ namespace: "${second}", hostPort: 8091, port: 80 }],
  verify: true,
});
`;

describe("a namespace renamed in an IsolatedNetwork with a port forward, through the real engine", function () {
  this.timeout(600_000);
  let lab: LabHost;
  let stack: PulumiStack | undefined;
  let pristine: string;
  const log: string[] = [];

  before(async () => {
    lab = await testingKit().startLabHost({ name: `it-rename-${process.pid}` });
    pristine = await testingKit().fingerprint(lab);
  });

  after(async () => {
    if (stack) await stack.destroy().catch(() => undefined);
    if (lab) await lab.stop();
  });

  it("one up renames it: the forward moves, the host and red reach the new namespace at once, refresh sees nothing", async () => {
    const dir = writeProgram("rename", program(net("rn-blue")));
    const trace = path.join(dir, "commands.jsonl");
    stack = new (testingKit().PulumiStack)({
      programDir: dir,
      config: labConfig(lab),
      log: (l) => log.push(l),
      env: { PULUMI_NETNS_TRACE: trace },
    });
    ok(await stack.up(), log);
    // The old namespace's MAC in the host's and red's neighbour caches, as after any traffic.
    assert.equal((await ping(lab, "192.168.47.20")).code, 0, "host -> rn-blue");
    assert.equal((await ping(lab, "192.168.47.20", "rn-red")).code, 0, "rn-red -> rn-blue");
    rewriteProgram(dir, program(net("rn-green")));
    const offset = fs.existsSync(trace) ? fs.statSync(trace).size : 0;
    ok(await stack.up(), log);
    // The cable goes with rn-blue (deletedWith: no VethPair delete runs), and neighbours that got rn-blue's
    // MAC for .20 while both were on the bridge (the first ARP reply wins) keep it unless rn-green then
    // announces itself: after rn-blue's delete, rn-green's veth sets its MAC to itself (link.ts ANNOUNCE).
    const commands = fs
      .readFileSync(trace, "utf8")
      .slice(offset)
      .split("\n")
      .filter((l) => l.includes('"event":"command"'))
      .map((l) => JSON.parse(l).command as string);
    const deleted = commands.findIndex((c) => /ip netns del rn-blue/.test(c));
    assert.ok(deleted >= 0, "rn-blue's delete is traced");
    assert.ok(
      commands.slice(deleted + 1).some((c) => c.includes("ip netns exec rn-green") && c.includes("announce")),
      "rn-green announced itself after rn-blue's delete",
    );
    const [green] = JSON.parse((await lab.exec(["ip", "-j", "link", "show"], { namespace: "rn-green" })).stdout).filter(
      (l: { ifname: string }) => l.ifname !== "lo",
    );
    const neighbour = JSON.parse(
      (await lab.exec(["ip", "-j", "neigh", "show", "to", "192.168.47.20", "dev", "v-rn"])).stdout || "[]",
    );
    assert.deepEqual(
      neighbour.map((n: { lladdr?: string }) => n.lladdr),
      [green.address],
      "the host's neighbour entry is the new namespace's MAC",
    );
    assert.equal((await ping(lab, "192.168.47.20", "rn-red")).code, 0, "rn-red -> rn-green, first ping");
    const dnat = (await lab.exec(["iptables", "-w", "-t", "nat", "-S", "PREROUTING"])).stdout
      .split("\n")
      .filter((l) => l.includes("--dport 8091"));
    assert.equal(dnat.length, 1, `one forward of 8091: ${dnat.join("\n")}`);
    const green6 = JSON.parse(
      (await lab.exec(["ip", "-6", "-j", "addr", "show", "scope", "global"], { namespace: "rn-green" })).stdout,
    ).flatMap((l: { addr_info: Array<{ local: string }> }) => l.addr_info.map((a) => a.local));
    const dnat6 = (await lab.exec(["ip6tables", "-w", "-t", "nat", "-S", "PREROUTING"])).stdout
      .split("\n")
      .filter((l) => l.includes("--dport 8091"));
    assert.equal(dnat6.length, 1, `one IPv6 forward of 8091: ${dnat6.join("\n")}`);
    assert.ok(dnat6[0].includes(`[${green6[0]}]:80`), `to rn-green's ${green6[0]}: ${dnat6[0]}`);
    const refreshed = await stack.refresh();
    ok(refreshed, log);
    assert.equal(changes(refreshed), 0, `refresh saw drift: ${JSON.stringify(refreshed.steps)}`);
  });

  it("destroy leaves the lab as it was", async () => {
    ok(await stack!.destroy(), log);
    stack = undefined;
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });
});
