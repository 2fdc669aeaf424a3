import { strict as assert } from "node:assert";
import { parseIpJson } from "../../../../provider/kernel/json";
import { fixture, fixturesOf } from "../../support";

describe("kernel/json: parseIpJson", () => {
  const captured = ["ip-link", "ip-addr", "ip-route", "ip-netns", "nft", "tc"].flatMap((tool) =>
    fixturesOf(tool, ".json"),
  );

  for (const file of captured)
    it(`reads the captured ${file} as a list (empty output as none)`, () => {
      const text = fixture(file);
      const parsed = parseIpJson<unknown>(text, file);
      assert.ok(Array.isArray(parsed));
      assert.equal(parsed.length === 0, text.trim() === "" || text.trim() === "[]", `${parsed.length} entries`);
    });

  const edges: Array<[string, string, unknown[]]> = [
    ["nothing (older iproute2 prints no [] for an empty list)", "", []],
    ["blank lines", "  \n\n", []],
    ["an empty list", "[]\n", []],
    ["one object, not a list (nft -j)", '{"nftables":[]}', [{ nftables: [] }]],
    [
      "a list with fields the kernel may add",
      '[{"ifname":"x","new_field":{"a":1}}]',
      [{ ifname: "x", new_field: { a: 1 } }],
    ],
  ];
  for (const [what, text, expected] of edges)
    it(`reads ${what}`, () => assert.deepEqual(parseIpJson(text, "test"), expected));

  it("reads a -batch's output one JSON line per command (deleteNamespace's read)", () => {
    const [veths, ids] = fixture("ip-link/delete-read-batch.jsonl").trim().split("\n");
    const names = parseIpJson<{ ifname: string; link_netnsid?: number }>(veths, "veths").map((v) => v.ifname);
    assert.deepEqual(names, ["ut-vb0", "ut-vb1p", "ut-vb1"]);
    assert.deepEqual(parseIpJson(ids, "ids"), [{ nsid: 0, name: "ut-a" }]);
  });

  it("refuses text that is not JSON, naming what was read and showing at most 200 characters of it", () => {
    const garbage = `Cannot find device "x"${"!".repeat(300)}`;
    assert.throws(
      () => parseIpJson(garbage, "veth end x"),
      (e: Error) =>
        e.message.startsWith("cannot parse the JSON of veth end x: Cannot find device") &&
        e.message.length < 260 &&
        !e.message.includes("!".repeat(201)),
    );
  });
});
