import { strict as assert } from "node:assert";
import * as masq from "../../provider/impl/masqueradeRule";
import { openRemote } from "../../provider/transport";
import { suiteLab } from "./support";

/**
 * Two owners of rule sets on one host, created and destroyed at the same
 * moment (as two stacks would), through the provider's own create and delete:
 * each round must leave ip_forward as it started, and switched on while
 * both exist (issue #10 item 7). Sources in 192.0.2.0/24 (TEST-NET-1).
 */
describe("impl/ruleSet: two owners at once on one host", function () {
  this.timeout(600_000);
  const { connection: conn } = suiteLab("it-race");
  const ROUNDS = Number(process.env.RACE_ROUNDS ?? 30);

  async function inputs(source: string): Promise<masq.MasqueradeRuleInputs> {
    const checked = await masq.check({}, { connection: conn(), source, enableIpForward: true });
    assert.deepEqual(checked.failures ?? [], []);
    return checked.inputs as masq.MasqueradeRuleInputs;
  }

  it(`ip_forward ends as it started in every one of ${ROUNDS} rounds`, async () => {
    const remote = await openRemote(conn());
    const ipForward = async () => (await remote.run("cat /proc/sys/net/ipv4/ip_forward")).stdout.trim();
    assert.equal(await ipForward(), "0");
    const a = await inputs("192.0.2.0/26");
    const b = await inputs("192.0.2.64/26");
    const wrong: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const [ra, rb] = await Promise.all([masq.create(a), masq.create(b)]);
      const during = await ipForward();
      // One goes while the other comes, then the other goes.
      const [, rc] = await Promise.all([masq.remove(ra.id, ra.outs), masq.create(a)]);
      const middle = await ipForward();
      await Promise.all([masq.remove(rb.id, rb.outs), masq.remove(rc.id, rc.outs)]);
      const after = await ipForward();
      if (during !== "1" || middle !== "1" || after !== "0")
        wrong.push(`round ${round}: both ${during}, one replaced ${middle}, none ${after}`);
      if (after !== "0") await remote.run("echo 0 > /proc/sys/net/ipv4/ip_forward");
    }
    const left = (await remote.run("iptables-save | grep -c pulumi-netns/", { allowFailure: true })).stdout.trim();
    assert.equal(left, "0", "rules left behind");
    assert.deepEqual(wrong, [], `${wrong.length} of ${ROUNDS} rounds left ip_forward wrong`);
  });

  it(`the last of three owners leaving at once drops the tables they made and puts ip_forward back, in every one of ${ROUNDS} rounds`, async () => {
    // Each leaver plans from one read and commits only if the host's owner digest is unchanged: a read
    // taken before the digest lets another leaver's commit in between go unseen, and then no one is last.
    const remote = await openRemote(conn());
    const state = async () =>
      (
        await remote.run("{ iptables-save | grep '^[*]' | sort | tr '\\n' ' '; cat /proc/sys/net/ipv4/ip_forward; }")
      ).stdout.trim();
    const start = await state();
    assert.equal(start, "0", "the lab starts with no table and ip_forward 0");
    const owners = [await inputs("192.0.2.0/26"), await inputs("192.0.2.64/26"), await inputs("192.0.2.128/26")];
    const wrong: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const made = await Promise.all(owners.map((o) => masq.create(o)));
      await Promise.all(made.map((m) => masq.remove(m.id, m.outs)));
      const after = await state();
      if (after !== start) {
        wrong.push(`round ${round}: ${after}`);
        await remote.run(
          "nft delete table ip filter 2>/dev/null; nft delete table ip nat 2>/dev/null; echo 0 > /proc/sys/net/ipv4/ip_forward",
        );
      }
    }
    assert.deepEqual(wrong, [], `${wrong.length} of ${ROUNDS} rounds left the host changed`);
  });
});
