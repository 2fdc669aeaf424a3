import { strict as assert } from "node:assert";
import { ipNetwork, ipv4OrIpv6Address } from "../../../provider/validate";

// The NAT fields' rules: either family, IPv6 through ipv6Network/ipv6Address (validate.test.ts tests those).
describe("validation: networks and addresses of either family (MasqueradeRule, PortForward, forwardFrom, allowFrom)", () => {
  it("accepts IPv4 and IPv6 in the text the kernel and ip6tables print (RFC 5952)", () => {
    for (const n of ["10.0.0.0/8", "fd00:10::/64", "fd00::/8", "2001:db8::/32", "fd00:10::1/128"])
      assert.equal(ipNetwork(n), undefined, n);
    for (const a of ["10.0.0.2", "fd00:10::2", "2001:db8::1:0:0:1", "fe80::1"])
      assert.equal(ipv4OrIpv6Address(a), undefined, a);
  });

  it("refuses another spelling of the same network, naming the one to write", () => {
    for (const [given, canonical] of [
      ["FD00:10::/64", "fd00:10::/64"],
      ["fd00:10:0:0::/64", "fd00:10::/64"],
      ["fd00:0010::/64", "fd00:10::/64"],
    ]) {
      const reason = ipNetwork(given) ?? "";
      assert.ok(reason.includes(JSON.stringify(given)) && reason.includes(JSON.stringify(canonical)), reason);
    }
    assert.match(ipv4OrIpv6Address("FD00:10::2") ?? "", /write "fd00:10::2"/);
  });

  it("refuses what is not one network or address, naming the value and the fix", () => {
    const bad: Array<[unknown, RegExp]> = [
      ["fd00:10::5/64", /host bits set; the network is fd00:10::\/64/],
      ["fd00:10::/129", /prefix length "129"; it must be 1-128/],
      ["fd00:10::/064", /it must be 1-128/],
      ["fd00:10::", /with a prefix/],
      ["fe80::1%eth0/64", /zone id/],
      ["fd00:10::/64; reboot", /it must be 1-128/],
      ["10.0.0.0/8x", /or an IPv6 network/],
      [42, /not a string/],
    ];
    for (const [v, why] of bad) assert.match(ipNetwork(v) ?? "", why, String(v));
    assert.match(ipv4OrIpv6Address("::") ?? "", /unspecified/);
    assert.match(ipv4OrIpv6Address("fd00::1/64") ?? "", /not an IPv6 address/);
    assert.match(ipv4OrIpv6Address("10.0.0") ?? "", /not an IPv4 address .* or an IPv6 address/);
  });
});
