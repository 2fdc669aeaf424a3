import { strict as assert } from "node:assert";
import { ipBatch } from "../../../../provider/kernel/exec";

describe("kernel/exec: ipBatch", () => {
  it("runs one command as a plain ip, none as true, several through one ip -batch", () => {
    assert.equal(ipBatch("red", [["link", "set", "dev", "lo", "up"]]), "ip '-n' red link set dev lo up");
    assert.equal(ipBatch(undefined, []), "true");
    assert.equal(
      ipBatch(
        "red",
        [
          ["link", "set", "dev", "lo", "up"],
          ["addr", "show"],
        ],
        ["-j"],
      ),
      "printf '%s\\n' 'link set dev lo up' 'addr show' | ip '-n' red '-j' '-batch' '-'",
    );
  });

  it("refuses a token ip -batch would split or read as a comment", () => {
    for (const bad of ["a b", "x#y", "'q'", '"q"', "a\nb", "", "$(id)"])
      assert.throws(
        () =>
          ipBatch(undefined, [
            ["link", "show"],
            ["link", "show", "dev", bad],
          ]),
        /plain token/,
        bad,
      );
  });
});
