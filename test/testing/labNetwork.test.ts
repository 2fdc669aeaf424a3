import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import { fingerprint, type LabHost, type LabSegment, linkLabHosts, startLabHost } from "../../provider/testing";
import { segmentAddresses, segmentAddresses6 } from "../../provider/testing/labNetwork";

/** Every process of this machine whose network namespace is `netNs` (a `net:[...]` link). */
function processesIn(netNs: string): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readlinkSync(`/proc/${entry}/ns/net`) === netNs) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** The link names of a lab, from `ip -j link show`. */
async function links(lab: LabHost): Promise<string[]> {
  return (JSON.parse((await lab.exec(["ip", "-j", "link", "show"])).stdout) as Array<{ ifname: string }>).map(
    (l) => l.ifname,
  );
}

/** The IPv4 addresses on a lab's device, from `ip -j addr show`. */
async function addressesOn(lab: LabHost, device: string): Promise<string[]> {
  const r = await lab.exec(["ip", "-j", "-4", "addr", "show", "dev", device]);
  return (JSON.parse(r.stdout) as Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>).flatMap((l) =>
    l.addr_info.map((a) => `${a.local}/${a.prefixlen}`),
  );
}

const ping = (lab: LabHost, address: string) =>
  lab.exec(["ping", "-c", "1", "-W", "2", address], { allowFailure: true });

describe("lab kit: lab hosts that share a network (linkLabHosts)", function () {
  this.timeout(120_000);
  let a: LabHost;
  let b: LabHost;
  let c: LabHost;
  const segments: LabSegment[] = [];

  before(async () => {
    [a, b, c] = await Promise.all(["a", "b", "c"].map((x) => startLabHost({ name: `seg-${x}-${process.pid}` })));
  });

  after(async () => {
    for (const s of segments) await s.remove();
    await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
  });

  it("addresses: the subnet's first usable ones; a subnet too small or not a network is refused naming the field", () => {
    assert.deepEqual(segmentAddresses("192.0.2.0/24", 3), ["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
    assert.throws(
      () => segmentAddresses("192.0.2.0/30", 3),
      /subnet: "192.0.2.0\/30" has 2 usable addresses for 3 labs/,
    );
    assert.throws(() => segmentAddresses("192.0.2.1/24", 2), /subnet: .*host bits set/);
  });

  it("with subnet6, lab i gets the IPv6 subnet's (i+1)-th address, in the kernel's spelling; a bad or small subnet6 is refused by name", () => {
    assert.deepEqual(segmentAddresses6("2001:db8:2::/64", 3), ["2001:db8:2::1", "2001:db8:2::2", "2001:db8:2::3"]);
    assert.throws(
      () => segmentAddresses6("2001:db8:2::/127", 2),
      /subnet6: "2001:db8:2::\/127" is too small for 2 labs/,
    );
    assert.throws(() => segmentAddresses6("2001:db8:2::1/64", 2), /subnet6: .*host bits set/);
    assert.throws(() => segmentAddresses6("192.0.2.0/24", 2), /subnet6: /);
  });

  it("two labs ping each other's eth1 address; remove() leaves each lab's fingerprint as it was and frees the switch namespace", async () => {
    const before = await Promise.all([fingerprint(a), fingerprint(b)]);
    const segment = await linkLabHosts([a, b], { subnet: "192.0.2.0/24" });
    segments.push(segment);
    assert.deepEqual(
      segment.members.map((m) => [m.lab, m.cidr]),
      [
        [a.name, "192.0.2.1/24"],
        [b.name, "192.0.2.2/24"],
      ],
    );
    assert.deepEqual(await addressesOn(a, "eth1"), ["192.0.2.1/24"]);
    assert.deepEqual(await addressesOn(b, "eth1"), ["192.0.2.2/24"]);
    assert.equal((await ping(a, segment.addressOf(b))).code, 0, "a -> b");
    assert.equal((await ping(b, segment.addressOf(a))).code, 0, "b -> a");
    const switchNs = fs.readlinkSync(`/proc/${segment.pid}/ns/net`);

    await segment.remove();
    assert.deepEqual(processesIn(switchNs), [], "the switch namespace is still held");
    assert.equal((await ping(a, "192.0.2.2")).code === 0, false, "a still reaches b");
    assert.deepEqual(await Promise.all([fingerprint(a), fingerprint(b)]), before);
    await segment.remove(); // idempotent
  });

  it("linkLabHosts resolves with every lab's device up with a carrier: a fingerprint taken right away is the link's settled state", async () => {
    // The kernel marks a link's operstate from a work item that needs the RTNL lock; freeing a namespace
    // (another segment's switch, removed meanwhile, as when tests run side by side) holds that lock. A few
    // rounds: the carrier's coming up is a race that one round may win.
    for (let round = 0; round < 5; round++) {
      const other = await linkLabHosts([b, c], { subnet: "198.51.100.64/29", device: "seg2" });
      segments.push(other);
      const freeing = other.remove();
      const segment = await linkLabHosts([a, b, c], { subnet: "192.0.2.0/24" });
      segments.push(segment);
      const states = await Promise.all(
        [a, b, c].map(async (lab) => {
          const [link] = JSON.parse((await lab.exec(["ip", "-j", "link", "show", "dev", "eth1"])).stdout) as Array<{
            operstate: string;
            flags: string[];
          }>;
          return `${lab.name} eth1 ${link.operstate}${link.flags.includes("NO-CARRIER") ? " NO-CARRIER" : ""}`;
        }),
      );
      assert.deepEqual(
        states,
        [a, b, c].map((lab) => `${lab.name} eth1 UP`),
        `round ${round}: when linkLabHosts resolved`,
      );
      await freeing;
      await segment.remove();
    }
  });

  it("a lab's stop() removes the segment: the other labs lose eth1, the switch namespace is freed", async () => {
    const segment = await linkLabHosts([b, c], { subnet: "198.51.100.64/29", device: "seg1" });
    segments.push(segment);
    const switchNs = fs.readlinkSync(`/proc/${segment.pid}/ns/net`);
    assert.ok((await links(b)).includes("seg1"));
    assert.equal((await ping(b, segment.addressOf(c))).code, 0, "b -> c");
    await c.stop();
    assert.ok(!(await links(b)).includes("seg1"), "b kept its end");
    assert.deepEqual(processesIn(switchNs), []);
  });

  it("refuses a device the lab already has, and leaves nothing half-made", async () => {
    const before = await fingerprint(a);
    const segment = await linkLabHosts([a, b]);
    segments.push(segment);
    const againBefore = await fingerprint(a);
    await assert.rejects(linkLabHosts([a, b]), /device: cannot add "eth1" in lab seg-a-\d+: .*already has it/);
    assert.equal(await fingerprint(a), againBefore, "the refused link changed lab a");
    await segment.remove();
    assert.equal(await fingerprint(a), before);
  });
});
