import { strict as assert } from "node:assert";
import type { LabHost, LabProcess, PulumiStack } from "../../provider/testing";
import { rewriteProgram, testingKit, writeProgram } from "../support/harness";
import { CLIENT, SERVER, WHO_SERVER, waitListening } from "../support/tcp";
import { program } from "./programs";
import { changes, labConfig, ok } from "./support";

/**
 * IPv6 NAT through the real engine on a lab host (issue #13 item 5): a
 * namespace on a bridge with an IPv6 subnet, a MasqueradeRule of that subnet
 * out of eth0 and a PortForward to the namespace's IPv6 address, all made with
 * ip6tables; net.ipv6.conf.all.forwarding switched on while needed and put
 * back at destroy. Addresses: fd00:64::/64 behind the bridge, fd00:203::/64 on
 * the lab's LAN (eth0 <-> the LAN peer), both ULA; IPv4 198.51.100.0/26 only
 * as a Bridge forwardFrom (a rule set of both families).
 */

const BODY = `
const ns = new netns.Namespace("v6n", { connection, name: "v6n" });
const br = new netns.Bridge("v6n-br", { connection, name: "v6n-br", addresses: ["fd00:64::1/64"] });
// A bridge without IPv6 at first: an update gives it an IPv6 forwardFrom, its rule set's first IPv6 rule.
new netns.Bridge("v6n-br2", { connection, name: "v6n-br2", forwardFrom: FORWARD_FROM });
const cable = new netns.VethPair("v6n-cable", {
  connection,
  a: { name: "v6n-a", namespace: ns.name, addresses: ["fd00:64::2/64"] },
  b: { name: "v6n-b", bridge: br.name },
});
new netns.Route("v6n-default", { connection, namespace: ns.name, destination: "default6", via: "fd00:64::1" }, { dependsOn: [cable] });
const masq = new netns.MasqueradeRule("v6n-masq", { connection, source: "fd00:64::/64", outInterface: "eth0", inInterface: "v6n-br" }, { dependsOn: [cable] });
const fwd = new netns.PortForward("v6n-fwd", { connection, hostPort: 8086, toAddress: "fd00:64::2", toPort: 8000 }, { dependsOn: [cable] });
export const masqComment = masq.comment;
export const fwdComment = fwd.comment;
export const masqRules = masq.rules;
`;

/** The Bridge's forwardFrom: IPv4 only at first; an update adds an IPv6 network (its rule set gains a family). */
const body = (forwardFrom: string[]) => `const FORWARD_FROM = ${JSON.stringify(forwardFrom)};\n${BODY}`;

const FORWARDING = ["cat", "/proc/sys/net/ipv6/conf/all/forwarding"];

describe("IPv6 MasqueradeRule and PortForward (ip6tables) on a lab host", function () {
  this.timeout(600_000);
  let lab: LabHost;
  let pristine: string;
  let forwardingBefore: string;
  let ip6SaveBefore: string;
  let stack: PulumiStack | undefined;
  const servers: LabProcess[] = [];
  const log: string[] = [];
  let outputs: Record<string, unknown> = {};
  let dir = "";

  const read = async (cmd: string[], namespace?: string) => (await lab.exec(cmd, { namespace })).stdout;
  const ip6Rules = async (table: string, chain: string) =>
    (await read(["ip6tables", "-w", "-t", table, "-S", chain])).split("\n").filter((l) => l.startsWith("-A "));
  /** The ip6tables-save lines without its timestamps (what the lab had before, to compare after). */
  const ip6Save = async () =>
    (await read(["ip6tables-save"]))
      .split("\n")
      .filter((l) => !l.startsWith("#"))
      .join("\n");

  before(async () => {
    lab = await testingKit().startLabHost({ name: `it-v6n-${process.pid}` });
    pristine = await testingKit().fingerprint(lab);
    forwardingBefore = (await read(FORWARDING)).trim();
    ip6SaveBefore = await ip6Save();
    // The LAN side's IPv6, by hand (the lab gives it none); removed again before the fingerprint after destroy.
    await lab.exec(["ip", "-6", "addr", "add", "fd00:203::2/64", "dev", "eth0", "nodad"]);
    await lab.execLan(["ip", "-6", "addr", "add", "fd00:203::1/64", "dev", "lan0", "nodad"]);
  });

  after(async () => {
    for (const s of servers) await s.kill().catch(() => undefined);
    if (stack) await stack.destroy().catch(() => undefined);
    if (lab) await lab.stop();
  });

  it("up makes the network: IPv6 addresses on the bridge and the namespace, its IPv6 default route", async () => {
    dir = writeProgram("ipv6-nat", program(body(["198.51.100.0/26"])));
    stack = new (testingKit().PulumiStack)({ programDir: dir, config: labConfig(lab), log: (l) => log.push(l) });
    const up = await stack.up();
    ok(up, log);
    outputs = up.outputs;
  });

  it("the rules are in ip6tables with the owner comment, none of them in iptables", async () => {
    const masqComment = String(outputs.masqComment);
    const fwdComment = String(outputs.fwdComment);
    assert.match(masqComment, /^pulumi-netns\/masq\/[0-9a-f]+\/ip6fw=0,t6nat=0,t6filter=0$/);
    assert.match(fwdComment, /^pulumi-netns\/pfwd\/[0-9a-f]+\/ip6fw=0,t6nat=0,t6filter=0$/);
    const check = (table: string, chain: string, spec: string[], comment: string) =>
      lab.exec(
        [
          "ip6tables",
          "-w",
          "-t",
          table,
          "-C",
          chain,
          ...spec.slice(0, -2),
          "-m",
          "comment",
          "--comment",
          comment,
          ...spec.slice(-2),
        ],
        {
          allowFailure: true,
        },
      );
    const masq = await check(
      "nat",
      "POSTROUTING",
      ["-s", "fd00:64::/64", "-o", "eth0", "-j", "MASQUERADE"],
      masqComment,
    );
    assert.equal(masq.code, 0, masq.stderr);
    const accept = await check(
      "filter",
      "FORWARD",
      ["-i", "v6n-br", "-s", "fd00:64::/64", "-j", "ACCEPT"],
      masqComment,
    );
    assert.equal(accept.code, 0, accept.stderr);
    const dnat = (await ip6Rules("nat", "PREROUTING")).filter((l) => l.includes(fwdComment));
    assert.equal(dnat.length, 1, dnat.join("\n"));
    assert.match(dnat[0], /--dport 8086 .*-j DNAT --to-destination \[fd00:64::2\]:8000$/);
    assert.ok((await ip6Rules("nat", "OUTPUT")).some((l) => l.includes(fwdComment) && l.includes("! -d ::1/128")));
    const v4 = await read(["iptables-save"]);
    assert.ok(!v4.includes("pulumi-netns/masq") && !v4.includes("pulumi-netns/pfwd"), v4);
    // A Bridge with an IPv6 address accepts its bridged IPv6 traffic too; one without IPv6 has no rule in ip6tables.
    assert.ok((await ip6Rules("filter", "FORWARD")).some((l) => l.includes("-i v6n-br -o v6n-br")));
    assert.ok(v4.includes("-s 198.51.100.0/26 -o v6n-br2"), v4);
    assert.ok(!(await read(["ip6tables-save"])).includes("v6n-br2"));
    assert.equal((await read(FORWARDING)).trim(), "1");
  });

  it("the namespace reaches the LAN peer over IPv6, seen there as the host's address (masquerade)", async () => {
    const who = lab.spawn(WHO_SERVER(9000), { lan: true });
    servers.push(who);
    await waitListening(who);
    const r = await lab.exec(CLIENT("fd00:203::1", 9000), { namespace: "v6n", allowFailure: true });
    assert.equal(r.stdout, "fd00:203::2\n", r.stderr);
  });

  it("a client on the LAN peer reaches the namespace's server through the host's IPv6 address", async () => {
    const server = lab.spawn(SERVER("hello from v6n", 8000, "::"), { namespace: "v6n" });
    servers.push(server);
    await waitListening(server);
    const r = await lab.execLan(CLIENT("fd00:203::2", 8086), { allowFailure: true });
    assert.equal(r.stdout, "hello from v6n\n", r.stderr);
  });

  it("fromHost: the host's own connection to its global IPv6 address is forwarded; to [::1] it is not (refused, not hung)", async () => {
    const global = await lab.exec(CLIENT("fd00:203::2", 8086), { allowFailure: true });
    assert.equal(global.stdout, "hello from v6n\n", global.stderr);
    const loopback = await lab.exec(CLIENT("::1", 8086), { allowFailure: true });
    assert.notEqual(loopback.code, 0, loopback.stdout);
    assert.match(loopback.stderr, /ECONNREFUSED/);
  });

  it("an IPv6 forwardFrom added to the Bridge: its rule set now holds both families, its claims name the IPv6 table", async () => {
    assert.ok(stack);
    rewriteProgram(dir, program(body(["198.51.100.0/26", "fd00:198::/64"])));
    ok(await stack.up(), log);
    const v6 = (await ip6Rules("filter", "FORWARD")).filter((l) => l.includes("-o v6n-br2 "));
    assert.equal(v6.length, 2, v6.join("\n")); // the bridge's own accept and the forwardFrom one
    assert.ok(
      v6.some((l) => l.includes("-s fd00:198::/64 -o v6n-br2")),
      v6.join("\n"),
    );
    for (const l of v6) assert.match(l, /pulumi-netns\/bridge\/[0-9a-f]+\/tfilter=\d,t6filter=0/);
    const v4 = (await read(["iptables-save"])).split("\n").filter((l) => l.includes("-o v6n-br2 "));
    assert.equal(v4.length, 2, v4.join("\n"));
    for (const l of v4) assert.match(l, /t6filter=0/);
    assert.ok(!v4.join("\n").includes("fd00:"), v4.join("\n"));
  });

  it("state, ip6tables -S and a second up agree: refresh finds no drift, up changes nothing", async () => {
    assert.ok(stack);
    const refreshed = await stack.refresh();
    ok(refreshed, log);
    assert.equal(refreshed.counts.update + refreshed.counts.delete, 0, JSON.stringify(refreshed.steps));
    const again = await stack.up();
    ok(again, log);
    assert.equal(changes(again), 0, JSON.stringify(again.steps));
  });

  it("rules flushed from ip6tables and forwarding off are drift: refresh sees them, up puts them back", async () => {
    assert.ok(stack);
    await lab.exec(["ip6tables", "-w", "-t", "nat", "-F", "POSTROUTING"]);
    await lab.exec(["sh", "-c", "echo 0 > /proc/sys/net/ipv6/conf/all/forwarding"]);
    const refreshed = await stack.refresh();
    ok(refreshed, log);
    const up = await stack.up();
    ok(up, log);
    assert.ok(up.counts.update >= 2, JSON.stringify(up.steps));
    const post = await ip6Rules("nat", "POSTROUTING");
    assert.ok(
      post.some((l) => l.includes(String(outputs.masqComment))),
      post.join("\n"),
    );
    assert.ok(
      post.some((l) => l.includes(String(outputs.fwdComment))),
      post.join("\n"),
    );
    assert.equal((await read(FORWARDING)).trim(), "1");
    const r = await lab.exec(CLIENT("fd00:203::1", 9000), { namespace: "v6n", allowFailure: true });
    assert.equal(r.stdout, "fd00:203::2\n", r.stderr);
  });

  it("destroy puts all.forwarding back, leaves no IPv6 table, and the lab as it was", async () => {
    assert.ok(stack);
    ok(await stack.destroy(), log);
    assert.equal((await read(FORWARDING)).trim(), forwardingBefore);
    assert.equal(await ip6Save(), ip6SaveBefore);
    await lab.exec(["ip", "-6", "addr", "del", "fd00:203::2/64", "dev", "eth0"]);
    await lab.execLan(["ip", "-6", "addr", "del", "fd00:203::1/64", "dev", "lan0"]);
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });
});
