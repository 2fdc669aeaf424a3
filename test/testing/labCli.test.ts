import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { LAB_STATE_DIR, type LabHostState, readLabState, stopLabByName } from "../../provider/testing";

const REPO = path.resolve(__dirname, "../..");
const CLI = path.join(REPO, "provider/testing/labCli.ts");

function runCli(args: string[]) {
  return spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", CLI, ...args], {
    cwd: REPO,
    encoding: "utf8",
    timeout: 60000,
  });
}

/** Every process of this machine whose network namespace is `netNs` (a `net:[...]` link). */
function processesIn(netNs: string): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readlinkSync(`/proc/${entry}/ns/net`) === netNs) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Files under the state directory, relative to it (segments/ included). */
function stateFiles(dir = LAB_STATE_DIR, prefix = ""): string[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) =>
    e.isDirectory() ? stateFiles(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
  );
}

/**
 * What of this test is on the machine: links, state records and lab
 * directories naming its labs. Other agents' labs come and go meanwhile on a
 * shared machine, so only traces of this test's own labs are compared.
 */
function hostTraces(names: string[], states: LabHostState[]): string[] {
  const links = (
    JSON.parse(spawnSync("ip", ["-j", "link", "show"], { encoding: "utf8" }).stdout) as Array<{ ifname: string }>
  )
    .map((l) => l.ifname)
    .filter((n) => states.some((s) => s.rootVeth === n));
  const records = stateFiles().filter((f) => {
    const text = fs.readFileSync(path.join(LAB_STATE_DIR, f), "utf8");
    return names.some((n) => text.includes(`"${n}"`));
  });
  const dirs = states.map((s) => s.dir).filter((d) => fs.existsSync(d));
  return [...links.map((l) => `link ${l}`), ...records.map((r) => `record ${r}`), ...dirs.map((d) => `dir ${d}`)];
}

describe("testing/labCli: link detached labs", function () {
  this.timeout(180_000);
  const names = ["a", "b"].map((x) => `clilink-${x}-${process.pid}`);

  after(async () => {
    for (const n of names) await stopLabByName(n);
  });

  it("start two labs, link them, A pings B's segment address, stop both: nothing of them is left", () => {
    const before = hostTraces(names, []);
    for (const n of names) {
      const r = runCli(["start", "--name", n]);
      assert.equal(r.status, 0, r.stderr);
    }
    const states = names.map((n) => readLabState(n) as LabHostState);

    const linked = runCli(["link", "--labs", names.join(","), "--subnet", "192.0.2.0/24"]);
    assert.equal(linked.status, 0, `link failed: ${linked.stderr}`);
    const segment = JSON.parse(linked.stdout) as {
      subnet: string;
      device: string;
      members: Array<{ lab: string; address: string; cidr: string }>;
    };
    assert.deepEqual(segment.members, [
      { lab: names[0], address: "192.0.2.1", cidr: "192.0.2.1/24" },
      { lab: names[1], address: "192.0.2.2", cidr: "192.0.2.2/24" },
    ]);
    assert.equal(segment.device, "eth1");
    const records = fs.readdirSync(path.join(LAB_STATE_DIR, "segments"));
    const record = records
      .map((f) => JSON.parse(fs.readFileSync(path.join(LAB_STATE_DIR, "segments", f), "utf8")))
      .find((s) => s.members.some((m: { lab: string }) => m.lab === names[0]));
    assert.ok(record, "no segment record names the labs");
    assert.ok(processesIn(record.netNs).length > 0, "the switch died with the CLI process");

    // From inside lab A (its namespaces, as the lab's own shell would) to B's address on the segment.
    const ping = spawnSync(
      "nsenter",
      ["-t", String(states[0].holderPid), "-n", "-m", "--", "ping", "-c", "1", "-W", "2", "192.0.2.2"],
      { encoding: "utf8" },
    );
    assert.equal(ping.status, 0, `a -> b: ${ping.stdout}${ping.stderr}`);

    // Linked a second time on the same device: refused with a non-zero status, naming the device, and no
    // record of a dead switch left behind (attacker round 2: exit 0, silent, a stale record).
    const again = runCli(["link", "--labs", names.join(","), "--subnet", "192.0.2.0/24"]);
    assert.notEqual(again.status, 0, `the second link succeeded: ${again.stdout}`);
    assert.match(again.stderr, /eth1/);
    const after = fs.readdirSync(path.join(LAB_STATE_DIR, "segments"));
    assert.deepEqual(after.sort(), records.sort(), "a second segment record was left");

    const stopA = runCli(["stop", names[0]]);
    assert.equal(stopA.status, 0, stopA.stderr);
    assert.match(stopA.stdout, new RegExp(`stopped lab ${names[0]}`));
    assert.match(stopA.stdout, /removed segment 192\.0\.2\.0\/24 \(eth1\):/);
    assert.deepEqual(processesIn(record.netNs), [], "the switch namespace is still held after its lab stopped");
    const stopB = runCli(["stop", names[1]]);
    assert.equal(stopB.status, 0, stopB.stderr);
    assert.match(stopB.stdout, new RegExp(`stopped lab ${names[1]}`));

    assert.deepEqual(hostTraces(names, states), before);
  });

  it("link refuses a lab that is not running, naming it", () => {
    const r = runCli(["link", "--labs", `nosuch-${process.pid},other-${process.pid}`]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, new RegExp(`labs: no lab host named "?nosuch-${process.pid}"?`));
  });
});
