import { strict as assert } from "node:assert";
import type { LabHost, PulumiStack } from "../../provider/testing";
import { rewriteProgram, testingKit, writeProgram } from "../support/harness";
import { CLIENT, SERVER, waitListening } from "../support/tcp";
import { program } from "./programs";
import { labConfig, ok } from "./support";

/**
 * Writing the global forwarding switch (net.ipv4.ip_forward,
 * net.ipv6.conf.all.forwarding) rewrites every interface's own `forwarding`
 * and default's; IPv6 does so even when the value does not change. Destroy
 * must leave each interface's value as it found it, not only the global one
 * (issue #10: "destroy leaves the host as it was"). Two MasqueradeRules, one
 * per family, out of the lab's eth0; no traffic.
 */

const BODY = `
new netns.MasqueradeRule("fw4", { connection, source: "10.77.0.0/24", outInterface: "eth0" });
new netns.MasqueradeRule("fw6", { connection, source: "fd00:77::/64", outInterface: "eth0" });
`;

const V4 = "/proc/sys/net/ipv4/conf";
const V6 = "/proc/sys/net/ipv6/conf";

describe("interface forwarding values survive up and destroy (lab host, real engine)", function () {
  this.timeout(600_000);
  let lab: LabHost;
  const stacks: PulumiStack[] = [];
  const log: string[] = [];

  const set = (pairs: Array<[string, string]>) =>
    lab.exec(["sh", "-c", pairs.map(([path, v]) => `echo ${v} > ${path}/forwarding`).join("; ")]);
  const get = async (path: string) => (await lab.exec(["cat", `${path}/forwarding`])).stdout.trim();

  before(async () => {
    lab = await testingKit().startLabHost({ name: `it-fwd-${process.pid}` });
  });

  after(async () => {
    for (const s of stacks) await s.destroy().catch(() => undefined);
    if (lab) await lab.stop();
  });

  const masq = (id: string, source: string, more = "") =>
    program(`new netns.MasqueradeRule("${id}", { connection, source: "${source}", outInterface: "eth0"${more} });`);
  const stackOf = (name: string, source: string) => {
    const stack = new (testingKit().PulumiStack)({
      programDir: writeProgram(name, source),
      config: labConfig(lab),
      log: (l) => log.push(l),
    });
    stacks.push(stack);
    return stack;
  };
  const v4 = () => Promise.all([get(`${V4}/all`), get(`${V4}/eth0`)]);
  /** The records (sysctl.ts) of the namespace with this inode (the lab's own by default); /run may be shared with other labs. */
  const records = async (inode?: string) => {
    const of = inode ?? (await lab.exec(["readlink", "/proc/self/ns/net"])).stdout.replace(/\D/g, "");
    return (await lab.exec(["sh", "-c", `ls /run | grep '^pulumi-netns[.].*[.]${of}$' || true`])).stdout.trim();
  };

  async function upAndDestroy(name: string, during: () => Promise<void>): Promise<void> {
    const dir = writeProgram(name, program(BODY));
    const stack = new (testingKit().PulumiStack)({ programDir: dir, config: labConfig(lab), log: (l) => log.push(l) });
    stacks.push(stack);
    ok(await stack.up(), log);
    await during();
    ok(await stack.destroy(), log);
  }

  it("global switches off, eth0 forwarding on in both families: destroy leaves eth0 on and the globals off", async () => {
    await set([
      [`${V4}/all`, "0"],
      [`${V6}/all`, "0"],
      [`${V4}/eth0`, "1"],
      [`${V6}/eth0`, "1"],
    ]);
    const before = await testingKit().fingerprint(lab);
    await upAndDestroy("fwd-off", async () => {
      assert.equal(await get(`${V4}/all`), "1", "the MasqueradeRule switched IPv4 forwarding on");
      assert.equal(await get(`${V6}/all`), "1", "the MasqueradeRule switched IPv6 forwarding on");
    });
    assert.deepEqual(
      [await get(`${V4}/eth0`), await get(`${V6}/eth0`), await get(`${V4}/all`), await get(`${V6}/all`)],
      ["1", "1", "0", "0"],
      "eth0 v4, eth0 v6, all v4, all v6 after destroy",
    );
    assert.equal(await testingKit().fingerprint(lab), before);
  });

  it("global switches on, eth0 forwarding off in both families: destroy leaves eth0 off", async () => {
    await set([
      [`${V4}/all`, "1"],
      [`${V6}/all`, "1"],
      [`${V4}/eth0`, "0"],
      [`${V6}/eth0`, "0"],
      [`${V4}/default`, "0"],
    ]);
    const before = await testingKit().fingerprint(lab);
    await upAndDestroy("fwd-on", async () => undefined);
    assert.deepEqual([await get(`${V4}/eth0`), await get(`${V6}/eth0`)], ["0", "0"], "eth0 v4, eth0 v6 after destroy");
    assert.equal(await testingKit().fingerprint(lab), before);
  });

  // Attacker trial of stop 20, each seen failing on 3260827.
  it("a firewall reload hides the first owner: a second owner still takes the original from the record, and the last destroy puts it back", async () => {
    await set([
      [`${V4}/all`, "0"],
      [`${V4}/eth0`, "1"],
    ]);
    const before = await testingKit().fingerprint(lab);
    const s1 = stackOf("fwd-h1a", masq("h1a", "10.77.0.0/24"));
    const s2 = stackOf("fwd-h1b", masq("h1b", "10.88.0.0/24"));
    ok(await s1.up(), log);
    await lab.exec(["sh", "-c", "iptables -w -t nat -F; iptables -w -F"]);
    const up2 = await s2.up();
    ok(up2, log);
    assert.match(
      JSON.stringify(up2.outputs ?? {}) + log.join("\n"),
      /masq\/[0-9a-f]+\/ipfw=0/,
      "the second owner's claim",
    );
    ok(await s1.destroy(), log);
    ok(await s2.destroy(), log);
    assert.deepEqual(await v4(), ["0", "1"], "ip_forward, eth0 forwarding");
    assert.equal(await records(), "", "no record left in /run");
    assert.equal(await testingKit().fingerprint(lab), before);
  });

  it("ip_forward switched off by hand, then a second owner: the first owner's record (eth0's 1) survives", async () => {
    const before = await testingKit().fingerprint(lab);
    const s1 = stackOf("fwd-h2a", masq("h2a", "10.77.0.0/24"));
    const s2 = stackOf("fwd-h2b", masq("h2b", "10.88.0.0/24"));
    ok(await s1.up(), log);
    await set([[`${V4}/all`, "0"]]);
    ok(await s2.up(), log);
    ok(await s1.destroy(), log);
    ok(await s2.destroy(), log);
    assert.deepEqual(await v4(), ["0", "1"], "ip_forward, eth0 forwarding");
    assert.equal(await testingKit().fingerprint(lab), before);
  });

  it("an interface renamed and another made under its old name: the renamed one gets its 1 back, the newcomer is left alone", async () => {
    await set([[`${V4}/all`, "0"]]);
    await lab.exec(["sh", "-c", `ip link add fx0 type veth peer name fx0p && echo 1 > ${V4}/fx0/forwarding`]);
    try {
      const s = stackOf("fwd-m3", masq("m3", "10.77.0.0/24"));
      ok(await s.up(), log);
      await lab.exec([
        "sh",
        "-c",
        `ip link set fx0 name fx1 && ip link add fx0 type veth peer name fx0q && echo 0 > ${V4}/fx0/forwarding`,
      ]);
      ok(await s.destroy(), log);
      assert.deepEqual([await get(`${V4}/fx1`), await get(`${V4}/fx0`)], ["1", "0"], "fx1 (renamed), fx0 (new)");
    } finally {
      await lab.exec(["sh", "-c", "ip link del fx1; ip link del fx0"], { allowFailure: true });
    }
  });

  it("a MasqueradeRule inside a Namespace deleted first: the namespace's record goes with it", async () => {
    const s = stackOf(
      "fwd-m4",
      program(`
new netns.Namespace("fx-ns", { connection, name: "fxns" });
new netns.MasqueradeRule("m4", { connection, source: "10.5.0.0/24", namespace: "fxns" });
`),
    );
    // A plain string names the namespace: no dependency, the engine may delete the Namespace first.
    ok(await s.up(), log);
    const inode = (await lab.exec(["ip", "netns", "exec", "fxns", "readlink", "/proc/self/ns/net"])).stdout.replace(
      /\D/g,
      "",
    );
    assert.ok((await records(inode)).split("\n").includes(`pulumi-netns.ipfw.${inode}`), "the record for fxns");
    ok(await s.destroy(), log);
    assert.equal(await records(inode), "", "no record left in /run");
  });

  it("a create that fails after its rules went in takes them out again, and the tables it brought", async () => {
    const before = await testingKit().fingerprint(lab);
    assert.equal((await lab.exec(["nft", "list", "ruleset"])).stdout.trim(), "", "the lab has no table to begin with");
    const inode = (await lab.exec(["readlink", "/proc/self/ns/net"])).stdout.replace(/\D/g, "");
    // A directory at the record's path: the switch-on fails after the rules are in.
    await lab.exec(["mkdir", `/run/pulumi-netns.ipfw.${inode}`]);
    try {
      const up = await stackOf("fwd-m6", masq("m6", "10.77.0.0/24")).up();
      assert.equal(up.ok, false, "the up failed");
      assert.equal((await lab.exec(["nft", "list", "ruleset"])).stdout.trim(), "", "no table left");
    } finally {
      await lab.exec(["rmdir", `/run/pulumi-netns.ipfw.${inode}`], { allowFailure: true });
    }
    assert.equal(await records(), "", "no record left");
    assert.equal(await testingKit().fingerprint(lab), before);
  });

  it("a Bridge's IPv6 forwardFrom added, then removed again: the IPv6 table it brought goes with it, and its record (the host as under IPv4 only)", async () => {
    // Attacker trial of the dual-stack PodNetwork: clusterCidr6 removed from a live stack left an empty
    // `ip6 filter` and its record until destroy (the Bridge's comment kept claiming it).
    const bridge = (forwardFrom: string[]) =>
      program(`new netns.Bridge("nb", { connection, name: "nb0", forwardFrom: ${JSON.stringify(forwardFrom)} });`);
    const stack = stackOf("fwd-narrow", bridge(["10.78.0.0/16"]));
    ok(await stack.up(), log);
    const ipv4Only = await testingKit().fingerprint(lab);
    const recordsIpv4Only = await records();
    const tables = async () => (await lab.exec(["nft", "list", "tables"])).stdout.trim();
    assert.doesNotMatch(await tables(), /ip6 filter/, "the lab has no IPv6 filter table under IPv4 only");

    rewriteProgram(stack.programDir, bridge(["10.78.0.0/16", "fd00:78::/48"]));
    ok(await stack.up(), log);
    assert.match(await tables(), /ip6 filter/, "the IPv6 forwardFrom brought the IPv6 filter table");

    rewriteProgram(stack.programDir, bridge(["10.78.0.0/16"]));
    const narrowed = await stack.up();
    ok(narrowed, log);
    assert.doesNotMatch(await tables(), /ip6 filter/, "the IPv6 filter table is still there");
    assert.equal(await records(), recordsIpv4Only, "the IPv6 table's record is still there");
    assert.equal(await testingKit().fingerprint(lab), ipv4Only);
    // And the claims follow: a second up changes nothing, and destroy still leaves the lab as it was.
    const again = await stack.up();
    ok(again, log);
    assert.equal(again.counts.update + again.counts.create + again.counts.delete + again.counts.replace, 0);
    ok(await stack.destroy(), log);
  });

  it("a table the host had keeps only its chains: those our rules brought into it go at destroy (nf_tables)", async () => {
    // New-user trial of stop 20: a user's nat table with POSTROUTING only gained PREROUTING and OUTPUT for good.
    await lab.exec([
      "iptables",
      "-w",
      "-t",
      "nat",
      "-A",
      "POSTROUTING",
      "-s",
      "10.66.0.0/24",
      "-o",
      "eth0",
      "-j",
      "MASQUERADE",
    ]);
    try {
      const before = await testingKit().fingerprint(lab);
      assert.doesNotMatch(
        (await lab.exec(["nft", "list", "table", "ip", "nat"])).stdout,
        /PREROUTING/,
        "no PREROUTING yet",
      );
      const pf = (port: number) =>
        `new netns.PortForward("pf${port}", { connection, hostPort: ${port}, toAddress: "10.66.0.2", toPort: 80 });`;
      const s = stackOf("fwd-chains", program(pf(8093)));
      ok(await s.up(), log);
      assert.match(
        (await lab.exec(["nft", "list", "table", "ip", "nat"])).stdout,
        /chain PREROUTING/,
        "the forward's chain",
      );
      // Attacker round 3 HIGH: the forward that brought the chains went while another's rules were in them,
      // and `nft delete chain` took those rules along.
      rewriteProgram(s.programDir, program(`${pf(8093)}\n${pf(8095)}`));
      ok(await s.up(), log);
      rewriteProgram(s.programDir, program(pf(8095)));
      ok(await s.up(), log);
      const dnat = (await lab.exec(["iptables", "-w", "-t", "nat", "-S", "PREROUTING"])).stdout;
      assert.match(dnat, /--dport 8095 .*-j DNAT/, "the other forward's DNAT is still there");
      assert.match(
        (await lab.exec(["iptables", "-w", "-S", "INPUT"])).stdout,
        /-d 127\.0\.0\.0\/8/,
        "its INPUT guard too",
      );
      ok(await s.destroy(), log);
      assert.equal(await testingKit().fingerprint(lab), before);
      assert.equal(await records(), "", "no record left");
    } finally {
      await lab.exec(
        ["iptables", "-w", "-t", "nat", "-D", "POSTROUTING", "-s", "10.66.0.0/24", "-o", "eth0", "-j", "MASQUERADE"],
        {
          allowFailure: true,
        },
      );
    }
  });

  it("a fromHost forward's route_localnet does not open the host's loopback-only services to the LAN", async () => {
    // New-user trial round 2 (kube-proxy's CVE-2020-8558): with route_localnet=1 a LAN host routing
    // 127.0.0.1 to the lab reached a server bound to 127.0.0.1 only.
    const server = lab.spawn(SERVER("loopback only", 7000, "127.0.0.1"));
    const lanSetup = [
      "sysctl -qw net.ipv4.conf.all.route_localnet=1 net.ipv4.conf.lan0.route_localnet=1",
      "ip route add 127.0.0.1/32 via 203.0.113.2 dev lan0 src 203.0.113.1 table 100",
      "ip rule add pref 10 to 127.0.0.1/32 lookup 100",
      "ip rule add pref 100 lookup local",
      "ip rule del pref 0",
    ];
    const lanUndo =
      "ip rule add pref 0 lookup local; ip rule del pref 10; ip rule del pref 100; ip route flush table 100; " +
      "sysctl -qw net.ipv4.conf.all.route_localnet=0 net.ipv4.conf.lan0.route_localnet=0";
    try {
      await waitListening(server);
      const s = stackOf(
        "fwd-localnet",
        program(`new netns.PortForward("pf", { connection, hostPort: 8094, toAddress: "10.66.0.2", toPort: 80 });`),
      );
      ok(await s.up(), log);
      const localnet = (await lab.exec(["cat", "/proc/sys/net/ipv4/conf/all/route_localnet"])).stdout.trim();
      assert.equal(localnet, "1", "the forward switched route_localnet on");
      await lab.execLan(["sh", "-c", lanSetup.join(" && ")]);
      const reached = await lab.execLan(CLIENT("127.0.0.1", 7000), { allowFailure: true });
      assert.notEqual(reached.stdout.trim(), "loopback only", "the LAN reached the lab's 127.0.0.1:7000");
      // Attacker round 3: from a 127.x source (not a martian once route_localnet is on), UDP got past kube-proxy's `! -s 127.0.0.0/8`.
      const udp = lab.spawn([
        process.execPath,
        "-e",
        `const s = require("dgram").createSocket("udp4"); s.on("message", (m, r) => console.log("GOT " + r.address)); s.bind(7001, "127.0.0.1", () => console.log("listening"));`,
      ]);
      try {
        await waitListening(udp);
        await lab.execLan([
          process.execPath,
          "-e",
          `const s = require("dgram").createSocket("udp4"); s.bind(0, "127.0.0.2", () => s.send("x", 7001, "127.0.0.1", () => setTimeout(() => s.close(), 200)));`,
        ]);
        await new Promise((r) => setTimeout(r, 500));
        assert.doesNotMatch(
          udp.stdout(),
          /GOT/,
          "a UDP packet from 127.0.0.2 on the LAN reached the lab's 127.0.0.1:7001",
        );
      } finally {
        await udp.kill();
      }
      ok(await s.destroy(), log);
    } finally {
      await lab.execLan(["sh", "-c", lanUndo], { allowFailure: true });
      await server.kill();
    }
  });
});
