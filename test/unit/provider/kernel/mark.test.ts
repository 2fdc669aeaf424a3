import { strict as assert } from "node:assert";
import { isOurLink, markOf, refuseMarkedLink } from "../../../../provider/kernel/mark";

describe("kernel/mark: whose a link is", () => {
  const made = { ifindex: 7, mac: "02:00:00:00:00:07" };

  it("ours by our mark, or (no mark on it: state from before marks, a retained object) by the ifindex and MAC recorded", () => {
    const mark = markOf("bridge", "ab12");
    assert.equal(isOurLink({ ...made, ifalias: mark }, { mark }), true);
    assert.equal(isOurLink({ ...made }, { ...made }), true);
    assert.equal(isOurLink({ ...made, ifindex: 8 }, { ...made }), false);
  });

  it("never ours when it carries another resource's mark, whatever the ifindex and MAC (attacker: a retained bridge adopted by another stack, then its retain turned off: both stacks deleted it)", () => {
    const other = markOf("bridge", "cd34");
    assert.equal(isOurLink({ ...made, ifalias: other }, { ...made, mark: markOf("bridge", "ab12") }), false);
    assert.equal(isOurLink({ ...made, ifalias: other }, { ...made }), false);
    // A user's own alias is no mark: the ifindex and MAC still tell.
    assert.equal(isOurLink({ ...made, ifalias: "uplink to the lab" }, { ...made }), true);
  });

  it("turning retainOnDelete off refuses a link another resource marked meanwhile, naming the option and the command that clears the mark", () => {
    assert.throws(
      () => refuseMarkedLink("bridge", "rbr", undefined, "root@lab:22", markOf("bridge", "cd34"), "retainOnDelete"),
      /^Error: retainOnDelete: bridge rbr on root@lab:22 already belongs to another pulumi-netns resource \(its mark "pulumi-netns:bridge\/cd34".*retainOnDelete turned off would make this resource its owner again.*ip link set dev rbr alias ""$/,
    );
    refuseMarkedLink("bridge", "rbr", undefined, "root@lab:22", "", "retainOnDelete");
  });
});
