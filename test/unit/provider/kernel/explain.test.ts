import { strict as assert } from "node:assert";
import { explainFailure, type Lookup, lookup } from "../../../../provider/kernel/explain";
import { fixture, fixturesOf } from "../../support";

/** A case captured on a lab host (fixtures/kernel-errors/capture.ts): what today's create threw. */
interface Captured {
  resource: string;
  inputs: Record<string, any>;
  stderr?: string;
  command?: string;
  message?: string;
}

const HOST = "root@lab:22";

/** What each resource's commands look up, as its impl module says (impl/route.ts, vethPair.ts, ...). */
function lookupsOf({ resource, inputs: i }: Captured): Lookup[] {
  if (resource === "route")
    return [
      ...lookup("namespace", i.namespace, "namespace"),
      ...lookup("via", i.via, "gateway", i.namespace),
      ...lookup("device", i.device, "interface", i.namespace),
    ];
  if (resource === "vethPair")
    return [
      ...lookup("a.namespace", i.a.namespace, "namespace"),
      ...lookup("b.namespace", i.b.namespace, "namespace"),
      ...lookup("a.bridge", i.a.bridge, "bridge", i.a.namespace),
      ...lookup("b.bridge", i.b.bridge, "bridge", i.b.namespace),
    ];
  return lookup("namespace", i.namespace, "namespace");
}

/** Per captured failure: what the message must begin with, and the kernel's words it ends with. */
const TOLD: Record<string, [RegExp, string]> = {
  "route-missing-namespace": [
    /^namespace: namespace "ke-none" does not exist on root@lab:22: declare it \(a Namespace, and pass its name output as namespace so that it is made first\) or fix the name\n/,
    'Cannot open network namespace "ke-none": No such file or directory',
  ],
  "address6-ipv6-disabled": [
    /^fd00:99::1\/64: IPv6 is disabled on "kx0" in namespace "kecap" on root@lab:22 \(net\.ipv6\.conf\.kx0\.disable_ipv6 is 1, .*sysctl -w net\.ipv6\.conf\.kx0\.disable_ipv6=0.*or give no IPv6 address/,
    "Error: ipv6: IPv6 is disabled on this device.",
  ],
  "route-gateway-not-connected": [
    /^via: 10\.55\.0\.1 is not in a subnet connected in namespace "ke-a" on root@lab:22: no interface there that is up has an address whose subnet holds it .*add such an address to an interface there, or fix via \(for a PodNetwork's route to another node: that node's nodeAddress or nodeAddress6/,
    "Error: Nexthop has invalid gateway.",
  ],
  "route-gateway-via-down-device": [
    /^via: 10\.61\.0\.2 is not in a subnet connected/,
    "Error: Nexthop has invalid gateway.",
  ],
  "route-gateway-is-broadcast": [
    /^via: 10\.60\.0\.255 is not in a subnet connected/,
    "Error: Nexthop has invalid gateway.",
  ],
  "route-gateway-not-on-device": [
    /^via: 10\.60\.0\.254 is not in a subnet connected in namespace "ke-a" on root@lab:22 through device "ke-v1": /,
    "Error: Nexthop has invalid gateway.",
  ],
  "route-gateway-on-down-device": [/ through device "ke-v1": /, "Error: Nexthop has invalid gateway."],
  // IPv6 (ip -6), captured by hand the same way (fixtures/README.md).
  "route6-gateway-not-connected": [
    /^via: fd00:55::1 is not in a subnet connected in namespace "ke-a" on root@lab:22: /,
    "RTNETLINK answers: No route to host",
  ],
  "route6-gateway-is-local": [
    /^via: fd00:71::1 is an address of namespace "ke-a" itself on root@lab:22: a gateway is another host's address: fix via/,
    "Error: Gateway can not be a local address.",
  ],
  "route6-device-down": [/^device: interface "ke-v1" is down in namespace "ke-a"/, "Error: Nexthop device is not up."],
  "route-device-missing": [
    /^device: interface "ke-nodev" does not exist in namespace "ke-a" on root@lab:22: declare it \(a VethPair end or a Bridge there, and pass its name output as device so that it is made first\) or fix the name\n/,
    'Cannot find device "ke-nodev"',
  ],
  "route-device-elsewhere": [
    /^device: interface "ke-host0" does not exist in namespace "ke-a"/,
    'Cannot find device "ke-host0"',
  ],
  "route-host-device-missing": [
    /^device: interface "ke-nodev" does not exist in the host namespace/,
    'Cannot find device "ke-nodev"',
  ],
  "route-device-down": [
    /^device: interface "ke-v1" is down in namespace "ke-a" on root@lab:22: bring it up \(up: true on its VethPair end or Bridge\)/,
    "Error: Device for nexthop is not up.",
  ],
  "veth-peer-missing-namespace": [
    /^b\.namespace: namespace "ke-none" does not exist on root@lab:22: /,
    'Error: argument "ke-none" is wrong: Invalid "netns" value',
  ],
  "veth-host-end-peer-missing-namespace": [
    /^b\.namespace: namespace "ke-none" does not exist/,
    'Error: argument "ke-none" is wrong: Invalid "netns" value',
  ],
  // Both ends name it: the first field that does is the one to fix.
  "veth-missing-namespace": [
    /^a\.namespace: namespace "ke-none" does not exist/,
    'Cannot open network namespace "ke-none": No such file or directory',
  ],
  "veth-missing-bridge": [
    /^a\.bridge: bridge "ke-nobr" does not exist in namespace "ke-a" on root@lab:22: declare it \(a Bridge there, and pass its name output as a\.bridge so that it is made first\) or fix the name\n/,
    'Error: argument "ke-nobr" is wrong: Device does not exist',
  ],
  "veth-bridge-elsewhere": [
    /^a\.bridge: bridge "ke-hostbr" does not exist in namespace "ke-a"/,
    'Error: argument "ke-hostbr" is wrong: Device does not exist',
  ],
  "veth-bridge-not-a-bridge": [
    /^a\.bridge: "ke-v0" in namespace "ke-a" on root@lab:22 is not a bridge: name a Bridge there, or fix a\.bridge\n/,
    "RTNETLINK answers: Operation not supported",
  ],
  "bridge-missing-namespace": [
    /^namespace: namespace "ke-none" does not exist/,
    'Cannot open network namespace "ke-none": No such file or directory',
  ],
  "masquerade-missing-namespace": [
    /^namespace: namespace "ke-none" does not exist/,
    'Cannot open network namespace "ke-none": No such file or directory',
  ],
  "portforward-missing-namespace": [
    /^namespace: namespace "ke-none" does not exist/,
    'Cannot open network namespace "ke-none": No such file or directory',
  ],
};

const captured = (file: string) => JSON.parse(fixture(file)) as Captured;
const failures = fixturesOf("kernel-errors", ".json").filter((f) => captured(f).stderr !== undefined);

describe("kernel/explain: failures captured on a lab host, told as field, value and fix", () => {
  it("has a told form for every captured failure: 7 kinds of kernel message (the 8th, a name taken, the impls tell)", () => {
    const names = failures.map((f) => f.replace(/^kernel-errors\/|\.json$/g, ""));
    assert.deepEqual(names.sort(), Object.keys(TOLD).sort());
    const kinds = new Set(
      failures.map((f) =>
        captured(f)
          .stderr?.split("\n")[0]
          .replace(/"[^"]*"/g, ""),
      ),
    );
    assert.ok(kinds.size >= 7, [...kinds].join("\n"));
  });

  for (const file of failures) {
    const name = file.replace(/^kernel-errors\/|\.json$/g, "");
    it(`${name}: the field, its value and the fix, the kernel's words on one line, no shell text`, () => {
      const c = captured(file);
      const told = explainFailure(
        { host: HOST, command: c.command as string, stderr: c.stderr as string },
        lookupsOf(c),
      );
      assert.ok(told, `not explained; today's message:\n${c.message}`);
      const [starts, said] = TOLD[name];
      assert.match(told, starts);
      const lines = told.split("\n");
      assert.equal(lines.length, 2, told);
      assert.equal(lines[1], `(ip said: ${said})`);
      assert.ok(!told.includes(c.command as string));
      assert.doesNotMatch(told, /printf|-batch|'-n'|Command failed|ip netns exec/);
    });
  }

  it("leaves what it does not know (or what names no field of the resource) to the plain form", () => {
    const unknown = {
      host: HOST,
      command: "ip link set dev x mtu 9000",
      stderr: "RTNETLINK answers: Invalid argument",
    };
    assert.equal(explainFailure(unknown, []), undefined);
    // A device the kernel names that is no field of this resource: its own interface, say.
    const own = { host: HOST, command: "ip -n a link set dev x up", stderr: 'Cannot find device "x"' };
    assert.equal(explainFailure(own, lookup("device", "eth9", "interface", "a")), undefined);
    // Not supported on a line that sets no master: not a bridge problem.
    const other = {
      host: HOST,
      command: "printf '%s\\n' 'link set dev x mtu 70' 'addr show dev x' | ip '-n' a '-batch' '-'",
      stderr: "RTNETLINK answers: Operation not supported\nCommand failed -:1",
    };
    assert.equal(explainFailure(other, lookup("a.bridge", "br0", "bridge", "a")), undefined);
  });

  it("a tool missing on the host names the tool, its package and the fix (dash's and bash's words); an unknown one is left alone", () => {
    // Attacker trial of the dual-stack PodNetwork: a host without ip6tables gave "sh: 5: ip6tables: not found".
    const dash = { host: HOST, command: "ip6tables -w -S", stderr: "sh: 5: ip6tables: not found" };
    assert.match(
      explainFailure(dash, []) ?? "",
      /^root@lab:22 has no ip6tables \(package iptables\), which this step needs: install it there \(apt-get install iptables/,
    );
    const bash = { host: HOST, command: "nft -j list tables", stderr: "bash: line 1: nft: command not found" };
    assert.match(explainFailure(bash, []) ?? "", /has no nft \(package nftables\)/);
    // In a namespace (`ip netns exec NS ip6tables ...`), and the words' line says who said them.
    const inNs = {
      host: HOST,
      command: "ip netns exec pod ip6tables -w -S",
      stderr: 'exec of "ip6tables" failed: No such file or directory',
    };
    assert.equal(
      explainFailure(inNs, []),
      "root@lab:22 has no ip6tables (package iptables), which this step needs: install it there (apt-get install iptables, or your distribution's package), then run up again\n" +
        '(the host said: exec of "ip6tables" failed: No such file or directory)',
    );
    const unknown = { host: HOST, command: "frob", stderr: "sh: 1: frob: not found" };
    assert.equal(explainFailure(unknown, []), undefined);
  });

  it("names the namespace even when no field holds it, and cuts a long stderr to one short line", () => {
    const long = `Cannot open network namespace "zz": No such file or directory\n${"x".repeat(500)}`;
    const told = explainFailure({ host: HOST, command: "ip -n zz link show", stderr: long }, []) ?? "";
    assert.match(told, /^namespace "zz" does not exist on root@lab:22: declare it \(a Namespace\) or fix the name\n/);
    assert.ok(told.split("\n")[1].length <= 320, told);
  });

  it("with both ends naming one bridge, blames the end whose namespace the failed command acts in", () => {
    // The captured failures, with a second end in another namespace naming the same bridge.
    const ends = (c: Captured) => ({
      ...c,
      inputs: {
        a: { name: "va", namespace: "red", bridge: c.inputs.a.bridge },
        b: { name: "vb", namespace: "blue", bridge: c.inputs.a.bridge },
      },
    });
    const missing = ends(captured("kernel-errors/veth-missing-bridge.json"));
    const notABridge = ends(captured("kernel-errors/veth-bridge-not-a-bridge.json"));
    const bridge = missing.inputs.a.bridge as string;
    const other = notABridge.inputs.a.bridge as string;
    // End b's batch runs in blue, where the bridge is missing (it exists only in red).
    const inBlue = (c: Captured) => (c.command as string).replaceAll("ke-x0", "vb").replaceAll("ke-a", "blue");
    const told = explainFailure(
      { host: HOST, command: inBlue(missing), stderr: missing.stderr as string },
      lookupsOf(missing),
    );
    assert.match(
      told ?? "",
      new RegExp(
        `^b\\.bridge: bridge "${bridge}" does not exist in namespace "blue" on root@lab:22: .* as b\\.bridge `,
      ),
    );
    const toldNot = explainFailure(
      { host: HOST, command: inBlue(notABridge), stderr: notABridge.stderr as string },
      lookupsOf(notABridge),
    );
    assert.match(
      toldNot ?? "",
      new RegExp(
        `^b\\.bridge: "${other}" in namespace "blue" on root@lab:22 is not a bridge: name a Bridge there, or fix b\\.bridge\n`,
      ),
    );
    // The same failure from end a's batch (in red) still blames a.bridge.
    const inRed = (missing.command as string).replaceAll("ke-a", "red");
    assert.match(
      explainFailure({ host: HOST, command: inRed, stderr: missing.stderr as string }, lookupsOf(missing)) ?? "",
      /^a\.bridge: bridge "ke-nobr" does not exist in namespace "red"/,
    );
    // A command that cannot tell them apart names both, and both places.
    assert.match(
      explainFailure({ host: HOST, command: "true", stderr: missing.stderr as string }, lookupsOf(missing)) ?? "",
      /^a\.bridge or b\.bridge: bridge "ke-nobr" does not exist in namespace "red" or namespace "blue"/,
    );
  });
});
