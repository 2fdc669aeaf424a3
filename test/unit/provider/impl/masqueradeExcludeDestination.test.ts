import { strict as assert } from "node:assert";
import { type MasqueradeRuleInputs, rulesOf } from "../../../../provider/impl/masqueradeRule";

describe("impl/masqueradeRule: excludeDestination (the `! -d` form PodNetwork needs)", () => {
  const base = { source: "10.244.38.0/24", enableIpForward: true } as MasqueradeRuleInputs;

  it("adds `! -d <network>` to the MASQUERADE rule only, after the interface match", () => {
    const [nat, ...forward] = rulesOf({ ...base, excludeDestination: "10.244.0.0/16", excludeOutInterface: "v-net-0" });
    assert.deepEqual(nat.spec, [
      "-s",
      "10.244.38.0/24",
      "!",
      "-o",
      "v-net-0",
      "!",
      "-d",
      "10.244.0.0/16",
      "-j",
      "MASQUERADE",
    ]);
    assert.deepEqual(forward, rulesOf(base).slice(1));
  });

  it("without it the rule is the one older releases made (same rules, same owner comment)", () => {
    assert.deepEqual(rulesOf(base)[0].spec, ["-s", "10.244.38.0/24", "-j", "MASQUERADE"]);
  });
});

describe("impl/masqueradeRule: inInterface (the FORWARD accepts trust a source only on the network's interface)", () => {
  const base = { source: "10.244.0.0/16", enableIpForward: true } as MasqueradeRuleInputs;

  it("new traffic is accepted only coming in on it, replies only going out to it; the MASQUERADE rule is unchanged", () => {
    const [nat, out, replies] = rulesOf({ ...base, inInterface: "cni0" });
    assert.deepEqual(nat, rulesOf(base)[0]);
    assert.deepEqual(out.spec, ["-i", "cni0", "-s", "10.244.0.0/16", "-j", "ACCEPT"]);
    assert.deepEqual(replies.spec, [
      "-o",
      "cni0",
      "-d",
      "10.244.0.0/16",
      "-m",
      "conntrack",
      "--ctstate",
      "RELATED,ESTABLISHED",
      "-j",
      "ACCEPT",
    ]);
  });

  it("without it the accepts are the ones older releases made (from and to any interface)", () => {
    assert.deepEqual(rulesOf(base)[1].spec, ["-s", "10.244.0.0/16", "-j", "ACCEPT"]);
  });
});
