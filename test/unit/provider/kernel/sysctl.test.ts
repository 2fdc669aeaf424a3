import { strict as assert } from "node:assert";
import { at } from "../../../../provider/kernel/namespace";
import {
  parseRecords,
  parseSysctls,
  putBackStep,
  switchOnStep,
  writeSysctlStep,
} from "../../../../provider/kernel/sysctl";
import { fixture } from "../../support";

const ROWS: Array<[string, string, Record<string, string>]> = [
  ["a fresh namespace (fixture)", fixture("sysctl/fresh-namespace.txt"), { ipfw: "0", rtlocal: "0" }],
  ["forwarding switched on (fixture)", fixture("sysctl/forwarding-on.txt"), { ipfw: "1", rtlocal: "0" }],
  ["nothing (no sysctl asked for, or the namespace is gone)", "", {}],
  ["a failed cat (empty value): left out", "ipfw=\nrtlocal=1\n", { rtlocal: "1" }],
  ["a value that is not a number: left out", "ipfw=yes\n", {}],
  ["blanks and CRLF around a line", "  ipfw=1\r\n", { ipfw: "1" }],
  ["a key of another shape: left out", "IPFW=1\nip_fw=1\nrt1=1\n", {}],
  ["an error message among the lines", "sh: 1: cannot open /proc/sys/x\nipfw=0\n", { ipfw: "0" }],
  ["the same key twice: the last", "ipfw=0\nipfw=1\n", { ipfw: "1" }],
];

describe("kernel/sysctl: parseSysctls", () => {
  for (const [what, text, expected] of ROWS) it(`reads ${what}`, () => assert.deepEqual(parseSysctls(text), expected));
});

describe("kernel/sysctl: writeSysctlStep", () => {
  for (const bad of ["", "1; reboot", "-1", "1\n", "one"])
    it(`refuses to write ${JSON.stringify(bad)}`, () => {
      assert.throws(() => writeSysctlStep(at("red"), "ipfw", bad), /refusing to write/);
    });
});

describe("kernel/sysctl: forwarding switched on and put back", () => {
  for (const bad of ["", "0; reboot", "1\n"])
    it(`putBackStep and switchOnStep refuse to write ${JSON.stringify(bad)}`, () => {
      assert.throws(() => putBackStep(at("red"), "ip6fw", bad), /refusing to write/);
      assert.throws(() => switchOnStep(at("red"), "ip6fw", true, bad), /refusing to write/);
    });

  it("the owner switching a forwarding switch on first records it and the interfaces whose own forwarding is 1", () => {
    const text = switchOnStep(at(undefined), "ipfw", true, "0");
    assert.ok(text.indexOf("echo was=0") < text.indexOf("echo 1 > /proc/sys/net/ipv4/ip_forward"), text);
    assert.match(text, /\/proc\/sys\/net\/ipv4\/conf\/\$n\/forwarding/);
    assert.match(switchOnStep(at(undefined), "ip6fw", true, "0"), /\/proc\/sys\/net\/ipv6\/conf/);
    // Another owner's record stands: a plain write.
    assert.equal(switchOnStep(at(undefined), "ipfw", false, "0"), writeSysctlStep(at(undefined), "ipfw", "1"));
  });

  it("putting back writes only a changed value (the record's before the claim), then the recorded interfaces", () => {
    const text = putBackStep(at(undefined), "ip6fw", "0");
    assert.match(text, /\[ "\$\(cat \/proc\/sys\/net\/ipv6\/conf\/all\/forwarding\)" = "\$was" \] \|\| echo "\$was" >/);
    assert.ok(text.indexOf('echo "$was"') < text.indexOf('echo 1 > "$p"'), text);
    assert.doesNotMatch(putBackStep(at(undefined), "rtlocal", "0"), /while read/);
  });

  it("reads the records beside the values", () => {
    assert.deepEqual(parseRecords("ipfw=1\nipfw.was=0\nrtlocal=0\nip6fw.was=x\n"), { ipfw: "0" });
    assert.deepEqual(parseSysctls("ipfw=1\nipfw.was=0\n"), { ipfw: "1" });
  });
});
