import { strict as assert } from "node:assert";
import { overlaps, prefixOf } from "../../../../provider/kernel/cidr";

describe("kernel/cidr", () => {
  it("overlaps: containment either way, not neighbours", () => {
    assert.ok(overlaps("192.168.15.0/25", "192.168.15.0/24"));
    assert.ok(overlaps("192.168.15.5/24", "192.168.15.128/25"));
    assert.ok(!overlaps("192.168.15.0/25", "192.168.15.128/25"));
    assert.ok(!overlaps("10.31.0.1/24", "192.168.15.0/24"));
  });

  it("a bare address is a /32; prefixOf drops host bits", () => {
    assert.ok(overlaps("10.0.0.7", "10.0.0.0/24"));
    assert.ok(!overlaps("10.0.1.7", "10.0.0.0/24"));
    assert.equal(prefixOf("192.168.15.5/24"), "192.168.15.0/24");
    assert.equal(prefixOf("10.0.0.7"), "10.0.0.7/32");
  });
});

describe("kernel/cidr: IPv6", () => {
  it("overlaps: containment either way; never across families", () => {
    assert.ok(overlaps("fd00:15::1/64", "fd00:15::/48"));
    assert.ok(overlaps("fd00::/8", "fd00:15::5/128"));
    assert.ok(!overlaps("fd00:15::1/64", "fd00:16::1/64"));
    assert.ok(!overlaps("fd00:15::1/64", "10.0.0.0/8"));
    assert.ok(!overlaps("0.0.0.0/1", "::1"));
  });
  it("a bare address is a /128; prefixOf drops host bits, RFC 5952 spelling", () => {
    assert.equal(prefixOf("fd00:15::1/64"), "fd00:15::/64");
    assert.equal(prefixOf("fd00:15::1"), "fd00:15::1/128");
  });
});
