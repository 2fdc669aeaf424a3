import { strict as assert } from "node:assert";
import { deleteNamespaceWithPeers } from "../../provider/impl/namespace";
import { fingerprint } from "../../provider/testing/fingerprint";
import { openRemote } from "../../provider/transport";
import { suiteLab } from "./support";

describe("impl/namespace: deleting a namespace", function () {
  this.timeout(120_000);
  const { lab, connection: conn } = suiteLab("it-netns");

  it("returns only once the veth peers in the host and in other namespaces are gone", async () => {
    const remote = await openRemote(conn());
    const PAIRS = 40;
    const make = ["ip netns add doomed", "ip netns add other"];
    for (let i = 0; i < PAIRS; i++) make.push(`ip link add hp${i} type veth peer name np${i} netns doomed`);
    make.push("ip -n doomed link add inner type veth peer name outer netns other");
    await remote.run(make.join(" && "));
    await deleteNamespaceWithPeers(remote, "doomed");
    // Asked right away over the same connection: the kernel's asynchronous cleanup must be over.
    const host = JSON.parse((await remote.run("ip -j link show type veth")).stdout || "[]");
    const other = JSON.parse((await remote.run("ip -n other -j link show type veth")).stdout || "[]");
    assert.deepEqual(
      host.map((l: { ifname: string }) => l.ifname).filter((n: string) => n.startsWith("hp")),
      [],
      "the host's peers",
    );
    assert.deepEqual(
      other.map((l: { ifname: string }) => l.ifname),
      [],
      "the peer in another named namespace",
    );
    assert.equal((await remote.run("ip netns list | grep -c doomed", { allowFailure: true })).stdout.trim(), "0");
    await remote.run("ip netns del other");
  });

  it("deletes the veths of a namespace a process still runs in (it outlives ip netns del), peers included", async () => {
    const remote = await openRemote(conn());
    await remote.run("ip netns add busy && ip link add hb0 type veth peer name nb0 netns busy");
    const holder = (await remote.run("ip netns exec busy sleep 31.7 >/dev/null 2>&1 & echo $!")).stdout.trim();
    try {
      await deleteNamespaceWithPeers(remote, "busy");
      const host = JSON.parse((await remote.run("ip -j link show type veth")).stdout || "[]");
      assert.ok(!host.some((l: { ifname: string }) => l.ifname === "hb0"), "the host's peer is gone");
      assert.equal((await remote.run("ip netns list | grep -c busy", { allowFailure: true })).stdout.trim(), "0");
    } finally {
      await remote.run(`kill ${Number(holder)}`, { allowFailure: true });
    }
  });

  it("removes an entry in /var/run/netns that is no namespace any more", async () => {
    const remote = await openRemote(conn());
    await remote.run("touch /var/run/netns/stale");
    await deleteNamespaceWithPeers(remote, "stale");
    assert.equal((await remote.run("[ -e /var/run/netns/stale ]", { allowFailure: true })).code, 1);
  });

  it("is a no-op for a namespace that is already gone: the host is left exactly as it was", async () => {
    const remote = await openRemote(conn());
    // Something that is not ours, for a delete that reaches too far to take with it.
    await remote.run("ip netns add bystander && ip link add by0 type veth peer name by1 netns bystander");
    try {
      const before = await fingerprint(lab());
      await deleteNamespaceWithPeers(remote, "never-made");
      assert.equal(await fingerprint(lab()), before, "the host changed");
    } finally {
      await remote.run("ip netns del bystander", { allowFailure: true });
    }
  });
});
