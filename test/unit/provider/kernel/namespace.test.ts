import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { at, isPresent } from "../../../../provider/kernel/namespace";

describe("kernel/namespace: where commands run", () => {
  it("runs ip with -n in a named namespace and plainly on the host", () => {
    assert.equal(at("red").ip("link", "show"), "ip '-n' red link show");
    assert.equal(at(undefined).ip("link", "show"), "ip link show");
    assert.equal(at("red").exec("iptables-save"), "ip netns exec red iptables-save");
    assert.equal(at(undefined).exec("iptables-save"), "iptables-save");
  });

  it("runs one batch line as a plain ip, none as true, several through one ip -batch", () => {
    assert.equal(at("red").ipBatch([["link", "set", "dev", "lo", "up"]]), "ip '-n' red link set dev lo up");
    assert.equal(at(undefined).ipBatch([]), "true");
    assert.equal(
      at("red").ipBatch(
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
          at(undefined).ipBatch([
            ["link", "show"],
            ["link", "show", "dev", bad],
          ]),
        /plain token/,
        bad,
      );
  });

  it("tests existence by the namespace's file, quoted; the host's own always exists", () => {
    const sh = (script: string) => execFileSync("/bin/sh", ["-c", script], { encoding: "utf8" });
    assert.equal(at("no-such-ns-x").exists(), "[ -e /var/run/netns/no-such-ns-x ]");
    assert.equal(at("a'b").exists(), `[ -e '/var/run/netns/a'\\''b' ]`);
    assert.equal(isPresent(sh(at("no-such-ns-x").printPresence())), false);
    assert.equal(isPresent(sh(at(undefined).printPresence())), true);
    assert.equal(sh(at("no-such-ns-x").ifExists("echo ran")), "");
    assert.equal(sh(at(undefined).ifExists("echo ran")), "ran\n");
  });
});
