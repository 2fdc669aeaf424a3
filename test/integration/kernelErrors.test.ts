import { strict as assert } from "node:assert";
import type { LabHost, OperationResult, PulumiStack } from "../../provider/testing";
import { testingKit, writeProgram } from "../support/harness";
import { program } from "./programs";
import { labConfig, netnsList } from "./support";

/**
 * What `pulumi up` shows when the host refuses a change: the field, its value
 * and the fix, plus the kernel's own words on one line; never the shell text
 * the provider sent. One program, one `up`: every failing resource fails on
 * its own (PULUMI_CONTINUE_ON_ERROR), the namespace "mgmt" and a pair that is
 * down are the only things it makes.
 */
const PROGRAM = program(`
const mgmt = new netns.Namespace("mgmt", { connection, name: "mgmt" });
const down = new netns.VethPair("down", {
  connection,
  a: { name: "down0", namespace: mgmt.name, up: false },
  b: { name: "down1", namespace: mgmt.name, up: false },
});
new netns.Route("no-namespace", { connection, namespace: "dbb", destination: "10.70.0.0/24", via: "10.60.0.254" });
new netns.Route("gateway", { connection, namespace: mgmt.name, destination: "10.71.0.0/24", via: "10.55.0.1" });
new netns.Route("no-device", { connection, namespace: mgmt.name, destination: "10.72.0.0/24", device: "eth9" });
new netns.Route("device-down", { connection, namespace: mgmt.name, destination: "10.73.0.0/24", device: down.a.name });
new netns.VethPair("peer-nowhere", {
  connection,
  a: { name: "ke-a0", namespace: mgmt.name },
  b: { name: "ke-b0", namespace: "nowhere" },
});
new netns.VethPair("no-bridge", {
  connection,
  a: { name: "ke-a1", namespace: mgmt.name, bridge: "br-missing" },
  b: { name: "ke-b1", namespace: mgmt.name },
});
new netns.VethPair("not-a-bridge", {
  connection,
  a: { name: "ke-a2", namespace: mgmt.name, bridge: down.b.name },
  b: { name: "ke-b2", namespace: mgmt.name },
});
new netns.Bridge("bridge-nowhere", { connection, name: "br0", namespace: "nowhere" });
new netns.MasqueradeRule("masq-nowhere", { connection, namespace: "nowhere", source: "10.60.0.0/24" });
new netns.PortForward("forward-nowhere", {
  connection,
  namespace: "nowhere",
  hostPort: 8080,
  toAddress: "10.60.0.2",
  toPort: 80,
});
`);

/** Per failing resource: what its error must say (the kernel's words on a line of their own). */
const EXPECTED: Record<string, RegExp[]> = {
  "no-namespace": [
    /namespace: namespace "dbb" does not exist on \S+: declare it .*or fix the name/,
    /^\(ip said: Cannot open network namespace "dbb": No such file or directory\)$/m,
  ],
  gateway: [
    /via: 10\.55\.0\.1 is not in a subnet connected in namespace "mgmt" on \S+/,
    /^\(ip said: Error: Nexthop has invalid gateway\.\)$/m,
  ],
  "no-device": [
    /device: interface "eth9" does not exist in namespace "mgmt" on \S+/,
    /^\(ip said: Cannot find device "eth9"\)$/m,
  ],
  "device-down": [
    /device: interface "down0" is down in namespace "mgmt" on \S+: bring it up/,
    /^\(ip said: Error: Device for nexthop is not up\.\)$/m,
  ],
  "peer-nowhere": [
    /b\.namespace: namespace "nowhere" does not exist on \S+/,
    /^\(ip said: Error: argument "nowhere" is wrong: Invalid "netns" value\)$/m,
  ],
  "no-bridge": [
    /a\.bridge: bridge "br-missing" does not exist in namespace "mgmt" on \S+/,
    /^\(ip said: Error: argument "br-missing" is wrong: Device does not exist\)$/m,
  ],
  "not-a-bridge": [
    /a\.bridge: "down1" in namespace "mgmt" on \S+ is not a bridge/,
    /^\(ip said: RTNETLINK answers: Operation not supported\)$/m,
  ],
  "bridge-nowhere": [/namespace: namespace "nowhere" does not exist on \S+/, /^\(ip said: Cannot open network/m],
  "masq-nowhere": [/namespace: namespace "nowhere" does not exist on \S+/, /^\(ip said: Cannot open network/m],
  "forward-nowhere": [/namespace: namespace "nowhere" does not exist on \S+/, /^\(ip said: Cannot open network/m],
};

/** Shell text the provider sends: none of it may reach the user. */
const SCRIPT_TEXT = /printf |-batch|'-n'|--pulumi-netns|ip netns exec|iptables '-w'|\$\(|; then /;

describe("kernel errors through the real Pulumi engine: field, value and fix, not the script", function () {
  this.timeout(300_000);
  let lab: LabHost;
  let stack: PulumiStack;
  let pristine = "";
  let result: OperationResult;
  const log: string[] = [];

  before(async () => {
    const kit = testingKit();
    lab = await kit.startLabHost({ name: `it-kerr-${process.pid}` });
    pristine = await kit.fingerprint(lab);
    stack = new kit.PulumiStack({
      programDir: writeProgram("kernel-errors", PROGRAM),
      config: labConfig(lab),
      log: (l) => log.push(l),
      env: { PULUMI_CONTINUE_ON_ERROR: "true" },
    });
  });

  after(async () => {
    if (stack) await stack.destroy().catch(() => undefined);
    if (lab) await lab.stop();
  });

  it("each failing resource says its field, value and fix, with the kernel's words and without the script", async () => {
    result = await stack.up();
    assert.equal(result.ok, false);
    const failed = result.steps.filter((s) => s.failed).map((s) => s.urn.split("::").pop());
    assert.deepEqual(failed.sort(), Object.keys(EXPECTED).sort(), JSON.stringify(result.steps));
    for (const [name, patterns] of Object.entries(EXPECTED)) {
      const errors = result.diagnostics
        .filter((d) => d.severity === "error" && d.urn?.endsWith(`::${name}`))
        .map((d) => d.message)
        .join("\n");
      for (const p of patterns) assert.match(errors, p, `${name}:\n${errors}`);
      assert.doesNotMatch(errors, SCRIPT_TEXT, `${name} shows shell text:\n${errors}`);
    }
    const shown = log.join("\n");
    assert.doesNotMatch(shown, SCRIPT_TEXT, `the CLI output shows shell text:\n${shown}`);
  });

  it("leaves nothing half-made: only mgmt and its pair exist, and destroy restores the host", async () => {
    assert.ok(result, "the up above ran");
    assert.deepEqual(await netnsList(lab), ["mgmt"]);
    const veths = JSON.parse(
      (await lab.exec(["ip", "-j", "link", "show", "type", "veth"], { namespace: "mgmt" })).stdout,
    );
    assert.deepEqual(veths.map((l: { ifname: string }) => l.ifname).sort(), ["down0", "down1"]);
    const hostBridges = (await lab.exec(["ip", "-j", "link", "show", "type", "bridge"])).stdout.trim();
    assert.deepEqual(JSON.parse(hostBridges || "[]"), []);
    const d = await stack.destroy();
    assert.ok(d.ok, d.error);
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });

  it("IPv6 disabled on the host: a Bridge's IPv6 address is refused naming the address, the device and the sysctl, and nothing is left", async () => {
    // Trials of the dual-stack PodNetwork: the kernel's "IPv6 is disabled on this device" came with the whole ip batch.
    const sysctl = "/proc/sys/net/ipv6/conf/default/disable_ipv6";
    await lab.exec(["sh", "-c", `echo 1 > ${sysctl}`]);
    const v6off = new (testingKit().PulumiStack)({
      programDir: writeProgram(
        "kernel-errors-v6off",
        program(`new netns.Bridge("br6off", { connection, name: "br6off", addresses: ["fd00:99::1/64"] });`),
      ),
      config: labConfig(lab),
      log: (l) => log.push(l),
    });
    try {
      const up = await v6off.up();
      assert.equal(up.ok, false, "the bridge was made with IPv6 disabled");
      const errors = up.diagnostics
        .filter((d) => d.severity === "error")
        .map((d) => d.message)
        .join("\n");
      assert.match(
        errors,
        /fd00:99::1\/64: IPv6 is disabled on "br6off" in the host namespace on \S+ \(net\.ipv6\.conf\.br6off\.disable_ipv6 is 1.*sysctl -w net\.ipv6\.conf\.br6off\.disable_ipv6=0/,
        errors,
      );
      assert.doesNotMatch(errors, SCRIPT_TEXT, errors);
    } finally {
      await lab.exec(["sh", "-c", `echo 0 > ${sysctl}`]);
      await v6off.destroy().catch(() => undefined);
    }
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });
});
