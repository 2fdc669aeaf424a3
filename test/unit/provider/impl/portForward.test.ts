import { strict as assert } from "node:assert";
import { formerRulesOf, rulesOf } from "../../../../provider/impl/portForward";
import { describeRule } from "../../../../provider/kernel/iptables";
import { UNKNOWN } from "../../../../provider/validate";
import { checkedInputs, defaultsTable, diffTable, implOf, OUTPUT_EXTRAS } from "./support";

const REPLACED_BY = [
  ["hostPort", 8081],
  ["toAddress", "192.168.15.3"],
  ["toPort", 81],
  ["protocol", "udp"],
  ["inInterface", "eth1"],
  ["namespace", "red"],
  ["fromHost", false],
] as const;

describe("impl/portForward", () => {
  defaultsTable("portForward", [
    {
      what: "toPort = hostPort, tcp, fromHost by default",
      args: { hostPort: 8080, toAddress: "10.0.0.2" },
      expect: { toPort: 8080, protocol: "tcp", fromHost: true },
      absent: ["inInterface", "namespace"],
    },
    {
      what: "given values are kept",
      args: { hostPort: 8080, toAddress: "10.0.0.2", toPort: 80, protocol: "udp", fromHost: false },
      expect: { toPort: 80, protocol: "udp", fromHost: false },
    },
    {
      what: "toPort follows an unknown hostPort",
      args: { hostPort: UNKNOWN, toAddress: "10.0.0.2" },
      expect: { toPort: UNKNOWN },
    },
  ]);

  diffTable("portForward", [
    ...REPLACED_BY.map(([field, value]) => ({ what: `another ${field}`, news: { [field]: value }, expect: [field] })),
    { what: "the host port unknown", news: { hostPort: UNKNOWN }, expect: ["hostPort"] },
    {
      what: "another host port and protocol",
      news: { hostPort: 53, protocol: "udp" },
      expect: ["hostPort", "protocol"],
    },
    { what: "refresh found a rule missing", olds: { missingRules: ["-t nat -A PREROUTING ..."] }, expect: "update" },
    { what: "refresh found a sysctl off", olds: { sysctlsOn: false }, expect: "update" },
    {
      what: "no drift flags in state (an older release's)",
      olds: { missingRules: undefined, sysctlsOn: undefined },
      expect: "none",
    },
  ]);
});

describe("impl/portForward: the replies' accept (attacker trial D2: a forged namespace source from the LAN)", () => {
  it("matches replies only (conntrack), where older releases accepted any packet from the namespace's port", () => {
    const inputs = { hostPort: 8080, toAddress: "10.0.0.2", toPort: 80, protocol: "tcp", fromHost: true } as never;
    const replies = rulesOf(inputs)[2].spec;
    assert.deepEqual(replies.slice(-5), ["conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"]);
    assert.deepEqual(formerRulesOf(inputs)[0].spec, [
      "-s",
      "10.0.0.2/32",
      "-p",
      "tcp",
      "-m",
      "tcp",
      "--sport",
      "80",
      "-j",
      "ACCEPT",
    ]);
  });

  it("state holding an older release's rules is drift: the next up replaces them in place; this release's is none", async () => {
    const inputs = await checkedInputs("portForward");
    const state = (rules: string[]) => ({ ...inputs, ...OUTPUT_EXTRAS.portForward, knownHostKeys: {}, rules });
    const now = rulesOf(inputs as never).map((r) => describeRule(r, "c"));
    const before = [...now.slice(0, 2), describeRule(formerRulesOf(inputs as never)[0], "c"), ...now.slice(3)];
    assert.equal((await implOf("portForward").diff("id", state(before), inputs)).changes, true);
    assert.equal((await implOf("portForward").diff("id", state(now), inputs)).changes, false);
  });
});
