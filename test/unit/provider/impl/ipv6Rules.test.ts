import { strict as assert } from "node:assert";
import { rulesOf as bridgeRules } from "../../../../provider/impl/bridge";
import { type MasqueradeRuleInputs, rulesOf as masqueradeRules } from "../../../../provider/impl/masqueradeRule";
import { type PortForwardInputs, rulesOf as portForwardRules } from "../../../../provider/impl/portForward";
import { describeRule, hasIpv6, type Rule, tableKey } from "../../../../provider/kernel/iptables";
import { isolationRules } from "../../../../provider/kernel/isolation";
import { planAdd } from "../../../../provider/kernel/ownership";
import { checkedInputs } from "./support";

const masq = (i: Partial<MasqueradeRuleInputs>) =>
  masqueradeRules({ enableIpForward: true, ...i } as MasqueradeRuleInputs);
const pfwd = (i: Partial<PortForwardInputs>) =>
  portForwardRules({ hostPort: 8080, toPort: 80, protocol: "tcp", fromHost: true, ...i } as PortForwardInputs);
const families = (rules: Rule[]) => rules.map((r) => r.family ?? 4);

describe("impl: IPv6 rules go to ip6tables, IPv4 ones stay as they were", () => {
  it("an IPv4-only user's rules are exactly today's: no family key, no IPv6 table planned or claimed", () => {
    const v4 = [
      ...masq({ source: "10.20.0.0/24", excludeOutInterface: "eth0" }),
      ...pfwd({ toAddress: "10.20.0.2" }),
      ...bridgeRules({ name: "v-net-0", forwardFrom: ["10.244.1.0/24"], addresses: ["10.20.0.1/24"] }, false),
      ...isolationRules("br-a", ["10.30.0.0/24"], ["10.20.0.1/24"]),
    ];
    for (const r of v4) assert.ok(!("family" in r), JSON.stringify(r));
    assert.equal(hasIpv6(v4), false);
    // The rules as state stores them: no "ip6tables" prefix, the same text as before IPv6 came.
    assert.deepEqual(
      masq({ source: "10.20.0.0/24" }).map((r) => describeRule(r, "c")),
      [
        "'-t' nat '-A' POSTROUTING '-s' 10.20.0.0/24 '-m' comment '--comment' c '-j' MASQUERADE",
        "'-t' filter '-I' FORWARD '-s' 10.20.0.0/24 '-m' comment '--comment' c '-j' ACCEPT",
        "'-t' filter '-I' FORWARD '-d' 10.20.0.0/24 '-m' conntrack '--ctstate' 'RELATED,ESTABLISHED' '-m' comment '--comment' c '-j' ACCEPT",
      ],
    );
    const saved = { tables: new Set<string>(), rules: new Map(), policies: new Map() };
    const { comment } = planAdd("masq", "ab", saved, {}, v4, ["ipfw"]);
    assert.equal(comment, "pulumi-netns/masq/ab/ipfw=0,tnat=0,tfilter=0,tmangle=0");
  });

  it("MasqueradeRule of an IPv6 source: the same three rules, each made with ip6tables", () => {
    const rules = masq({ source: "fd00:10::/64", excludeOutInterface: "eth0", inInterface: "v-net-0" });
    assert.deepEqual(families(rules), [6, 6, 6]);
    assert.deepEqual(rules[0].spec, ["-s", "fd00:10::/64", "!", "-o", "eth0", "-j", "MASQUERADE"]);
    assert.equal(
      describeRule(rules[0], "c"),
      "ip6tables '-t' nat '-A' POSTROUTING '-s' fd00:10::/64 '!' '-o' eth0 '-m' comment '--comment' c '-j' MASQUERADE",
    );
  });

  it("PortForward to an IPv6 address: DNAT to [ADDR]:PORT, /128 accepts, and OUTPUT leaves ::1 alone", () => {
    const rules = pfwd({ toAddress: "fd00:10::2" });
    assert.deepEqual(families(rules), [6, 6, 6, 6, 6]);
    const [pre, accept, replies, output, postrouting] = rules;
    assert.deepEqual(pre.spec.slice(-4), ["-j", "DNAT", "--to-destination", "[fd00:10::2]:80"]);
    assert.deepEqual(accept.spec.slice(0, 2), ["-d", "fd00:10::2/128"]);
    assert.deepEqual(replies.spec.slice(0, 2), ["-s", "fd00:10::2/128"]);
    assert.deepEqual(output.spec.slice(0, 6), ["-p", "tcp", "!", "-d", "::1/128", "-m"]);
    assert.equal(postrouting.chain, "POSTROUTING");
    assert.equal(pfwd({ toAddress: "fd00:10::2", fromHost: false }).length, 3);
  });

  it("a Bridge with IPv4 and IPv6 forwardFrom mixes families in one rule set, claiming each family's table", () => {
    const rules = bridgeRules({ name: "v-net-0", forwardFrom: ["10.244.1.0/24", "fd00:244:1::/64"] }, false);
    assert.deepEqual(families(rules), [4, 6, 4, 6]);
    assert.deepEqual(rules.map(tableKey), ["filter", "6filter", "filter", "6filter"]);
    const saved = { tables: new Set(["filter"]), rules: new Map(), policies: new Map() };
    assert.equal(planAdd("bridge", "ab", saved, {}, rules, []).comment, "pulumi-netns/bridge/ab/tfilter=1,t6filter=0");
  });

  it("NetworkIsolation with IPv6 adds the same rules to ip6tables, each family's allowFrom in its own", () => {
    const rules = isolationRules("br-a", ["10.30.0.0/24", "fd00:30::/64"], ["10.20.0.1/24"]);
    assert.deepEqual(families(rules), [4, 4, 4, 6, 6, 6]);
    assert.ok(rules[0].spec.includes("10.30.0.0-10.30.0.255"));
    assert.ok(!rules[0].spec.join(" ").includes("fd00"));
    assert.ok(rules[3].spec.includes("fd00:30::-fd00:30::ffff:ffff:ffff:ffff"));
    assert.ok(!rules[3].spec.join(" ").includes("10.30"));
    // An IPv6 bridge address alone is enough.
    assert.deepEqual(families(isolationRules("br-a", [], ["10.20.0.1/24", "fd00:20::1/64"])), [4, 4, 4, 6, 6, 6]);
  });
});

describe("impl: IPv6 fields at check", () => {
  it("takes IPv6 networks and addresses in the kernel's own text", async () => {
    const m = await checkedInputs("masqueradeRule", { source: "fd00:10::/64", excludeDestination: "fd00::/16" });
    assert.equal(m.source, "fd00:10::/64");
    await checkedInputs("portForward", { hostPort: 8080, toAddress: "fd00:10::2" });
    await checkedInputs("bridge", { name: "v-net-0", forwardFrom: ["10.244.1.0/24", "fd00:244:1::/64"] });
  });

  it("refuses other spellings of an IPv6 address, naming the canonical text", async () => {
    const { implOf } = await import("./support");
    const r = await implOf("masqueradeRule").check({}, { connection: {}, source: "FD00:10:0:0::/64" });
    const reason = r.failures?.find((f) => f.property === "source")?.reason ?? "";
    assert.match(reason, /source: "FD00:10:0:0::\/64" .*write "fd00:10::\/64"/);
  });

  it("refuses an excludeDestination of the other family than source, naming both fields", async () => {
    const { implOf } = await import("./support");
    for (const [source, excludeDestination] of [
      ["10.20.0.0/24", "fd00::/16"],
      ["fd00:10::/64", "10.0.0.0/8"],
    ]) {
      const r = await implOf("masqueradeRule").check({}, { connection: {}, source, excludeDestination });
      const reason = r.failures?.find((f) => f.property === "excludeDestination")?.reason ?? "";
      assert.match(reason, /excludeDestination: .* but source .*: use a network of the source's family/, reason);
      assert.ok(reason.includes(source) && reason.includes(excludeDestination), reason);
    }
  });
});

describe("impl/portForward: IPv6 targets it cannot reach", () => {
  for (const [toAddress, why] of [
    ["::1", /IPv6 loopback, which the kernel never forwards to/],
    ["fe80::1", /link-local, which DNAT cannot reach/],
  ] as const)
    it(`refuses toAddress ${toAddress} at check, saying why`, async () => {
      const { implOf } = await import("./support");
      const r = await implOf("portForward").check({}, { connection: {}, hostPort: 8080, toAddress });
      const reason = r.failures?.find((f) => f.property === "toAddress")?.reason ?? "";
      assert.match(reason, why, reason);
    });
});
