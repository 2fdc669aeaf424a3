import { strict as assert } from "node:assert";
import { parseSave, removeRuleCommand } from "../../../../provider/kernel/iptables";
import { type Owner, ownerComment, parseOwners } from "../../../../provider/kernel/ownership";
import { fixture } from "../../support";

const save = (name: string) => fixture(`iptables-save/${name}.txt`);
const ACCEPT_ALL = { INPUT: "ACCEPT", FORWARD: "ACCEPT", OUTPUT: "ACCEPT" };
const NAT_ACCEPT = { PREROUTING: "ACCEPT", INPUT: "ACCEPT", OUTPUT: "ACCEPT", POSTROUTING: "ACCEPT" };

/** (fixture, tables, rule lines per table, policies per table). */
const SAVES: Array<[string, string[], Record<string, number>, Record<string, Record<string, string>>]> = [
  ["unit-empty", [], {}, {}],
  ["unit-masquerade", ["filter", "nat"], { filter: 2, nat: 1 }, { filter: ACCEPT_ALL, nat: NAT_ACCEPT }],
  ["unit-masquerade-and-forward", ["filter", "nat"], { filter: 4, nat: 4 }, { filter: ACCEPT_ALL, nat: NAT_ACCEPT }],
  [
    "unit-foreign-rules-drop-policy",
    ["mangle", "filter", "nat"],
    { mangle: 1, filter: 6, nat: 4 },
    {
      mangle: { PREROUTING: "ACCEPT", INPUT: "ACCEPT", FORWARD: "ACCEPT", OUTPUT: "ACCEPT", POSTROUTING: "ACCEPT" },
      // The user chain's "-" is no policy.
      filter: { ...ACCEPT_ALL, FORWARD: "DROP" },
      nat: NAT_ACCEPT,
    },
  ],
];

describe("kernel/iptables: parseSave", () => {
  for (const [name, tables, ruleCounts, policies] of SAVES)
    it(`reads fixtures/iptables-save/${name}.txt: ${tables.length} tables, their rules and policies`, () => {
      const saved = parseSave(save(name));
      assert.deepEqual([...saved.tables], tables);
      assert.deepEqual(Object.fromEntries([...saved.rules].map(([t, r]) => [t, r.length])), ruleCounts);
      assert.deepEqual(Object.fromEntries(saved.policies), policies);
      for (const rules of saved.rules.values()) for (const rule of rules) assert.match(rule, /^-A /);
    });

  it("keeps rule lines as printed, in order", () => {
    assert.deepEqual(parseSave(save("unit-masquerade")).rules.get("nat"), [
      '-A POSTROUTING -s 10.99.0.0/24 ! -o ut-br0 -m comment --comment "pulumi-netns/masq/0a1b2c3d/ipfw=0,tnat=0,tfilter=0" -j MASQUERADE',
    ]);
  });

  it("ignores rule lines before any table header, comments and COMMIT", () => {
    const saved = parseSave("-A FORWARD -j ACCEPT\n# comment\nCOMMIT\n*raw\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n");
    assert.deepEqual([...saved.tables], ["raw"]);
    assert.deepEqual(saved.rules.get("raw"), []);
    assert.deepEqual(saved.policies.get("raw"), { OUTPUT: "ACCEPT" });
  });
});

const MASQ: Owner = { kind: "masq", id: "0a1b2c3d", claims: { ipfw: "0", tnat: "0", tfilter: "0" } };
const PFWD: Owner = { kind: "pfwd", id: "4e5f6a7b", claims: { ipfw: "0", rtlocal: "0", tnat: "1", tfilter: "1" } };
const rulesOf = (name: string) => [...parseSave(save(name)).rules.values()].flat().join("\n");

/** (text, owners found), on the captured rule lines and on the forms the code passes itself. */
const OWNERS: Array<[string, string, Owner[]]> = [
  ["no rules", rulesOf("unit-empty"), []],
  ["the MasqueradeRule's three rules", rulesOf("unit-masquerade"), [MASQ]],
  ["both owners' eight rules (FORWARD inserts first)", rulesOf("unit-masquerade-and-forward"), [PFWD, MASQ]],
  ["the package's rules next to a user's own commented rule", rulesOf("unit-foreign-rules-drop-policy"), [PFWD, MASQ]],
  [
    "a comment without quotes (as deleteRuleSet passes its own)",
    `--comment ${ownerComment("masq", "0a1b2c3d", MASQ.claims)}`,
    [MASQ],
  ],
  [
    "an owner without claims (a Bridge's rule)",
    '--comment "pulumi-netns/bridge/deadbeef/"',
    [{ kind: "bridge", id: "deadbeef", claims: {} }],
  ],
  [
    "a look-alike that is not an owner's (capitals, not hex)",
    '--comment "pulumi-netns/Masq/0a1b/" --comment "pulumi-netns/masq/xyz/"',
    [],
  ],
];

describe("kernel/ownership: parseOwners (on the unit fixtures)", () => {
  for (const [what, text, owners] of OWNERS)
    it(`finds ${owners.length} owner(s) in ${what}`, () => {
      assert.deepEqual([...parseOwners(text).values()], owners);
    });

  it("reads back the claims ownerComment wrote, for each owner kind", () => {
    for (const owner of [MASQ, PFWD, { kind: "bridge", id: "00ff", claims: {} }])
      assert.deepEqual(
        parseOwners(`--comment "${ownerComment(owner.kind, owner.id, owner.claims)}"`).get(owner.id),
        owner,
      );
  });
});

describe("kernel/iptables: removeRuleCommand (the fix a retained Bridge's warning gives)", () => {
  const accept = {
    table: "filter" as const,
    chain: "FORWARD",
    insert: true,
    spec: ["-i", "br0", "-o", "br0", "-j", "ACCEPT"],
  };

  it("is the -D of the rule with its owner comment, as a human types it", () => {
    assert.equal(
      removeRuleCommand(undefined, accept, "pulumi-netns/bridge/0a1b2c3d/tfilter=0"),
      "iptables -w -t filter -D FORWARD -i br0 -o br0 -m comment --comment pulumi-netns/bridge/0a1b2c3d/tfilter=0 -j ACCEPT",
    );
  });

  it("an IPv6 rule is ip6tables' (new user, dual stack: the warning gave the iptables -D twice, and the IPv6 accept stayed)", () => {
    assert.equal(
      removeRuleCommand(undefined, { ...accept, family: 6 }, "pulumi-netns/bridge/0a1b2c3d/tfilter=0,t6filter=0"),
      "ip6tables -w -t filter -D FORWARD -i br0 -o br0 -m comment --comment 'pulumi-netns/bridge/0a1b2c3d/tfilter=0,t6filter=0' -j ACCEPT",
    );
  });

  it("runs inside the namespace, and quotes a value the shell would split", () => {
    const negated = { ...accept, spec: ["!", "-s", "10.0.0.0/8", "-o", "br0", "-j", "ACCEPT"] };
    assert.equal(
      removeRuleCommand("red", negated, "a b"),
      "ip netns exec red iptables -w -t filter -D FORWARD ! -s 10.0.0.0/8 -o br0 -m comment --comment 'a b' -j ACCEPT",
    );
  });
});
