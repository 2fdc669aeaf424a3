import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import {
  announce,
  announceBridge,
  LINK_READ_OPTIONS,
  type LinkState,
  parseLink,
  printLink,
  sameAddresses,
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
      // fd00:99::2/64 and the link-local address are IPv6: not the package's.
      addresses: ["10.99.0.2/24", "10.99.0.3/24"],
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
