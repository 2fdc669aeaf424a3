import { strict as assert } from "node:assert";
import { IP6_SAVE_MARK, parseSave, type Rule, saveScript } from "../../../../provider/kernel/iptables";
import { at } from "../../../../provider/kernel/namespace";
import {
  narrowClaims,
  ownerComment,
  parseOwners,
  planAdd,
  planRelease,
  planReleaseOf,
  widenClaims,
  withoutOwner,
} from "../../../../provider/kernel/ownership";
import { parseSysctls, readSysctlsScript, writeSysctlStep } from "../../../../provider/kernel/sysctl";
import { masquerade6, portForward6 } from "../../fixtures/iptables-save/capture-ownership";
import { fixture } from "../../support";

// The package's dump of both families (saveScript with IPv6), captured: see fixtures/iptables-save/README.md.
const text = (name: string) => fixture(`iptables-save/${name}.txt`);

describe("kernel/ownership: IPv6 rules and ip6fw, as for IPv4", () => {
  it("an IPv4-only rule set reads iptables-save alone; with IPv6 rules, ip6tables-save after the mark", () => {
    assert.equal(saveScript("ns"), "ip netns exec ns iptables-save");
    assert.equal(
      saveScript("ns", true),
      `ip netns exec ns iptables-save && echo '${IP6_SAVE_MARK}' && ip netns exec ns ip6tables-save`,
    );
  });

  it("parses the IPv6 dump's tables as 6nat/6filter, apart from the IPv4 ones", () => {
    const none = parseSave(text("dual-none"));
    assert.equal(none.tables.size, 0);
    const saved = parseSave(text("dual-masq-pfwd6"));
    assert.deepEqual([...saved.tables].sort(), ["6filter", "6nat", "filter", "nat"]);
    assert.equal(saved.rules.get("nat")?.length, 1);
    assert.equal(saved.rules.get("6nat")?.length, 4);
    assert.ok(saved.rules.get("6nat")?.some((l) => l.includes("--to-destination [fd00:20::2]:80")));
  });

  it("a second IPv6 owner inherits ip6fw and the IPv6 table claims of the first", () => {
    const before = parseSave(text("dual-masq"));
    const plan = planAdd("pfwd", "cd", before, { ip6fw: "1" }, portForward6, ["ip6fw"]);
    assert.equal(plan.comment, "pulumi-netns/pfwd/cd/ip6fw=0,t6nat=0,t6filter=0");
    assert.deepEqual(plan.switchOn, []);
    const recorded = [...parseOwners(text("dual-masq-pfwd6")).values()].find((o) => o.kind === "pfwd");
    assert.deepEqual(recorded?.claims, { ip6fw: "0", t6nat: "0", t6filter: "0" });
  });

  it("the IPv6 MasqueradeRule leaving first keeps ip6fw and the IPv6 tables for the PortForward", () => {
    const owner = [...parseOwners(text("dual-masq-pfwd6")).values()].find(
      (o) => o.kind === "masq" && o.claims.ip6fw !== undefined,
    );
    assert.ok(owner);
    const comment = ownerComment("masq", owner.id, owner.claims);
    const plan = planRelease(parseSave(text("dual-pfwd6-after-masq6-removed")), comment, owner.id);
    assert.deepEqual(plan.restore, []);
    assert.deepEqual(plan.drop, []);
    assert.deepEqual(Object.keys(plan.kept).sort(), ["ip6fw", "t6filter", "t6nat"]);
  });

  it("the last IPv6 owner puts ip6fw back and drops the IPv6 tables it made, never the IPv4 ones", () => {
    const saved = parseSave(text("dual-masq"));
    const owner = [...parseOwners(text("dual-masq")).values()].find((o) => o.claims.ip6fw !== undefined);
    assert.ok(owner);
    const comment = ownerComment("masq", owner.id, owner.claims);
    const plan = planRelease(withoutOwner(saved, comment), comment, owner.id);
    assert.deepEqual(plan.restore, [{ key: "ip6fw", value: "0" }]);
    assert.deepEqual(plan.drop.sort(), ["6filter", "6nat"]);
    assert.equal(masquerade6.length, 3);
  });

  it("reads and writes net.ipv6.conf.all.forwarding as ip6fw", () => {
    assert.match(readSysctlsScript(at("ns"), ["ip6fw"]), /ip6fw .*\/proc\/sys\/net\/ipv6\/conf\/all\/forwarding/);
    assert.deepEqual(parseSysctls("ipfw=0\nip6fw=1\n"), { ipfw: "0", ip6fw: "1" });
    assert.match(
      writeSysctlStep(at(undefined), "ip6fw", "0"),
      /echo 0 > \/proc\/sys\/net\/ipv6\/conf\/all\/forwarding/,
    );
  });

  it("an update whose rules reach an IPv6 table first widens the owner's claims as planAdd would", () => {
    const bridge = "pulumi-netns/bridge/ab/tfilter=1";
    const v4: Rule = { table: "filter", chain: "FORWARD", insert: true, spec: ["-i", "b", "-o", "b", "-j", "ACCEPT"] };
    const v6: Rule = { ...v4, family: 6 };
    // The IPv6 MasqueradeRule of dual-masq holds t6filter=0: inherited, not the 1 the table now is.
    assert.equal(widenClaims(bridge, "ab", parseSave(text("dual-masq")), [v4, v6]), `${bridge},t6filter=0`);
    // No IPv6 table yet and nobody claiming one: it did not exist.
    assert.equal(widenClaims(bridge, "ab", parseSave(text("dual-none")), [v4, v6]), `${bridge},t6filter=0`);
    // Nothing new reached: the same comment, so an IPv4-only update rewrites nothing.
    assert.equal(widenClaims(bridge, "ab", parseSave(text("dual-masq")), [v4]), bridge);
  });

  it("an update whose rules no longer reach an IPv6 table narrows the claims, and releases that table as a delete would", () => {
    const bridge = "pulumi-netns/bridge/ab/tfilter=1,t6filter=0";
    const v4: Rule = { table: "filter", chain: "FORWARD", insert: true, spec: ["-i", "b", "-o", "b", "-j", "ACCEPT"] };
    const v6: Rule = { ...v4, family: 6 };
    assert.deepEqual(narrowClaims(bridge, "ab", [v4]), {
      comment: "pulumi-netns/bridge/ab/tfilter=1",
      released: { t6filter: "0" },
    });
    // Both families still reached, or another owner's comment: nothing changes.
    assert.deepEqual(narrowClaims(bridge, "ab", [v4, v6]), { comment: bridge, released: {} });
    assert.deepEqual(narrowClaims(bridge, "zz", [v4]), { comment: bridge, released: {} });
    // Released: dropped when nobody else claims it and it holds nothing; kept while another owner claims it.
    assert.deepEqual(planReleaseOf(parseSave(text("dual-none")), { t6filter: "0" }, "ab"), {
      restore: [],
      drop: ["6filter"],
      kept: {},
    });
    const held = planReleaseOf(parseSave(text("dual-masq")), { t6filter: "0" }, "ab");
    assert.deepEqual(held.drop, []);
    assert.deepEqual(Object.keys(held.kept), ["t6filter"]);
  });
});
