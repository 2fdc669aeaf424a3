import { strict as assert } from "node:assert";
import { isolationRules } from "../../../../provider/kernel/isolation";

const text = (r: { table: string; chain: string; spec: string[] }) => `-t ${r.table} ${r.chain} ${r.spec.join(" ")}`;

describe("kernel/isolation", () => {
  it("three DROP rules: in from a bridge of the group, out while our own bridge lost the group, forged sources", () => {
    assert.deepEqual(isolationRules("v-net-0", []).map(text), [
      "-t mangle FORWARD ! -i v-net-0 -o v-net-0 -m devgroup --src-group 0x4e53 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
      "-t mangle FORWARD -i v-net-0 ! -o v-net-0 -m devgroup ! --src-group 0x4e53 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
      "-t mangle PREROUTING -i v-net-0 -m rpfilter --invert -j DROP",
    ]);
  });

  it("each allowFrom CIDR is one more negated source range of the 'in' rule only", () => {
    const [into, out, forged] = isolationRules("v-net-1", ["192.168.15.0/24", "10.0.0.0/8"]).map(text);
    assert.match(
      into,
      /-m iprange ! --src-range 192\.168\.15\.0-192\.168\.15\.255 -m iprange ! --src-range 10\.0\.0\.0-10\.255\.255\.255 -j DROP$/,
    );
    assert.doesNotMatch(out, /iprange/);
    assert.doesNotMatch(forged, /iprange/);
  });
});
