import { strict as assert } from "node:assert";
import { parseDeletion, takenAlong } from "../../../../provider/kernel/netns";

describe("kernel/netns: what a namespace's delete took along", () => {
  const present = "present";
  // `ip -j -n red link show type veth` and `ip -j -n red netns list-id`, one line each.
  const veths = [
    JSON.stringify([
      { ifname: "veth-red", link_index: 7, link_netnsid: 0 },
      { ifname: "veth-rb", link_index: 9, link_netnsid: 1 },
    ]),
    JSON.stringify([{ nsid: 0 }, { nsid: 1, name: "blue" }]),
  ].join("\n");

  it("names each veth and where its peer was, and how to converge", () => {
    const deletion = parseDeletion([present, veths, "", ""], "red");
    const told = takenAlong(deletion, "red", "root@lab:22");
    assert.ok(told);
    assert.match(
      told,
      /^namespace "red" on root@lab:22 took with it veth "veth-red" \(peer in the host namespace\), veth "veth-rb" \(peer in namespace "blue"\)/,
    );
    assert.match(
      told,
      /declare the namespace again if the program no longer does .*, run `pulumi refresh`, then `pulumi up`/,
    );
  });

  // Trial finding F1: the message also came on destroy and on a deliberate removal, where it misleads.
  it("names only the veths still wanted (a VethPair of the program declares them), and nothing when none is", () => {
    const deletion = parseDeletion([present, veths, "", ""], "red");
    const told = takenAlong(deletion, "red", "h", (v) => v === "veth-rb");
    assert.match(told ?? "", /took with it veth "veth-rb" \(peer in namespace "blue"\), and the routes/);
    assert.doesNotMatch(told ?? "", /veth-red"/);
    assert.equal(
      takenAlong(deletion, "red", "h", () => false),
      undefined,
    );
  });

  it("says nothing when the namespace held no veth, or was not there", () => {
    assert.equal(takenAlong(parseDeletion([present, "[]\n[]", "", ""], "red"), "red", "h"), undefined);
    assert.equal(takenAlong(parseDeletion(["", "", "", ""], "red"), "red", "h"), undefined);
  });
});
