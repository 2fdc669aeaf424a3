import { strict as assert } from "node:assert";
import { ipNetwork, ipv4OrIpv6Address, ipv6Address, ipv6Network } from "../../../provider/validate";

describe("validation: IPv6 networks and addresses", () => {
  it("accepts IPv6 in the text the kernel and ip6tables print (RFC 5952)", () => {
    for (const a of ["fd00:10::2", "2001:db8::1", "fe80::1", "::1", "2001:db8:0:1:1:1:1:1"])
      assert.equal(ipv6Address(a), undefined, a);
    for (const n of ["fd00:10::/64", "fd00::/8", "::/1", "2001:db8::/32", "fd00:10::1/128"])
      assert.equal(ipv6Network(n), undefined, n);
    assert.equal(ipNetwork("10.0.0.0/8"), undefined);
    assert.equal(ipNetwork("fd00:10::/64"), undefined);
    assert.equal(ipv4OrIpv6Address("10.0.0.2"), undefined);
    assert.equal(ipv4OrIpv6Address("fd00:10::2"), undefined);
  });

  it("refuses another spelling of the same address, naming the one to write", () => {
    const cases: Array<[string, string]> = [
      ["FD00:10::2", "fd00:10::2"],
      ["fd00:10:0:0:0:0:0:2", "fd00:10::2"],
      ["fd00:0010::2", "fd00:10::2"],
      ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ];
    for (const [given, canonical] of cases) {
      const reason = ipv6Address(given) ?? "";
      assert.ok(reason.includes(JSON.stringify(given)) && reason.includes(JSON.stringify(canonical)), reason);
    }
    assert.match(ipv6Network("fd00:10:0::/64") ?? "", /"fd00:10::".*write it that way/);
  });

  it("refuses what is not one IPv6 network, naming the value and the fix", () => {
    const bad: Array<[unknown, RegExp]> = [
      ["fd00:10::5/64", /host bits set; the network is fd00:10::\/64/],
      ["fd00:10::/129", /prefix length "129"; it must be 1-128/],
      ["fd00:10::/064", /it must be 1-128/],
      ["fd00:10::", /must be a network with a prefix/],
      ["fe80::1%eth0/64", /not an IPv6 address/],
      ["::ffff:10.0.0.0/104", /IPv4-mapped/],
      ["fd00:10::/64; reboot", /it must be 1-128/],
      ["10.0.0.0/8x", /or an IPv6 network/],
    ];
    for (const [v, why] of bad) {
      const reason = ipNetwork(v) ?? "";
      assert.match(reason, why, `${v}: ${reason}`);
    }
    assert.match(ipv4OrIpv6Address("::") ?? "", /unspecified/);
    assert.match(ipv4OrIpv6Address("fd00::1/64") ?? "", /not an IPv6 address/);
    assert.match(ipv4OrIpv6Address("10.0.0") ?? "", /not an IPv4 address .* or an IPv6 address/);
  });
});
