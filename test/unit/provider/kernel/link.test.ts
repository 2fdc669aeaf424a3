import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import {
  announce,
  announceBridge,
  LINK_READ_OPTIONS,
  type LinkState,
  parseLink,
  printLink,
  refuseUnsettled,
  sameAddresses,
  settleAddresses,
  settledAddresses,
  unsettled,
} from "../../../../provider/kernel/link";
import { at } from "../../../../provider/kernel/namespace";
import { fixture } from "../../support";

/** What `ip -d -j addr show dev X` printed (fixtures/ip-link), and what parseLink must make of it. */
const CAPTURED: Array<[string, LinkState | undefined]> = [
  [
    "bridge",
    {
      ifname: "ut-br0",
      ifindex: 2,
      mac: "02:00:00:00:0a:01",
      mtu: 1400,
      up: true,
      master: undefined,
      kind: "bridge",
      addresses: ["10.99.0.1/24", "10.99.1.1/24"],
    },
  ],
  [
    "veth-bridge-port",
    {
      ifname: "ut-va0",
      ifindex: 3,
      mac: "02:00:00:00:0a:02",
      mtu: 1500,
      up: true,
      master: "ut-br0",
      kind: "veth",
      addresses: [],
    },
  ],
  [
    "veth-addressed-tbf",
    {
      ifname: "ut-vb0",
      ifindex: 2,
      mac: "02:00:00:00:0b:02",
      mtu: 1500,
      up: true,
      master: undefined,
      kind: "veth",
      // The kernel's link-local address is not the package's; fd00:99::2/64 (scope global, given by hand) is.
      addresses: ["10.99.0.2/24", "10.99.0.3/24", "fd00:99::2/64"],
    },
  ],
  [
    "veth-down",
    {
      ifname: "ut-vb1",
      ifindex: 4,
      mac: "02:00:00:00:0b:03",
      mtu: 1500,
      up: false,
      master: undefined,
      kind: "veth",
      addresses: [],
    },
  ],
  [
    // Just added: tentative (still in DAD), and read as the package's all the same; not the SLAAC-made
    // ones (dynamic: a lifetime; mngtmpaddr) nor the kernel's link-local one.
    "v6-veth-tentative",
    {
      ifname: "ut-v6a",
      ifindex: 3,
      mac: "3e:50:72:24:17:a6",
      mtu: 1500,
      up: true,
      master: undefined,
      kind: "veth",
      addresses: ["10.99.6.1/24", "fd00:99:6::1/64"],
    },
  ],
  [
    "v6-veth-settled",
    {
      ifname: "ut-v6a",
      ifindex: 3,
      mac: "3e:50:72:24:17:a6",
      mtu: 1500,
      up: true,
      master: undefined,
      kind: "veth",
      addresses: ["10.99.6.1/24", "fd00:99:6::1/64"],
    },
  ],
  [
    // fd00:99:6::1/64 is also on ut-v6a in the same namespace: its DAD failed here (unusable, not the bridge's).
    "v6-bridge-dadfailed",
    {
      ifname: "ut-br6",
      ifindex: 4,
      mac: "02:00:00:00:0b:01",
      mtu: 1500,
      up: true,
      master: undefined,
      kind: "bridge",
      addresses: ["fd00:99:6::2/64"],
    },
  ],
  ["absent-device", undefined],
  ["absent-namespace", undefined],
];

/** A minimal entry, as a kernel or iproute2 of another version might print one. */
const entry = (fields: Record<string, unknown>) => JSON.stringify([{ ifname: "x", ifindex: 7, mtu: 1500, ...fields }]);

const EDGES: Array<[string, string, Partial<LinkState>]> = [
  ["no flags: down", entry({}), { up: false }],
  ["LOWER_UP without UP: down", entry({ flags: ["LOWER_UP"] }), { up: false }],
  ["no address (MAC): an empty mac", entry({}), { mac: "" }],
  ["no addr_info: no addresses", entry({}), { addresses: [] }],
  ["no linkinfo (ip without -d): no kind", entry({}), { kind: undefined }],
  [
    "fields the kernel may add, inside and around addr_info",
    entry({
      flags: ["UP"],
      new_field: 1,
      addr_info: [{ family: "inet", local: "10.0.0.1", prefixlen: 8, new_field: true }],
    }),
    { up: true, addresses: ["10.0.0.1/8"] },
  ],
  [
    "several entries: the first one",
    JSON.stringify([
      { ifname: "first", ifindex: 1, mtu: 1 },
      { ifname: "second", ifindex: 2, mtu: 2 },
    ]),
    { ifname: "first" },
  ],
];

describe("kernel/link: parseLink", () => {
  for (const [name, expected] of CAPTURED)
    it(`reads fixtures/ip-link/${name}.json`, () => {
      assert.deepEqual(parseLink(fixture(`ip-link/${name}.json`), name), expected);
    });

  for (const [what, text, expected] of EDGES)
    it(`reads ${what}`, () => {
      const state = parseLink(text, "x");
      assert.ok(state);
      for (const [key, value] of Object.entries(expected)) assert.deepEqual(state[key as keyof LinkState], value, key);
    });

  it("says which interface it could not read", () => {
    assert.throws(() => parseLink("Device does not exist", "veth end veth-red"), /veth end veth-red/);
  });
});

// /etc/iproute2/group names groups; `ip` prints the name then ("default" for 0), `ip -N` the number.
describe("kernel/link: the interface group, named by the host or not", () => {
  it("the reads ask ip for numbers (-N): printLink and the options of the batches that show a link", () => {
    assert.match(printLink(at("red"), "veth-red"), / '-N' '-d' '-j' addr show dev veth-red/);
    assert.deepEqual(LINK_READ_OPTIONS, ["-N", "-d", "-j"]);
  });

  it("reads group 7, named lab by the host, as 7 (fixtures/ip-link/named-group-numeric.json)", () => {
    assert.equal(parseLink(fixture("ip-link/named-group-numeric.json"), "d0")?.group, 7);
  });

  it("a group printed by its name (a read without -N) is an error that names it, never NaN", () => {
    assert.throws(() => parseLink(fixture("ip-link/named-group.json"), "bridge d0"), /bridge d0: .*group "lab"/);
  });

  for (const group of ["0", "default"])
    it(`group ${JSON.stringify(group)} is the kernel's default: absent`, () => {
      assert.equal(parseLink(entry({ group }), "x")?.group, undefined);
    });
});

describe("kernel/link: sameAddresses", () => {
  const rows: Array<[string[] | undefined, string[] | undefined, boolean]> = [
    [["10.0.0.1/24", "10.0.0.2/24"], ["10.0.0.2/24", "10.0.0.1/24"], true],
    [undefined, [], true],
    [undefined, undefined, true],
    [["10.0.0.1/24"], ["10.0.0.1/25"], false],
    [["10.0.0.1/24"], [], false],
    [["10.0.0.1/24", "10.0.0.1/24"], ["10.0.0.1/24"], false],
  ];
  for (const [a, b, same] of rows)
    it(`${JSON.stringify(a)} and ${JSON.stringify(b)} are ${same ? "" : "not "}the same set`, () => {
      assert.equal(sameAddresses(a, b), same);
      assert.equal(sameAddresses(b, a), same);
    });
});

describe("kernel/link: announce (gratuitous ARP through arp_notify)", () => {
  it("runs in the interface's namespace; the name is a positional parameter, never script text", () => {
    const cmd = announce(at("blue"), "veth-blue");
    assert.match(cmd, /^ip netns exec blue sh '-c' '[^']*' announce veth-blue$/);
    assert.ok(!/veth-blue/.test(cmd.replace(/ announce veth-blue$/, "")), cmd);
  });
  it("is valid shell that sets arp_notify before it sets the MAC to itself", () => {
    const body = /sh '-c' '([^']*)'/.exec(announce(at(undefined), "eth0"))?.[1] ?? "";
    execFileSync("sh", ["-n", "-c", body]);
    assert.ok(body.indexOf("arp_notify") < body.indexOf("address"), body);
  });
});

describe("kernel/link: announceBridge (a bridge's gratuitous ARP, the bridge left as it was)", () => {
  const body = (cmd: string) => /sh '-c' '([^']*)'/.exec(cmd)?.[1] ?? "";
  it("runs in the bridge's namespace; the name is a positional parameter, never script text", () => {
    const cmd = announceBridge(at("red"), "v-net-0");
    assert.match(cmd, /^ip netns exec red sh '-c' '[^']*' announce-bridge v-net-0$/);
    assert.ok(!/v-net-0/.test(body(cmd)), cmd);
  });
  it("is valid shell: skips a bridge without a port or whose MAC follows its ports, then sets arp_notify, the MAC, and puts arp_notify back", () => {
    const text = body(announceBridge(at(undefined), "br0"));
    execFileSync("sh", ["-n", "-c", text]);
    const at_ = (s: string) => text.indexOf(s);
    assert.ok(at_("brif") >= 0 && at_("addr_assign_type") >= 0, text);
    assert.ok(at_("brif") < at_("echo 1 >"), text);
    assert.ok(at_("echo 1 >") < at_('address "$(cat'), text);
    assert.ok(at_('address "$(cat') < at_('echo "$old" >'), text);
  });
});

describe("kernel/link: IPv6 addresses in duplicate address detection (settleAddresses, unsettled)", () => {
  it("tells a tentative address from a settled one and a failed one (fixtures/ip-link/v6-*.json)", () => {
    assert.deepEqual(unsettled(fixture("ip-link/v6-veth-tentative.json"), ["fd00:99:6::1/64", "10.99.6.1/24"]), {
      dadFailed: [],
      tentative: ["fd00:99:6::1/64"],
    });
    assert.deepEqual(unsettled(fixture("ip-link/v6-veth-settled.json"), ["fd00:99:6::1/64"]), {
      dadFailed: [],
      tentative: [],
    });
    assert.deepEqual(unsettled(fixture("ip-link/v6-bridge-dadfailed.json"), ["fd00:99:6::1/64", "fd00:99:6::2/64"]), {
      dadFailed: ["fd00:99:6::1/64"],
      tentative: [],
    });
    // Only the addresses wanted: SLAAC's and the kernel's own are not waited for.
    assert.deepEqual(unsettled(fixture("ip-link/v6-veth-tentative.json"), []), { dadFailed: [], tentative: [] });
    assert.deepEqual(unsettled("", ["fd00:99:6::1/64"]), { dadFailed: [], tentative: [] });
  });
  it("a failed detection is refused naming the address, the device and the fix", () => {
    assert.throws(
      () => refuseUnsettled(fixture("ip-link/v6-bridge-dadfailed.json"), "ut-br6", ["fd00:99:6::1/64"], "on lab"),
      /fd00:99:6::1\/64 on ut-br6: duplicate address detection failed \(dadfailed\): another interface on the segment has it; give ut-br6 another address/,
    );
    assert.doesNotThrow(() =>
      refuseUnsettled(fixture("ip-link/v6-bridge-dadfailed.json"), "ut-br6", ["fd00:99:6::2/64"], "x"),
    );
  });
  it("a bridge's addresses to settle are its global ones: its link-local one, still tentative, is not refused (CI: every dual-stack up failed on it)", () => {
    assert.deepEqual(settledAddresses(fixture("ip-link/v6-veth-tentative.json")).sort(), [
      "fd00:99:6::1/64",
      "fd00:99:7::1/64",
      "fd00:99:8::1/64",
    ]);
    // Globals settled, the kernel's fe80:: still in DAD: what the wait (global addresses only) may leave.
    const entries = JSON.parse(fixture("ip-link/v6-veth-settled.json")) as Array<{
      addr_info: Array<{ local: string; tentative?: boolean }>;
    }>;
    for (const a of entries[0].addr_info) if (a.local.startsWith("fe80:")) a.tentative = true;
    const text = JSON.stringify(entries);
    assert.doesNotThrow(() => refuseUnsettled(text, "ut-br6", settledAddresses(text), "on lab"));
  });
  it("the wait is valid shell, in the link's namespace, the name a positional parameter; it waits for global addresses only", () => {
    const cmd = settleAddresses(at("red"), "veth-red");
    assert.match(cmd, /^ip netns exec red sh '-c' '[^']*' settle veth-red$/);
    const text = /sh '-c' '([^']*)'/.exec(cmd)?.[1] ?? "";
    execFileSync("sh", ["-n", "-c", text]);
    assert.match(text, /scope global tentative -dadfailed/);
    assert.match(text, /ip -6 -j addr show dev "\$1"/);
  });
});

describe("kernel/link: the IPv6 announcement (ndisc_notify beside arp_notify)", () => {
  const body = (cmd: string) => /sh '-c' '([^']*)'/.exec(cmd)?.[1] ?? "";
  it("announce sets ndisc_notify (skipped where IPv6 is off), waits out DAD, then sets the MAC to itself", () => {
    const text = body(announce(at(undefined), "eth0"));
    execFileSync("sh", ["-n", "-c", text]);
    const i = (s: string) => text.indexOf(s);
    assert.ok(i("/proc/sys/net/ipv6/conf/$1/ndisc_notify") >= 0, text);
    assert.match(text, /\[ ! -e "\$n" \] \|\| echo 1 > "\$n"/);
    assert.ok(i("ndisc_notify") < i("tentative") && i("tentative") < i('address "$(cat'), text);
  });
  it("announceBridge sets ndisc_notify and puts the old value back, as arp_notify", () => {
    const text = body(announceBridge(at(undefined), "br0"));
    execFileSync("sh", ["-n", "-c", text]);
    const i = (s: string) => text.indexOf(s);
    assert.ok(i('old6="$(cat "$n")"') >= 0 && i('echo "$old6" > "$n"') > i('address "$(cat'), text);
    assert.ok(i("tentative") < i('address "$(cat'), text);
  });
});
