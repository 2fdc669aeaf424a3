import { strict as assert } from "node:assert";
import { checkConnection } from "../../../provider/connection";
import {
  Checker,
  hostKey,
  hostName,
  interfaceName,
  ipInterface,
  ipv4Interface,
  ipv4Network,
  ipv6Address,
  ipv6Network,
  namespaceName,
  port,
  UNKNOWN,
} from "../../../provider/validate";

const ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMnlN704wY9t56XP9j7/DMfZp6WJMyBwE2Z7HlDq7TB/";

describe("validation", () => {
  it("accepts the lesson's names", () => {
    for (const n of ["veth-red", "veth-blue-br", "v-net-0", "eth0"]) assert.equal(interfaceName(n), undefined, n);
    for (const n of ["red", "blue", "lab_1", "a.b"]) assert.equal(namespaceName(n), undefined, n);
  });

  it("rejects interface names the kernel or a shell would mishandle, naming the value", () => {
    for (const bad of ["", "a".repeat(16), "lo", "all", "-x", "a b", "a/b", "a:b", "$(x)", "a;b", "é"]) {
      const reason = interfaceName(bad);
      assert.ok(reason, `accepted ${JSON.stringify(bad)}`);
      assert.ok(reason.includes(JSON.stringify(bad).slice(0, 10)), reason);
    }
  });

  it("rejects namespace names with path separators, dots or metacharacters", () => {
    for (const bad of ["", "../etc", "a/b", ".", "..", ".hidden", "-n", "red blue", "x".repeat(65), "r`d`"])
      assert.ok(namespaceName(bad), `accepted ${JSON.stringify(bad)}`);
  });

  it("checks CIDR forms with ipaddr.js", () => {
    assert.equal(ipv4Interface("192.168.15.1/24"), undefined);
    assert.ok(ipv4Interface("192.168.15.1"));
    assert.ok(ipv4Interface("192.168.15.1/33"));
    assert.ok(ipv4Interface("192.168.15.1/0"));
    assert.ok(ipv4Interface("300.1.1.1/24"));
    assert.ok(ipv4Interface("fe80::1/64"));
    assert.equal(ipv4Network("192.168.15.0/24"), undefined);
    assert.match(ipv4Network("192.168.15.5/24") ?? "", /host bits set; the network is 192\.168\.15\.0\/24/);
  });

  it("takes ports as integers from 1 to 65535", () => {
    assert.equal(port(80), undefined);
    for (const bad of [0, 65536, 8.5, "80", -1, Number.NaN]) assert.ok(port(bad), String(bad));
  });

  it("refuses host names that read as options or carry metacharacters", () => {
    for (const ok of ["lab.example.com", "198.18.0.2", "::1", "host-1"]) assert.equal(hostName(ok), undefined, ok);
    for (const bad of ["-oProxyCommand=id", "a b", "h;id", "", "a..b", "$(id)"]) assert.ok(hostName(bad), bad);
  });

  it("accepts both host key forms and rejects malformed ones", () => {
    assert.equal(hostKey(ED25519), undefined);
    assert.equal(hostKey("SHA256:0OB9hZpFyn3HYoo66AYx037q2Dtv0oX3/KLKy1nF1pI"), undefined);
    assert.ok(hostKey("SHA256:short"));
    assert.ok(hostKey("ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ=="), "a key blob of another type");
    assert.ok(hostKey("ssh-ed25519"));
  });

  it("validates a connection and its jump hosts without echoing secrets", () => {
    const checker = new Checker();
    checkConnection(checker, "connection", {
      host: "-oProxyCommand=x",
      privateKey: "hunter2-not-a-key",
      password: 5,
      proxy: { host: "jump", port: 0 },
      extra: 1,
    });
    const props = checker.failures.map((f) => f.property).sort();
    assert.deepEqual(props, [
      "connection.extra",
      "connection.host",
      "connection.password",
      "connection.privateKey",
      "connection.proxy.port",
    ]);
    assert.ok(!JSON.stringify(checker.failures).includes("hunter2"), "a secret was echoed");
  });

  it("lets unknown values (preview) through", () => {
    const checker = new Checker();
    checkConnection(checker, "connection", { host: UNKNOWN, port: UNKNOWN });
    checker.field("name", UNKNOWN, namespaceName, true);
    assert.deepEqual(checker.failures, []);
  });
});

describe("validation: IPv6 interface addresses (ipInterface)", () => {
  for (const ok of ["fd00:15::1/64", "2001:db8::5/128", "fd00:15::1/1", "192.168.15.1/24"])
    it(`${ok} is valid`, () => assert.equal(ipInterface(ok), undefined));
  const refused: Array<[string, RegExp]> = [
    ["fd00:15::1/129", /prefix length "129"; it must be 1-128/],
    ["fd00:15::1/064", /prefix length "064"/],
    ["fd00:15::1/0", /prefix length "0"/],
    ["fd00:15::1", /must be an address with a prefix/],
    ["fe80::1%eth0/64", /zone id/],
    ["::/64", /unspecified/],
    ["::1/128", /loopback/],
    ["ff02::1/64", /multicast/],
    ["::ffff:1.2.3.4/96", /IPv4-mapped/],
    ["::ffff:102:304/96", /IPv4-mapped/],
    ["::102:304/96", /IPv4-compatible/],
    ["fe80::5/64", /link-local.*the kernel gives every link its own/],
    // Not as the kernel prints it back: refused with the spelling that is.
    ["FD00:15::1/64", /write "fd00:15::1\/64"/],
    ["fd00:15:0:0:0:0:0:1/64", /write "fd00:15::1\/64"/],
    ["fd00:0:0:1:0:0:0:1/64", /write "fd00:0:0:1::1\/64"/],
    ["fd00::1:2:3:4:5:6/64", /write "fd00:0:1:2:3:4:5:6\/64"/],
    ["1:2:3:4:5:6:1.2.3.4/64", /write "1:2:3:4:5:6:102:304\/64"/],
    ["fd00::1/64;id", /prefix length/],
    ["fd00::1$(id)/64", /not an IPv6 address/],
    ["fd00::1/64/64", /must be an address with a prefix/],
  ];
  for (const [v, reason] of refused)
    it(`${JSON.stringify(v)} is refused: ${reason.source}`, () => {
      const got = ipInterface(v);
      assert.ok(got, `accepted ${v}`);
      assert.match(got, reason);
      assert.ok(got.includes(JSON.stringify(v)), got);
    });
  it("ipv6Network: host bits and spelling", () => {
    assert.equal(ipv6Network("fd00:15::/64"), undefined);
    assert.match(ipv6Network("fd00:15::1/64") ?? "", /host bits set; the network is fd00:15::\/64/);
    assert.match(ipv6Network("FD00:15::/64") ?? "", /write "fd00:15::\/64"/);
    assert.match(ipv6Network("fd00:15::/129") ?? "", /1-128/);
  });
  it("ipv6Address: a gateway", () => {
    assert.equal(ipv6Address("fd00:15::1"), undefined);
    assert.equal(ipv6Address("fe80::1"), undefined);
    assert.match(ipv6Address("ff02::2") ?? "", /multicast/);
    assert.match(ipv6Address("fd00:15::1%eth0") ?? "", /zone id/);
  });
});
