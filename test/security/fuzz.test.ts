import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { runScript } from "../../provider/impl/executor";
import * as namespace from "../../provider/impl/namespace";
import * as vethPair from "../../provider/impl/vethPair";
import { addNamespace, deleteNamespace } from "../../provider/kernel/netns";
import { sequence } from "../../provider/kernel/script";
import { quote } from "../../provider/shell";
import { type LabHost, startLabHost } from "../../provider/testing/labHost";
import { closeAllRemotes, openRemote, type Remote } from "../../provider/transport";
import { interfaceName, ipv4Interface, namespaceName } from "../../provider/validate";
import { countEvents } from "./support";

describe("security: quote() round-trips any string through a real /bin/sh", () => {
  it("prints back exactly what was quoted (500 generated strings, incl. quotes, $, `, newlines, dashes)", () => {
    const awkward = fc.constantFrom(
      "'",
      '"',
      "$",
      "`",
      "\\",
      "\n",
      "-",
      "*",
      "?",
      "~",
      "!",
      ";",
      "&",
      "|",
      " ",
      "\t",
      "é",
      "$(id)",
    );
    const words = fc
      .array(fc.oneof(fc.string({ unit: "grapheme" }), awkward, fc.string()), { minLength: 1, maxLength: 6 })
      .map((parts) => parts.join("").replace(/\0/g, ""));
    fc.assert(
      fc.property(fc.array(words, { minLength: 1, maxLength: 4 }), (argv) => {
        const script = `for a in ${argv.map(quote).join(" ")}; do printf '%s\\0' "$a"; done`;
        const out = execFileSync("/bin/sh", ["-c", script], { encoding: "utf8" });
        assert.deepEqual(out.split("\0").slice(0, -1), argv);
      }),
      { numRuns: 500 },
    );
  });
});

/** Interface names as users write them, and awkward ones the kernel must take verbatim. */
const ifName = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/),
  fc.constantFrom(
    "veth-red",
    "a",
    "0",
    "a..b",
    "A.B_C-9",
    "x".repeat(15),
    "1.2",
    "lo",
    "all",
    "-a",
    "a b",
    "$(id)",
    "help",
    "dev",
    "name",
    "type",
    "up",
    "master",
    "nomaster",
    "address",
  ),
  fc.string({ maxLength: 17 }),
);
const nsName = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/),
  fc.constantFrom("red", "0", "a..b", "n".repeat(64), "..", "a/b", "-n", ".x"),
  fc.string({ maxLength: 66 }),
);
const octet = fc.integer({ min: 0, max: 255 });
const cidr = fc.oneof(
  fc
    .tuple(octet, octet, octet, octet, fc.integer({ min: 1, max: 32 }))
    .map(([a, b, c, d, p]) => `${a}.${b}.${c}.${d}/${p}`),
  fc.constantFrom(
    "255.255.255.255/32",
    "192.168.15.0/24",
    "192.168.15.255/24",
    "1.2.3.4/1",
    "10.0.0.1/08",
    "0.0.0.0/8",
    "fe80::1/64",
    "1.2.3.4",
  ),
);

describe("security: whatever passes validation round-trips exactly on a lab host (fast-check)", function () {
  this.timeout(300_000);
  let lab: LabHost;
  let remote: Remote;
  const traceFile = path.join(os.tmpdir(), `pulumi-netns-fuzz-${process.pid}.jsonl`);
  const saved = process.env.PULUMI_NETNS_TRACE;
  const counts = { valid: 0, invalid: 0 };

  before(async () => {
    lab = await startLabHost({ name: `sec-fuzz-${process.pid}` });
    process.env.PULUMI_NETNS_TRACE = traceFile;
    remote = await openRemote({ ...lab.connection });
  });

  after(async () => {
    closeAllRemotes();
    if (saved === undefined) delete process.env.PULUMI_NETNS_TRACE;
    else process.env.PULUMI_NETNS_TRACE = saved;
    fs.rmSync(traceFile, { force: true });
    if (lab) await lab.stop();
  });

  const json = async (argv: string[], namespace?: string) =>
    JSON.parse((await lab.exec(argv, { namespace })).stdout || "[]");

  it("namespace names: valid ones exist under exactly that name, invalid ones send nothing", async () => {
    await fc.assert(
      fc.asyncProperty(nsName, async (name) => {
        // Counted around the resource's own check: whatever it sends for an invalid name shows here.
        const before = countEvents(traceFile, "command");
        const checked = await namespace.check({}, { connection: { ...lab.connection }, name });
        if (checked.failures) {
          counts.invalid++;
          assert.notEqual(namespaceName(name), undefined, JSON.stringify(checked.failures));
          assert.equal(countEvents(traceFile, "command"), before, "an invalid name reached the transport");
          return;
        }
        assert.equal(namespaceName(name), undefined, `check accepted ${JSON.stringify(name)}`);
        counts.valid++;
        await runScript(remote, addNamespace(name, true));
        const names = (await json(["ip", "-j", "netns", "list"])).map((n: { name: string }) => n.name);
        await runScript(remote, sequence(deleteNamespace(name)));
        assert.deepEqual(names, [name]);
      }),
      { numRuns: 60 },
    );
    assert.deepEqual(await json(["ip", "-j", "netns", "list"]), []);
  });

  it("veth pairs: names and addresses that pass check come back from `ip -j` exactly", async () => {
    await lab.exec(["ip", "netns", "add", "fz"]);
    await fc.assert(
      fc.asyncProperty(ifName, ifName, fc.uniqueArray(cidr, { maxLength: 3 }), async (a, b, addresses) => {
        const news = {
          connection: { ...lab.connection },
          a: { name: a, namespace: "fz", addresses },
          b: { name: b },
        };
        // Counted around check: whatever it sends for an invalid value shows here.
        const before = countEvents(traceFile, "command");
        const checked = await vethPair.check({}, news);
        if (checked.failures) {
          counts.invalid++;
          const expectedBad =
            [interfaceName(a), interfaceName(b), ...addresses.map(ipv4Interface)].some(Boolean) || a === b;
          assert.ok(expectedBad, JSON.stringify(checked.failures));
          assert.equal(countEvents(traceFile, "command"), before, "an invalid value reached the transport");
          return;
        }
        counts.valid++;
        const created = await vethPair.create(checked.inputs as vethPair.VethPairInputs);
        try {
          const [end] = await json(["ip", "-j", "addr", "show", "dev", a], "fz");
          assert.equal(end.ifname, a);
          const got = (end.addr_info ?? [])
            .filter((x: { family: string }) => x.family === "inet")
            .map((x: { local: string; prefixlen: number }) => `${x.local}/${x.prefixlen}`);
          assert.deepEqual([...got].sort(), [...addresses].sort());
          const [peer] = await json(["ip", "-j", "link", "show", "dev", b]);
          assert.equal(peer.ifname, b);
          assert.equal(created.outs.a.name, a);
          assert.deepEqual([...created.outs.a.addresses].sort(), [...addresses].sort());
        } finally {
          await vethPair.remove(created.id, created.outs);
        }
      }),
      {
        numRuns: 100,
        // iproute2 keywords and their abbreviations as names ("a" once read as "address").
        examples: [
          ["a", "help", ["10.0.0.1/24"]],
          ["dev", "name", []],
          ["type", "up", ["192.168.15.255/24", "255.255.255.255/32"]],
          ["master", "address", []],
        ],
      },
    );
    assert.deepEqual(await json(["ip", "-j", "link", "show", "type", "veth"], "fz"), []);
  });

  it("generated both valid and invalid values", () => {
    assert.ok(counts.valid >= 20 && counts.invalid >= 10, JSON.stringify(counts));
  });
});
