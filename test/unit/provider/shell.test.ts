import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { command, quote } from "../../../provider/shell";

describe("shell quoting", () => {
  const awkward = [
    "plain",
    "with space",
    "it's",
    "$(touch /tmp/pwned)",
    "`id`",
    "a;b",
    "-n",
    "new\nline",
    "",
    "*",
    "\\",
    '"',
  ];

  for (const word of awkward) {
    it(`passes ${JSON.stringify(word)} to a real /bin/sh as one unchanged argument`, () => {
      const out = execFileSync("/bin/sh", ["-c", `printf '%s\\0' ${quote(word)}`]).toString();
      assert.equal(out, `${word}\0`);
    });
  }

  it("quotes words that would read as options", () => {
    assert.equal(quote("-rf"), "'-rf'");
  });

  it("joins argv with every word quoted", () => {
    const line = command("ip", "netns", "add", "a b");
    const out = execFileSync("/bin/sh", ["-c", `printf '%s|' ${line.replace(/^ip /, "")}`]).toString();
    assert.equal(out, "netns|add|a b|");
  });
});
