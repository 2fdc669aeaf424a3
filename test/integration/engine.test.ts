import { strict as assert } from "node:assert";
import * as path from "node:path";
import type { LabHost, OperationResult, PulumiStack, StackOptions } from "../../provider/testing";
import { rewriteProgram, testingKit, writeProgram } from "../support/harness";
import { traceEvents } from "../support/trace";
import { program } from "./programs";
import { labConfig, netnsList, ok, ping } from "./support";

/**
 * What only the real Pulumi engine does with these resources: replacing
 * dependents, deletedWith, retainOnDelete, protect, aliases, --target,
 * --parallel, an interrupted update, and refresh. Every check reads the lab
 * host's kernel (ip -j) besides the engine's own report.
 */

interface IpLink {
  ifname: string;
  ifindex: number;
  link_netnsid?: number;
  addr_info?: Array<{ family: string; local: string; prefixlen: number }>;
}

interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
}

/** `ip -j addr show` in a namespace (absent: the lab host's own); [] when the namespace does not exist. */
async function links(lab: LabHost, namespace?: string): Promise<IpLink[]> {
  const r = await lab.exec(["ip", "-j", "addr", "show"], { namespace, allowFailure: true });
  return r.code === 0 && r.stdout.trim() ? JSON.parse(r.stdout) : [];
}

async function link(lab: LabHost, name: string, namespace?: string): Promise<IpLink | undefined> {
  return (await links(lab, namespace)).find((l) => l.ifname === name);
}

const ipv4 = (l: IpLink | undefined) =>
  (l?.addr_info ?? []).filter((a) => a.family === "inet").map((a) => `${a.local}/${a.prefixlen}`);

async function routes(lab: LabHost, namespace: string): Promise<IpRoute[]> {
  const r = await lab.exec(["ip", "-j", "route", "show"], { namespace, allowFailure: true });
  return r.code === 0 && r.stdout.trim() ? JSON.parse(r.stdout) : [];
}

/** The lab's named namespaces, sorted. */
const namespaces = async (lab: LabHost) => (await netnsList(lab)).sort();

/** Every veth anywhere on the lab host (its own namespace and every named one), as "namespace/ifname". */
async function allVeths(lab: LabHost): Promise<string[]> {
  const out: string[] = [];
  for (const ns of [undefined, ...(await netnsList(lab))]) {
    const r = await lab.exec(["ip", "-j", "link", "show", "type", "veth"], { namespace: ns, allowFailure: true });
    if (r.code === 0 && r.stdout.trim())
      for (const l of JSON.parse(r.stdout) as IpLink[]) out.push(`${ns ?? "(host)"}/${l.ifname}`);
  }
  return out.sort();
}

/** The remote commands of a PULUMI_NETNS_TRACE file, with their start and end times. */
function commands(file: string): Array<{ command: string; start: number; end: number }> {
  return traceEvents(file)
    .filter((e) => e.event === "command")
    .map((e) => ({ command: String(e.command), start: Number(e.t) - Number(e.ms), end: Number(e.t) }));
}

/** The steps of the provider's resources (not the stack's or components'), as "op name". */
const providerSteps = (r: OperationResult) =>
  r.steps.filter((s) => s.type.startsWith("pulumi-nodejs:dynamic/")).map((s) => `${s.op} ${s.urn.split("::").pop()}`);

/** The provider's steps that changed something, sorted. */
const changed = (r: OperationResult) =>
  providerSteps(r)
    .filter((x) => !x.startsWith("same "))
    .sort();

/** The most remote commands that were running at one moment. */
function concurrency(cs: Array<{ start: number; end: number }>): number {
  const edges = cs.flatMap((c) => [
    { t: c.start, d: 1 },
    { t: c.end, d: -1 },
  ]);
  // An end and a start at the same millisecond do not overlap: ends first.
  edges.sort((x, y) => x.t - y.t || x.d - y.d);
  let now = 0;
  let most = 0;
  for (const e of edges) {
    now += e.d;
    most = Math.max(most, now);
  }
  return most;
}

/** The provider resources in a stack's state, by name. */
async function inState(stack: PulumiStack): Promise<string[]> {
  const resources: Array<{ urn: string; type: string }> = (await stack.exportState()).deployment.resources ?? [];
  return resources
    .filter((r) => r.type.startsWith("pulumi-nodejs:dynamic/"))
    .map((r) => r.urn.split("::").pop() as string)
    .sort();
}

/** One lab host, one program and its stack per describe; the lab is stopped whatever happened. */
function labSuite(
  name: string,
  source: string,
  extra: Partial<StackOptions> = {},
): {
  lab: () => LabHost;
  stack: () => PulumiStack;
  traceFile: () => string;
  log: string[];
  /** The veths on the lab host that it did not have when it started, as "namespace/ifname". */
  veths: () => Promise<string[]>;
  /** Another PulumiStack on the same program and stack (other options). */
  same: (opts: Partial<StackOptions>) => PulumiStack;
} {
  let lab: LabHost | undefined;
  let stack: PulumiStack | undefined;
  let dir = "";
  let own: string[] = [];
  const log: string[] = [];
  before(async () => {
    const kit = testingKit();
    lab = await kit.startLabHost({ name: `it-engine-${name}-${process.pid}`.slice(0, 32) });
    own = await allVeths(lab);
    dir = writeProgram(`engine-${name}`, source);
    stack = suite.same(extra);
  });
  // Stopping the lab host removes whatever the stack still has there (its
  // namespaces, links and rules live in the lab's network namespace), whether
  // or not the test got as far as its destroy.
  after(async () => {
    if (lab) await lab.stop();
  });
  const suite = {
    lab: () => lab as LabHost,
    stack: () => stack as PulumiStack,
    traceFile: () => path.join(dir, "commands.jsonl"),
    log,
    veths: async () => (await allVeths(lab as LabHost)).filter((v) => !own.includes(v)),
    same: (opts: Partial<StackOptions>) =>
      new (testingKit().PulumiStack)({
        programDir: dir,
        config: labConfig(lab as LabHost),
        log: (l) => log.push(l),
        env: { PULUMI_NETNS_TRACE: path.join(dir, "commands.jsonl") },
        ...opts,
      }),
  };
  return suite;
}

const NAMESPACE = "pulumi-nodejs:dynamic/netns:Namespace";
const VETH = "pulumi-nodejs:dynamic/netns:VethPair";

/** Remote commands that change something on the host (everything but reads). */
const MUTATING = /\b(add|del|delete|set|replace|flush|change)\b|iptables .*-[ADIF] |sysctl -w|echo [01] >/;

describe("the real Pulumi engine: what only it does, on a lab host", function () {
  this.timeout(300_000);

  describe("replacing a Namespace replaces its dependents in the same up", () => {
    const s = labSuite(
      "replace",
      program(`
const red = new netns.Namespace("red", { connection, name: cfg.get("ns") ?? "red" });
const cable = new netns.VethPair("cable", {
  connection,
  a: { name: "veth-in", namespace: red.name, addresses: ["10.77.0.1/24"] },
  b: { name: "veth-out", addresses: ["10.77.0.2/24", "10.78.0.1/24"] },
});
new netns.Route("far", { connection, namespace: red.name, destination: "10.78.0.0/24", via: "10.77.0.2" }, { dependsOn: [cable] });
`),
    );

    it("renaming the namespace: veth end, its address and the route come back in the new one, in one up; ping works", async () => {
      const lab = s.lab();
      ok(await s.stack().up(), s.log);
      assert.deepEqual(await namespaces(lab), ["red"]);
      assert.equal((await ping(lab, "10.78.0.1", "red")).code, 0, "no ping across before the rename");

      const r = await s.same({ config: { ...labConfig(lab), ns: "green" } }).up();
      ok(r, s.log);
      const steps = providerSteps(r);
      const why = JSON.stringify(steps);
      assert.deepEqual(await namespaces(lab), ["green"], why);
      assert.deepEqual(ipv4(await link(lab, "veth-in", "green")), ["10.77.0.1/24"], why);
      assert.deepEqual(ipv4(await link(lab, "veth-out")), ["10.77.0.2/24", "10.78.0.1/24"], why);
      const far = (await routes(lab, "green")).find((x) => x.dst === "10.78.0.0/24");
      assert.equal(far?.gateway, "10.77.0.2", why);
      assert.equal((await ping(lab, "10.78.0.1", "green")).code, 0, "no ping across after the rename");
      // The namespace's diff asks for delete-before-replace. The engine then
      // asks each dependent's diff with the inputs that come from the namespace
      // unknown, and as they answer "replace", it deletes them before the
      // namespace, and creates them again after it. (Steps are reported as
      // they complete.)
      const deleted = steps.filter((x) => x.startsWith("delete-replaced ")).map((x) => x.split(" ")[1]);
      assert.deepEqual(deleted.slice().sort(), ["cable", "far", "red"], why);
      assert.equal(deleted[2], "red", `the namespace went before a dependent: ${why}`);
      const created = steps.filter((x) => x.startsWith("create-replacement ")).map((x) => x.split(" ")[1]);
      assert.deepEqual(created, ["red", "cable", "far"], why);
    });
  });

  describe("deletedWith and retainOnDelete (one destroy)", () => {
    const s = labSuite(
      "deletedwith",
      program(`
const box = new netns.Namespace("box", { connection, name: "box" });
new netns.VethPair("cable", {
  connection,
  a: { name: "veth-box", namespace: box.name, addresses: ["10.79.0.1/24"] },
  b: { name: "veth-box-h", addresses: ["10.79.0.2/24"] },
}, { deletedWith: box });
const kept = new netns.Namespace("kept", { connection, name: "kept", adopt: true }, { retainOnDelete: true });
export const adopted = kept.adopted;
`),
    );
    let sent: string[] = [];

    before(async () => {
      // The namespace "kept" exists before the stack does: the stack adopts it.
      await s.lab().exec(["ip", "netns", "add", "kept"]);
    });

    it("up adopts the existing namespace; destroy succeeds", async () => {
      const lab = s.lab();
      const up = await s.stack().up();
      ok(up, s.log);
      assert.equal(up.outputs.adopted, true, "the existing namespace was not adopted");
      assert.deepEqual(await namespaces(lab), ["box", "kept"]);
      assert.deepEqual(await s.veths(), ["(host)/veth-box-h", "box/veth-box"]);
      const before = commands(s.traceFile()).length;
      const r = await s.stack().destroy();
      ok(r, s.log);
      sent = commands(s.traceFile())
        .slice(before)
        .map((c) => c.command);
      assert.deepEqual(changed(r), ["delete box", "delete cable", "delete kept"]);
      assert.deepEqual(await inState(s.stack()), []);
    });

    it("deletedWith: the VethPair went with its namespace, without the provider's delete; no link of it remains", async () => {
      // The VethPair's delete is `ip [-n ns] link del dev <end>`; a namespace's only deletes the namespace.
      assert.deepEqual(
        sent.filter((c) => /link del/.test(c)),
        [],
        `the provider deleted the VethPair:\n${sent.join("\n")}`,
      );
      assert.ok(
        sent.some((c) => /netns del.*box/.test(c)),
        sent.join("\n"),
      );
      assert.ok(!(await namespaces(s.lab())).includes("box"));
      assert.deepEqual(await s.veths(), []);
    });

    it("retainOnDelete: the adopted namespace is still there (and out of the state)", async () => {
      assert.ok(!sent.some((c) => /netns del.*kept/.test(c)), sent.join("\n"));
      assert.deepEqual(await namespaces(s.lab()), ["kept"]);
      await s.lab().exec(["ip", "netns", "del", "kept"]);
    });
  });

  describe("protect", () => {
    const s = labSuite(
      "protect",
      program(`
new netns.Namespace("guarded", { connection, name: "guarded" }, { protect: true });
`),
    );

    it("destroy fails and the namespace stays; after `pulumi state unprotect` destroy removes it", async () => {
      const lab = s.lab();
      ok(await s.stack().up(), s.log);
      const r = await s.stack().destroy();
      assert.equal(r.ok, false, "destroy of a protected resource succeeded");
      assert.match(r.error ?? "", /protect/i);
      assert.deepEqual(await namespaces(lab), ["guarded"]);
      assert.deepEqual(await inState(s.stack()), ["guarded"]);
      const urn = s.stack().urn(NAMESPACE, "guarded");
      const un = await s.stack().cli(["state", "unprotect", urn, "--yes", "--stack", s.stack().stackName]);
      assert.equal(un.code, 0, un.stderr);
      ok(await s.stack().destroy(), s.log);
      assert.deepEqual(await namespaces(lab), []);
    });
  });

  describe("aliases", () => {
    const source = (nsName: string, cableName: string, aliased: boolean) =>
      program(`
const ns = new netns.Namespace(${JSON.stringify(nsName)}, { connection, name: "ali" }${aliased ? `, { aliases: [{ name: "ns-old" }] }` : ""});
new netns.VethPair(${JSON.stringify(cableName)}, {
  connection,
  a: { name: "veth-ali", namespace: ns.name, addresses: ["10.80.0.1/24"] },
  b: { name: "veth-ali-h", addresses: ["10.80.0.2/24"] },
}${aliased ? `, { aliases: [{ name: "cable-old" }] }` : ""});
`);
    const s = labSuite("aliases", source("ns-old", "cable-old", false));

    it("renaming resources (not the kernel objects) with aliases changes nothing on the host; state has the new URNs", async () => {
      const lab = s.lab();
      ok(await s.stack().up(), s.log);
      const inside = await link(lab, "veth-ali", "ali");
      const outside = await link(lab, "veth-ali-h");
      assert.ok(inside && outside);
      const before = commands(s.traceFile()).length;
      rewriteProgram(path.dirname(s.traceFile()), source("ns-new", "cable-new", true));
      const r = await s.stack().up();
      ok(r, s.log);
      const sent = commands(s.traceFile())
        .slice(before)
        .map((c) => c.command);
      assert.deepEqual(
        sent.filter((c) => MUTATING.test(c)),
        [],
        `commands that change something were sent:\n${sent.join("\n")}`,
      );
      assert.deepEqual(providerSteps(r).sort(), ["same cable-new", "same ns-new"]);
      assert.equal((await link(lab, "veth-ali", "ali"))?.ifindex, inside.ifindex);
      assert.equal((await link(lab, "veth-ali-h"))?.ifindex, outside.ifindex);
      assert.deepEqual(await namespaces(lab), ["ali"]);
      const urns: string[] = (await s.stack().exportState()).deployment.resources.map((x: { urn: string }) => x.urn);
      assert.ok(urns.includes(s.stack().urn(NAMESPACE, "ns-new")), urns.join("\n"));
      assert.ok(urns.includes(s.stack().urn(VETH, "cable-new")), urns.join("\n"));
      assert.ok(!urns.some((u) => u.endsWith("::ns-old") || u.endsWith("::cable-old")), urns.join("\n"));
    });
  });

  describe("--target", () => {
    const s = labSuite(
      "target",
      program(`
const one = new netns.Namespace("t-one", { connection, name: "t-one" });
new netns.Namespace("t-two", { connection, name: "t-two" });
new netns.VethPair("t-cable", {
  connection,
  a: { name: "veth-t", namespace: one.name },
  b: { name: "veth-t-h" },
});
`),
    );

    it("creates only the target; with targetDependents also what depends on it", async () => {
      const lab = s.lab();
      const one = s.stack().urn(NAMESPACE, "t-one");
      const r1 = await s.stack().up({ target: [one] });
      ok(r1, s.log);
      // What a targeted update leaves out shows as a "same" step (a skipped create).
      assert.deepEqual(changed(r1), ["create t-one"]);
      assert.deepEqual(await namespaces(lab), ["t-one"]);
      assert.deepEqual(await s.veths(), []);
      assert.deepEqual(await inState(s.stack()), ["t-one"]);

      const r2 = await s.stack().up({ target: [one], targetDependents: true });
      ok(r2, s.log);
      assert.deepEqual(changed(r2), ["create t-cable"]);
      assert.deepEqual(await namespaces(lab), ["t-one"]);
      assert.deepEqual(await s.veths(), ["(host)/veth-t-h", "t-one/veth-t"]);
      assert.deepEqual(await inState(s.stack()), ["t-cable", "t-one"]);
    });
  });

  describe("--parallel", () => {
    const s = labSuite(
      "parallel",
      program(`
export const names = Array.from({ length: 10 }, (_, i) => new netns.Namespace(\`p\${i}\`, { connection, name: \`p\${i}\` }).name);
`),
    );
    const names = Array.from({ length: 10 }, (_, i) => `p${i}`);

    it("parallel 1: ten namespaces converge, and no two remote commands ever overlap", async () => {
      const lab = s.lab();
      const before = commands(s.traceFile()).length;
      const r = await s.same({ parallel: 1 }).up();
      ok(r, s.log);
      assert.deepEqual(await namespaces(lab), [...names].sort());
      assert.deepEqual(r.outputs.names, names);
      const sent = commands(s.traceFile()).slice(before);
      assert.equal(sent.filter((c) => /netns add/.test(c.command)).length, 10);
      assert.equal(concurrency(sent), 1, JSON.stringify(sent, null, 1));
      ok(await s.stack().destroy(), s.log);
      assert.deepEqual(await namespaces(lab), []);
    });

    it("the default: the same ten converge, several commands at once", async () => {
      const lab = s.lab();
      const before = commands(s.traceFile()).length;
      const r = await s.stack().up();
      ok(r, s.log);
      assert.deepEqual(await namespaces(lab), [...names].sort());
      assert.deepEqual(r.outputs.names, names);
      // What makes the check above mean something: the same measure sees overlap here.
      const sent = commands(s.traceFile()).slice(before);
      assert.ok(concurrency(sent) > 1, JSON.stringify(sent, null, 1));
    });
  });

  describe("SIGINT in the middle of an up of 50 namespaces", () => {
    const N = 50;
    const names = Array.from({ length: N }, (_, i) => `n${String(i).padStart(2, "0")}`);
    const s = labSuite(
      "sigint",
      program(`
export const names = ${JSON.stringify(names)}.map((n) => new netns.Namespace(n, { connection, name: n }).name);
`),
    );

    it("aborted once some exist; the next up converges, the one after changes nothing, destroy leaves the lab as it was", async () => {
      const kit = testingKit();
      const lab = s.lab();
      const pristine = await kit.fingerprint(lab);
      const abort = new AbortController();
      // Two at a time, so the namespaces come slowly enough to interrupt after a few.
      const running = s.stack().up({ signal: abort.signal, parallel: 2 });
      let finished = false;
      running.finally(() => {
        finished = true;
      });
      while (!finished && !abort.signal.aborted) {
        if ((await namespaces(lab)).length >= 5) abort.abort();
        else await new Promise((r) => setTimeout(r, 50));
      }
      const interrupted = await running;
      assert.ok(abort.signal.aborted, "the up finished before it could be interrupted");
      assert.equal(interrupted.ok, false, "the interrupted up reported success");
      const partial = await namespaces(lab);
      assert.ok(partial.length >= 5 && partial.length < N, `${partial.length} namespaces after the interrupt`);
      // The first SIGINT cancels gracefully: the engine starts no new step,
      // lets the ones in flight finish and records them. So the state holds
      // exactly what exists, with no pending operation: a plain `pulumi up` is
      // what the user runs next. (Only a second SIGINT, or a kill, could leave
      // pending creates; `pulumi refresh --clear-pending-creates`, clearing the
      // owner mark those creates wrote (adopt's refusal gives the command), and
      // an `up` with adopt: true would be the way out of that.)
      const state = await s.stack().exportState();
      assert.deepEqual(state.deployment.pending_operations ?? [], []);
      assert.deepEqual(await inState(s.stack()), partial);

      const up = await s.stack().up();
      ok(up, s.log);
      assert.equal(changed(up).length, N - partial.length);
      assert.deepEqual(await namespaces(lab), [...names].sort());
      assert.deepEqual(up.outputs.names, names);
      const again = await s.stack().up();
      ok(again, s.log);
      assert.deepEqual(changed(again), []);
      ok(await s.stack().destroy(), s.log);
      assert.deepEqual(await namespaces(lab), []);
      assert.deepEqual(await s.veths(), []);
      assert.equal(await kit.fingerprint(lab), pristine);
    });
  });

  describe("drift: refresh, then up", () => {
    const s = labSuite(
      "drift",
      program(`
const d = new netns.Namespace("d", { connection, name: "d" });
const cable = new netns.VethPair("d-cable", {
  connection,
  a: { name: "veth-d", namespace: d.name, addresses: ["10.81.0.1/24"] },
  b: { name: "veth-d-h", addresses: ["10.81.0.2/24", "10.82.0.1/24"] },
});
new netns.Route("d-far", { connection, namespace: d.name, destination: "10.82.0.0/24", via: "10.81.0.2" }, { dependsOn: [cable] });
`),
    );

    it("a veth deleted behind the engine's back (its route goes with it): refresh reports both, up restores them, a second up is a no-op", async () => {
      const lab = s.lab();
      ok(await s.stack().up(), s.log);
      assert.equal((await ping(lab, "10.82.0.1", "d")).code, 0);
      await lab.exec(["ip", "-n", "d", "link", "del", "veth-d"]);
      assert.equal(await link(lab, "veth-d-h"), undefined);
      assert.equal(
        (await routes(lab, "d")).find((x) => x.dst === "10.82.0.0/24"),
        undefined,
      );

      const refreshed = await s.stack().refresh();
      ok(refreshed, s.log);
      const gone = providerSteps(refreshed).filter((x) => x.startsWith("delete "));
      assert.deepEqual(gone.sort(), ["delete d-cable", "delete d-far"], JSON.stringify(refreshed.steps));
      assert.deepEqual(await inState(s.stack()), ["d"]);

      const up = await s.stack().up();
      ok(up, s.log);
      assert.deepEqual(changed(up), ["create d-cable", "create d-far"]);
      assert.deepEqual(ipv4(await link(lab, "veth-d", "d")), ["10.81.0.1/24"]);
      assert.equal((await routes(lab, "d")).find((x) => x.dst === "10.82.0.0/24")?.gateway, "10.81.0.2");
      assert.equal((await ping(lab, "10.82.0.1", "d")).code, 0);

      const again = await s.stack().up();
      ok(again, s.log);
      assert.deepEqual(changed(again), []);
    });
  });
});
