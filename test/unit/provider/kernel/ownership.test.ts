import { strict as assert } from "node:assert";
import { deleteRuleScript, parseSave, type Rule, type SavedTables } from "../../../../provider/kernel/iptables";
import { markIdOf } from "../../../../provider/kernel/mark";
import {
  OWNER_PREFIX,
  type Owner,
  orphanBridgeOwners,
  ownerComment,
  parseOwners,
  planAdd,
  planRelease,
} from "../../../../provider/kernel/ownership";
import { quote } from "../../../../provider/shell";
import { masquerade, portForward } from "../../fixtures/iptables-save/capture-ownership";
import { fixture } from "../../support";

// Real iptables-save output, one state of the protocol each: see fixtures/iptables-save/README.md.
const saveText = (name: string) => fixture(`iptables-save/${name}.txt`);
const saved = (name: string): SavedTables => parseSave(saveText(name));
const ownersOf = (name: string): Owner[] => [...parseOwners(saveText(name)).values()];

/** The comment of the one owner of `kind` a fixture holds, as that owner's state recorded it. */
function commentOf(name: string, kind: string): { comment: string; id: string } {
  const owner = ownersOf(name).find((o) => o.kind === kind);
  assert.ok(owner, `${name} holds a ${kind} owner`);
  return { comment: ownerComment(kind, owner.id, owner.claims), id: owner.id };
}

describe("kernel/iptables: parseSave", () => {
  it("reads a fresh namespace (no table at all) as empty", () => {
    const none = saved("none");
    assert.deepEqual([...none.tables], []);
    assert.equal(none.rules.size, 0);
  });

  it("lists each table's rule lines and skips comments, chain counters and COMMIT", () => {
    const both = saved("masq-pfwd");
    assert.deepEqual([...both.tables].sort(), ["filter", "nat"]);
    assert.equal(both.rules.get("filter")?.length, 4);
    assert.equal(both.rules.get("nat")?.length, 4);
    for (const line of [...both.rules.values()].flat())
      assert.match(line, /^-A (PREROUTING|OUTPUT|POSTROUTING|FORWARD) /);
    assert.deepEqual(both.policies.get("nat"), {
      PREROUTING: "ACCEPT",
      INPUT: "ACCEPT",
      OUTPUT: "ACCEPT",
      POSTROUTING: "ACCEPT",
    });
  });

  it("keeps a table that exists without rules, and a policy someone set", () => {
    const emptied = saved("emptied-tables");
    assert.deepEqual([...emptied.tables].sort(), ["filter", "nat"]);
    assert.deepEqual(emptied.rules.get("nat"), []);
    assert.equal(saved("foreign-only").policies.get("filter")?.FORWARD, "DROP");
    assert.equal(saved("policy-after-masq-removed").policies.get("filter")?.FORWARD, "DROP");
  });
});

describe("kernel/ownership: parseOwners and ownerComment", () => {
  it("finds each owner once, with its kind, id and claims, in iptables-save output", () => {
    const owners = ownersOf("masq-pfwd");
    assert.deepEqual(owners.map((o) => o.kind).sort(), ["masq", "pfwd"]);
    assert.deepEqual(owners.find((o) => o.kind === "masq")?.claims, { ipfw: "0", tnat: "0", tfilter: "0" });
    assert.deepEqual(owners.find((o) => o.kind === "pfwd")?.claims, {
      ipfw: "0",
      rtlocal: "0",
      tnat: "0",
      tfilter: "0",
    });
    for (const o of owners) assert.match(o.id, /^[0-9a-f]{8}$/);
  });

  it("reads the unquoted form iptables -S prints and a state's comment is given in", () => {
    const owners = parseOwners("-A POSTROUTING -m comment --comment pulumi-netns/bridge/00ff/tnat=1 -j MASQUERADE");
    assert.deepEqual(owners.get("00ff"), { kind: "bridge", id: "00ff", claims: { tnat: "1" } });
  });

  it("takes no other comment for an owner: foreign, another prefix, an id that is not hex", () => {
    assert.equal(parseOwners(saveText("foreign-only")).size, 0);
    assert.equal(parseOwners(`--comment "${OWNER_PREFIX.toUpperCase()}masq/ab/ipfw=0"`).size, 0);
    assert.equal(parseOwners('--comment "other-netns/masq/ab/ipfw=0"').size, 0);
    const tampered = ownersOf("tampered");
    assert.equal(tampered.length, 1, "the rewritten rule keeps its owner's id; NOT-HEX is nobody");
    assert.ok(tampered.every((o) => o.id !== "NOT-HEX"));
  });

  it("one id on several lines is one owner, with the claims of the last line read", () => {
    const [owner] = ownersOf("tampered");
    assert.deepEqual(owner.claims, { ipfw: "1", tnat: "1", tfilter: "1" }, "nat (rewritten) is listed after filter");
  });

  it("a comment made by ownerComment starts with OWNER_PREFIX and parses back to the same owner", () => {
    const comment = ownerComment("pfwd", "0a1b2c3d", { ipfw: "0", rtlocal: "1", tnat: "1" });
    assert.equal(comment, "pulumi-netns/pfwd/0a1b2c3d/ipfw=0,rtlocal=1,tnat=1");
    assert.ok(comment.startsWith(OWNER_PREFIX));
    assert.deepEqual(parseOwners(`--comment "${comment}"`).get("0a1b2c3d"), {
      kind: "pfwd",
      id: "0a1b2c3d",
      claims: { ipfw: "0", rtlocal: "1", tnat: "1" },
    });
  });
});

describe("kernel/ownership: planAdd", () => {
  it("the first owner records the host as it was: sysctls read, tables that did not exist", () => {
    const { id } = commentOf("masq", "masq");
    const plan = planAdd("masq", id, saved("none"), { ipfw: "0" }, masquerade, ["ipfw"]);
    assert.equal(plan.comment, commentOf("masq", "masq").comment, "the comment the provider wrote on the host");
    assert.deepEqual(plan.switchOn, [{ key: "ipfw", was: "0", record: true }]);
  });

  it("a later owner inherits a claim another holds (the original, not the 1 it set) and claims anew what nobody does", () => {
    const { id } = commentOf("masq-pfwd", "pfwd");
    const plan = planAdd("pfwd", id, saved("masq"), { ipfw: "1", rtlocal: "0" }, portForward, ["ipfw", "rtlocal"]);
    assert.equal(plan.comment, commentOf("masq-pfwd", "pfwd").comment);
    assert.deepEqual(plan.switchOn, [{ key: "rtlocal", was: "0", record: true }], "ip_forward is already on");
  });

  it("a record is the original whatever the visible owners say: their rules flushed, or a forged comment", () => {
    // Attacker trial (stop 20) HIGH 1: the first owner's rules flushed, a second owner read ip_forward=1 as the original.
    const flushed = planAdd("masq", "0c", saved("none"), { ipfw: "1" }, masquerade, ["ipfw"], { ipfw: "0" });
    assert.equal(flushed.comment, "pulumi-netns/masq/0c/ipfw=0,tnat=0,tfilter=0");
    assert.deepEqual(flushed.switchOn, []);
    // HIGH 2: switched off by hand while an owner holds it: switched on again, its record left as it is.
    const drifted = planAdd("masq", "0d", saved("masq"), { ipfw: "0" }, masquerade, ["ipfw"], { ipfw: "0" });
    assert.deepEqual(drifted.switchOn, [{ key: "ipfw", was: "0", record: false }]);
    // MED 5a: a rule forging a claim of ipfw=1 while the switch is 0: this owner switches it on from 0, and says so.
    const forged = `-A POSTROUTING -s 10.200.0.0/24 -m comment --comment "${OWNER_PREFIX}masq/deadbeef/ipfw=1" -j RETURN`;
    const plan = planAdd("masq", "0e", parseSave(`*nat\n${forged}\nCOMMIT\n`), { ipfw: "0" }, masquerade, ["ipfw"]);
    assert.match(plan.comment, /\/ipfw=0,/);
    assert.deepEqual(plan.switchOn, [{ key: "ipfw", was: "0", record: true }]);
  });

  it("records a table that existed before as 1", () => {
    const { id } = commentOf("foreign-masq", "masq");
    const plan = planAdd("masq", id, saved("foreign-only"), { ipfw: "0" }, masquerade, ["ipfw"]);
    assert.equal(plan.comment, `${OWNER_PREFIX}masq/${id}/ipfw=0,tnat=0,tfilter=1`);
    assert.equal(plan.comment, commentOf("foreign-masq", "masq").comment);
  });

  it("takes a sysctl it could not read for 0, the kernel's default", () => {
    const plan = planAdd("masq", "0a", saved("none"), {}, masquerade, ["ipfw"]);
    assert.equal(plan.comment, "pulumi-netns/masq/0a/ipfw=0,tnat=0,tfilter=0");
    assert.deepEqual(plan.switchOn, [{ key: "ipfw", was: "0", record: true }]);
  });

  it("with no sysctl to need (a bridge), claims only its tables and switches nothing on", () => {
    const bridgeRule: Rule = { table: "filter", chain: "FORWARD", insert: true, spec: ["-i", "br0", "-j", "ACCEPT"] };
    const plan = planAdd("bridge", "0b", saved("masq"), { ipfw: "1" }, [bridgeRule], []);
    assert.equal(plan.comment, "pulumi-netns/bridge/0b/tfilter=0", "inherited from the masquerade, not read");
    assert.deepEqual(plan.switchOn, []);
  });

  it("inherits what a rewritten comment claims: the host's comments are what it trusts", () => {
    const plan = planAdd("pfwd", "0c", saved("tampered"), { ipfw: "1", rtlocal: "0" }, portForward, ["ipfw"]);
    assert.equal(plan.comment, "pulumi-netns/pfwd/0c/ipfw=1,tnat=1,tfilter=1");
  });
});

describe("kernel/ownership: planRelease", () => {
  it("a non-last owner leaves every sysctl and table another owner claims", () => {
    const { comment, id } = commentOf("masq-pfwd", "masq");
    const pfwd = commentOf("masq-pfwd", "pfwd").id;
    assert.deepEqual(planRelease(saved("pfwd-after-masq-removed"), comment, id), {
      restore: [],
      drop: [],
      kept: { ipfw: [pfwd], tnat: [pfwd], tfilter: [pfwd] },
    });
  });

  it("the last owner restores each sysctl to the recorded original and drops the tables it made", () => {
    const { comment, id } = commentOf("masq-pfwd", "pfwd");
    assert.deepEqual(planRelease(saved("emptied-tables"), comment, id), {
      restore: [
        { key: "ipfw", value: "0" },
        { key: "rtlocal", value: "0" },
      ],
      drop: ["nat", "filter"],
      kept: {},
    });
  });

  it("keeps a table that existed before, and a table holding a foreign rule whatever our claim says", () => {
    const { comment, id } = commentOf("foreign-masq", "masq");
    const remaining = saved("foreign-after-masq-removed");
    assert.deepEqual(planRelease(remaining, comment, id), {
      restore: [{ key: "ipfw", value: "0" }],
      drop: ["nat"],
      kept: {},
    });
    const claimingFilter = ownerComment("masq", id, { ipfw: "0", tnat: "0", tfilter: "0" });
    assert.deepEqual(planRelease(remaining, claimingFilter, id).drop, ["nat"], "filter holds the foreign rules");
  });

  it("a foreign rule is never removed: every iptables call of a removal names our own comment", () => {
    const { comment } = commentOf("foreign-masq", "masq");
    for (const rule of masquerade) {
      const calls = deleteRuleScript("own-fx", rule, comment).split(" iptables ").slice(1);
      assert.equal(calls.length, 2, "the check and the delete");
      for (const call of calls) assert.ok(call.includes(`'--comment' ${quote(comment)}`), call);
    }
  });

  it("keeps a table someone gave a policy since, even though it holds no rule", () => {
    const made = "pulumi-netns/masq/0f/ipfw=0,tnat=0,tfilter=0"; // both tables made by this owner
    assert.deepEqual(planRelease(saved("policy-after-masq-removed"), made, "0f"), {
      restore: [{ key: "ipfw", value: "0" }],
      drop: ["nat"],
      kept: {},
    });
  });

  it("takes our originals from the state's comment, not from a rewritten one on the host", () => {
    const header = saveText("tampered").split("\n")[0];
    const [, comment, id] = /comment (pulumi-netns\/masq\/([0-9a-f]+)\/\S+)\)/.exec(header) ?? [];
    assert.ok(comment, header);
    assert.deepEqual(planRelease(saved("tampered-after-removed"), comment, id), {
      restore: [{ key: "ipfw", value: "0" }],
      drop: [],
      kept: {},
    });
  });

  it("drops a claimed table the host no longer lists (the drop tolerates its absence)", () => {
    const plan = planRelease(saved("none"), "pulumi-netns/masq/0d/ipfw=1,tnat=0,tfilter=1", "0d");
    assert.deepEqual(plan, { restore: [{ key: "ipfw", value: "1" }], drop: ["nat"], kept: {} });
  });

  it("claims nothing for a comment that does not name the owner, and ignores claim keys it does not know", () => {
    const { comment } = commentOf("masq", "masq");
    assert.deepEqual(planRelease(saved("emptied-tables"), comment, "ffffffff"), { restore: [], drop: [], kept: {} });
    assert.deepEqual(planRelease(saved("none"), "pulumi-netns/masq/0e/zz=0", "0e"), {
      restore: [],
      drop: [],
      kept: {},
    });
  });
});

describe("kernel/ownership: a gone bridge's rule", () => {
  const save = [
    "*filter",
    ":FORWARD ACCEPT [0:0]",
    '-A FORWARD -i v-net-0 -o v-net-0 -m comment --comment "pulumi-netns/bridge/0a0a0a0a/tfilter=0" -j ACCEPT',
    '-A FORWARD -i v-net-0 -o v-net-0 -m comment --comment "pulumi-netns/bridge/1b1b1b1b/tfilter=0" -j ACCEPT',
    '-A FORWARD -i v-net-01 -o v-net-01 -m comment --comment "pulumi-netns/bridge/2c2c2c2c/tfilter=0" -j ACCEPT',
    '-A FORWARD -i v-net-0 -o v-net-0 -m comment --comment "someone else" -j ACCEPT',
    '-A FORWARD -s 192.168.15.0/24 -i v-net-0 -o v-net-0 -m comment --comment "pulumi-netns/masq/3d3d3d3d/tfilter=0" -j ACCEPT',
    "COMMIT",
  ].join("\n");
  it("names the other Bridge rule sets of that bridge name only: not its own, another name, another kind or a foreign rule", () => {
    assert.deepEqual(orphanBridgeOwners(parseSave(save), "v-net-0", ["1b1b1b1b"]), [
      "pulumi-netns/bridge/0a0a0a0a/tfilter=0",
    ]);
  });

  it("an adopted link's former owner (its mark's id) lives on: its rule is no orphan", () => {
    assert.deepEqual(orphanBridgeOwners(parseSave(save), "v-net-0", ["ffffffff", "0a0a0a0a"]), [
      "pulumi-netns/bridge/1b1b1b1b/tfilter=0",
    ]);
  });
});

describe("kernel/mark: markIdOf", () => {
  it("reads the id of a link's mark of that kind; none for another kind, no mark or a foreign alias", () => {
    assert.equal(markIdOf("bridge", "pulumi-netns:bridge/0a1b2c3d"), "0a1b2c3d");
    assert.equal(markIdOf("bridge", "pulumi-netns:veth/0a1b2c3d"), undefined);
    assert.equal(markIdOf("bridge", undefined), undefined);
    assert.equal(markIdOf("bridge", "pulumi-netns:bridge/../x"), undefined);
    assert.equal(markIdOf("bridge", "uplink to the lab"), undefined);
  });
});
