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
