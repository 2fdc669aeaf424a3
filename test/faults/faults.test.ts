import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import type { LabHost, OperationResult, PulumiStack } from "../../provider/testing";
import { bridged, program } from "../integration/programs";
import { changes, dropSshSessions, labConfig, netnsList, ok, ping, providerCounts } from "../integration/support";
import { testingKit, writeProgram } from "../support/harness";
import { traceEvents } from "../support/trace";

const FULL = { lanRoute: true, nat: true, redDefault: true, portForward: true };
const DYNAMIC = "pulumi-nodejs:dynamic/";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The provider's resources in the stack's state (`pulumi stack export`). */
async function stateResources(stack: PulumiStack): Promise<Array<{ urn: string; type: string }>> {
  const state = await stack.exportState();
  const resources = (state.deployment?.resources ?? []) as Array<{ urn: string; type: string }>;
  return resources.filter((r) => r.type.startsWith(DYNAMIC));
}

/** Trace events grouped by the process that wrote them (each operation runs its own provider host). */
function byProcess(events: Array<Record<string, unknown>>): Map<number, Array<Record<string, unknown>>> {
  const out = new Map<number, Array<Record<string, unknown>>>();
  for (const e of events) {
    const pid = Number(e.pid);
    out.set(pid, [...(out.get(pid) ?? []), e]);
  }
  return out;
}

/**
 * What would show a command's stderr, or a transport failure, to the user: the
 * operation's error and every diagnostic the engine printed (a failed remote
 * command's error carries its stderr; an xtables lock error, a channel-open
 * failure or a dropped connection would be there). The trace's command events
 * carry no stderr, so they cannot show one.
 */
function transportComplaints(r: OperationResult): string[] {
  const texts = [r.error ?? "", ...r.diagnostics.map((d) => `${d.severity}: ${d.message}`)];
  return texts.filter((t) =>
    /xtables|holding the lock|another app|open failure|administratively prohibited|channel closed|exit code null|ECONNRESET|cannot connect/i.test(
      t,
    ),
  );
}

/** Error and warning diagnostics of an operation (a clean run has none). */
const loudDiagnostics = (r: OperationResult) =>
  r.diagnostics.filter((d) => d.severity === "error" || d.severity === "warning");

/**
 * Sockets of this machine's network namespace still connected to host:port
 * (ESTABLISHED or CLOSE_WAIT in /proc/net/tcp): a client that has not yet
 * noticed its server went away keeps its end in CLOSE_WAIT.
 */
function openConnections(host: string, port: number): number {
  const hex = `${host
    .split(".")
    .reverse()
    .map((o) => Number(o).toString(16).padStart(2, "0"))
    .join("")}:${port.toString(16).padStart(4, "0")}`.toUpperCase();
  return fs
    .readFileSync("/proc/net/tcp", "utf8")
    .split("\n")
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[2] === hex && (f[3] === "01" || f[3] === "08")).length;
}

/**
 * Creates rc-a, then the program itself waits (the provider host idle, no
 * command in flight) until the test writes `<gate>/go`, then creates rc-b: one
 * `up`, one provider-host process, with a pause in the middle.
 */
const GATED = program(`
import * as fs from "fs";
const gate = cfg.require("gate");
const a = new netns.Namespace("rc-a", { connection, name: "rc-a" });
const held = a.name.apply(async (name) => {
  if (pulumi.runtime.isDryRun()) return name;
  fs.writeFileSync(gate + "/created", name);
  const deadline = Date.now() + 120_000;
  while (!fs.existsSync(gate + "/go") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return name;
});
const b = new netns.Namespace("rc-b", { connection, name: held.apply(() => "rc-b") });
export const names = [a.name, b.name];
`);

describe("faults: dropped connections, a rebooted host, drift of every kind (real engine)", function () {
  this.timeout(900_000);
  let lab: LabHost;
  let stack: PulumiStack;
  let gated: PulumiStack | undefined;
  let pristine: string;
  const log: string[] = [];

  before(async () => {
    const kit = testingKit();
    lab = await kit.startLabHost({ name: `it-faults-${process.pid}` });
    pristine = await kit.fingerprint(lab);
    const dir = writeProgram("faults", program(bridged(FULL)));
    stack = new kit.PulumiStack({
      programDir: dir,
      config: labConfig(lab),
      log: (l) => log.push(l),
      env: { PULUMI_NETNS_TRACE: path.join(dir, "trace.jsonl") },
    });
  });

  after(async () => {
    if (gated) await gated.destroy().catch(() => undefined);
    if (stack) await stack.destroy().catch(() => undefined);
    if (lab) await lab.stop();
  });

  it("sshd sessions die in the middle of one up: the same provider host reconnects (2nd handshake) and the up succeeds", async () => {
    const kit = testingKit();
    const dir = writeProgram("reconnect", GATED);
    const gate = path.join(dir, "gate");
    fs.mkdirSync(gate);
    const traceFile = path.join(dir, "trace.jsonl");
    gated = new kit.PulumiStack({
      programDir: dir,
      config: { ...labConfig(lab), gate },
      log: (l) => log.push(l),
      env: { PULUMI_NETNS_TRACE: traceFile },
    });
    let finished = false;
    const running = gated.up().finally(() => {
      finished = true;
    });
    let killed = 0;
    let killedAt = 0;
    try {
      while (!finished && !fs.existsSync(path.join(gate, "created"))) await sleep(50);
      if (finished) assert.fail(`up ended before rc-a was created: ${(await running).error}`);
      // rc-a is created; the program holds rc-b back, so no command is in flight now.
      assert.ok(
        openConnections(lab.connection.host, lab.connection.port) >= 1,
        "the provider host keeps its connection open between resources",
      );
      killedAt = Date.now();
      killed = await dropSshSessions(lab);
      assert.ok(killed >= 1, "no sshd session was cut");
      for (let i = 0; i < 200 && openConnections(lab.connection.host, lab.connection.port) > 0; i++) await sleep(50);
      assert.equal(
        openConnections(lab.connection.host, lab.connection.port),
        0,
        "the provider host still holds a connection to the lab's sshd",
      );
    } finally {
      fs.writeFileSync(path.join(gate, "go"), "");
    }
    const up = await running;
    ok(up, log);
    assert.deepEqual((await netnsList(lab)).sort(), ["rc-a", "rc-b"]);
    const procs = byProcess(traceEvents(traceFile));
    assert.equal(procs.size, 1, `one provider host for the whole up, got pids ${[...procs.keys()].join(" ")}`);
    const [events] = [...procs.values()];
    const handshakes = events.filter((e) => e.event === "handshake").map((e) => Number(e.t));
    assert.ok(handshakes.length >= 2, `the provider host should have reconnected: ${JSON.stringify(events)}`);
    assert.ok(
      handshakes.some((t) => t >= killedAt),
      "a handshake after the sessions were cut",
    );
    const after = events.filter((e) => e.event === "command" && Number(e.t) >= killedAt);
    assert.ok(after.length >= 1 && after.every((e) => e.code === 0), JSON.stringify(after));
    ok(await gated.destroy(), log);
    assert.deepEqual(await netnsList(lab), []);
    gated = undefined;
  });

  it("a rebooted host (every namespace, link, rule and sysctl gone): refresh drops all but the host's rule sets, up rebuilds it and traffic flows", async () => {
    ok(await stack.up(), log);
    const custom = (await stateResources(stack)).length;
    assert.equal(custom, 9);
    await lab.exec([
      "sh",
      "-c",
      "ip -all netns delete; ip link del v-net-0; iptables -w -F; iptables -w -t nat -F; nft flush ruleset; echo 0 > /proc/sys/net/ipv4/ip_forward; echo 0 > /proc/sys/net/ipv4/conf/all/route_localnet",
    ]);
    const refreshed = await stack.refresh();
    ok(refreshed, log);
    const dropped = refreshed.steps.filter((s) => s.op === "delete" && s.type.startsWith(DYNAMIC));
    // Rule sets in the host namespace stay, drifted: their recorded originals are kept (issue #10 item 7).
    const rulesKept = refreshed.steps.filter(
      (s) => s.op !== "delete" && /netns:(MasqueradeRule|PortForward)::/.test(s.urn),
    ).length;
    assert.equal(dropped.length + rulesKept, custom, JSON.stringify(refreshed.steps));
    assert.equal((await stateResources(stack)).length, rulesKept);
    const up = await stack.up();
    ok(up, log);
    assert.equal(providerCounts(up).create + providerCounts(up).update, custom, JSON.stringify(up.steps));
    assert.equal((await ping(lab, "192.168.15.2", "red")).code, 0);
    assert.equal((await ping(lab, lab.lan.peerAddress, "blue")).code, 0);
    assert.equal((await ping(lab, lab.lan.internetAddress, "red")).code, 0);
  });

  const drifts: Array<[string, string[], RegExp]> = [
    [
      "an address removed",
      ["ip", "-n", "red", "addr", "del", "192.168.15.1/24", "dev", "veth-red"],
      /VethPair::red-br$/,
    ],
    ["a link set down", ["ip", "-n", "blue", "link", "set", "veth-blue", "down"], /VethPair::blue-br$/],
    ["a port removed from the bridge", ["ip", "link", "set", "veth-red-br", "nomaster"], /VethPair::red-br$/],
    ["the bridge's address removed", ["ip", "addr", "del", "192.168.15.5/24", "dev", "v-net-0"], /Bridge::v-net-0$/],
    ["lo set down in a namespace", ["ip", "-n", "red", "link", "set", "lo", "down"], /Namespace::red$/],
    [
      "ip_forward switched off",
      ["sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward"],
      /MasqueradeRule::nat$|PortForward::web$/,
    ],
    [
      "a port-forward rule deleted",
      [
        "sh",
        "-c",
        "iptables-save -t nat | grep -- '-j DNAT' | grep PREROUTING | sed 's/^-A/-D/' | xargs -L1 iptables -w -t nat",
      ],
      /PortForward::web$/,
    ],
  ];
  for (const [what, cmd, urn] of drifts) {
    it(`drift: ${what} is seen by refresh and repaired by up`, async () => {
      await lab.exec(cmd);
      const refreshed = await stack.refresh();
      ok(refreshed, log);
      // The engine reports a refreshed resource whose state read back differs as an "update" step (gone: "delete").
      const changed = refreshed.steps.filter((s) => s.op === "update" || s.op === "delete");
      assert.ok(
        changed.some((s) => urn.test(s.urn)),
        `refresh should report ${urn}: ${JSON.stringify(refreshed.steps)}`,
      );
      assert.ok(refreshed.counts.update >= 1, JSON.stringify(refreshed.counts));
      const up = await stack.up();
      ok(up, log);
      const repaired = providerCounts(up);
      assert.ok(repaired.update + repaired.create + repaired.replace >= 1, JSON.stringify(up.steps));
      const again = await stack.up();
      ok(again, log);
      assert.equal(changes(again), 0, `after repair, up is a no-op: ${JSON.stringify(again.steps)}`);
      const quiet = await stack.refresh();
      ok(quiet, log);
      assert.equal(
        quiet.counts.update + quiet.counts.delete,
        0,
        `after repair, refresh finds nothing: ${JSON.stringify(quiet.steps)}`,
      );
    });
  }

  it("destroy after all of that leaves the host as it was", async () => {
    ok(await stack.destroy(), log);
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });
});

/** About ten lab stacks' worth of resources on one host. */
function manyNamespaces(count: number): string {
  const names = Array.from({ length: count }, (_, i) => `ns${String(i).padStart(3, "0")}`);
  return program(`
const net = new netns.IsolatedNetwork("many", {
  connection,
  bridge: "v-many",
  subnet: "10.77.0.0/16",
  namespaces: ${JSON.stringify(names.map((name) => ({ name })))},
  outboundNat: true,
});
export const addresses = net.addresses;
`);
}

for (const parallel of [8, 16]) {
  describe(`201 resources on one host with parallelism ${parallel} (real engine)`, function () {
    this.timeout(900_000);
    let lab: LabHost;
    let stack: PulumiStack;
    let traceFile: string;
    let pristine: string;
    const log: string[] = [];
    const COUNT = 66; // 66 x (Namespace + VethPair + Route) + NetworkIsolation + Bridge + MasqueradeRule = 201

    before(async () => {
      const kit = testingKit();
      lab = await kit.startLabHost({ name: `it-many-${parallel}-${process.pid}` });
      pristine = await kit.fingerprint(lab);
      const dir = writeProgram(`many-${parallel}`, manyNamespaces(COUNT));
      traceFile = path.join(dir, "trace.jsonl");
      stack = new kit.PulumiStack({
        programDir: dir,
        parallel,
        config: labConfig(lab),
        log: (l) => log.push(l),
        env: { PULUMI_NETNS_TRACE: traceFile },
      });
    });

    after(async () => {
      if (stack) await stack.destroy().catch(() => undefined);
      if (lab) await lab.stop();
    });

    it("all objects correct; one handshake per provider host; no connection error; no error or warning diagnostic", async () => {
      const up = await stack.up();
      assert.deepEqual(transportComplaints(up), [], "the operation reported a transport or xtables failure");
      ok(up, log);
      assert.deepEqual(loudDiagnostics(up), [], "a clean up prints no error or warning");
      assert.equal(providerCounts(up).create, 201, JSON.stringify(up.counts));
      assert.equal((await stateResources(stack)).length, 201);
      assert.equal((await netnsList(lab)).length, COUNT);
      const ports = JSON.parse((await lab.exec(["ip", "-j", "link", "show", "master", "v-many"])).stdout);
      assert.equal(ports.length, COUNT);
      for (const ns of ["ns000", "ns033", "ns065"]) {
        const routes = JSON.parse((await lab.exec(["ip", "-j", "route", "show", "default"], { namespace: ns })).stdout);
        assert.equal(routes.length, 1, ns);
      }
      const events = traceEvents(traceFile);
      const procs = byProcess(events);
      assert.ok(procs.size >= 1, "the trace is empty");
      for (const [pid, evs] of procs)
        assert.equal(
          evs.filter((e) => e.event === "handshake").length,
          1,
          `one SSH handshake in provider host ${pid} for the whole deployment`,
        );
      assert.deepEqual(
        events.filter((e) => e.event === "connection-error"),
        [],
      );
      assert.deepEqual(
        events.filter((e) => e.event === "command" && e.code === null),
        [],
        "a command whose channel closed",
      );
      assert.equal((await lab.exec(["ping", "-c", "1", "-W", "2", "10.77.0.1"], { namespace: "ns033" })).code, 0);
    });

    it("destroy leaves the host as it was", async () => {
      const down = await stack.destroy();
      ok(down, log);
      assert.equal(providerCounts(down).delete, 201);
      assert.equal(await testingKit().fingerprint(lab), pristine);
    });
  });
}

/**
 * Runs in the lab: waits until a remote shell of an sshd session in the lab's
 * network namespace is running a command (the shell has a child: the
 * command's subshell) and stops that shell (SIGSTOP), so it cannot report the
 * result. If the command runs `ip netns add` or `ip link add` (a create; after
 * 300 sightings of other commands, any command will do), it kills every sshd
 * session process there (SIGKILL); then it lets the shell go on (SIGCONT): the
 * command finishes on the host, its answer is lost. Prints
 * "cut <n> create|other <argv without spaces>".
 * The watch loop forks nothing (dash builtins only) so that it sees commands
 * of a few milliseconds; the list of shells is refreshed every 500 rounds.
 */
const CUT_WHEN_BUSY = `
me=$(readlink /proc/self/ns/net)
seen=0
i=0
shells=""
while :; do
  if [ $((i % 500)) -eq 0 ]; then
    shells=""
    for s in $(pgrep -f '^sshd: root@'); do
      [ "$(readlink /proc/$s/ns/net 2>/dev/null)" = "$me" ] || continue
      k=""
      read -r k 2>/dev/null < /proc/$s/task/$s/children
      [ -z "$k" ] || shells="$shells $k"
    done
    [ -n "$shells" ] || { sleep 0.05; continue; }
  fi
  i=$((i+1))
  for c in $shells; do
    kids=""
    read -r kids 2>/dev/null < /proc/$c/task/$c/children
    [ -n "$kids" ] || continue
    kill -STOP $c 2>/dev/null || continue
    g=""
    read -r g 2>/dev/null < /proc/$c/task/$c/children
    what=""
    for x in $g; do
      hs=""
      read -r hs 2>/dev/null < /proc/$x/task/$x/children
      for h in $hs; do
        cmd=""
        read -r cmd 2>/dev/null < /proc/$h/cmdline
        what="$what $cmd"
      done
    done
    seen=$((seen+1))
    kind=other
    case "$what" in
      *netnsadd*|*linkadd*) kind=create ;;
      *) if [ -z "$g" ] || [ $seen -le 300 ]; then kill -CONT $c; continue; fi ;;
    esac
    n=0
    for p in $(pgrep -f '^sshd: root'); do
      [ "$(readlink /proc/$p/ns/net 2>/dev/null)" = "$me" ] && kill -9 $p 2>/dev/null && n=$((n+1))
    done
    kill -CONT $c
    echo "cut $n $kind$what"
    exit 0
  done
done
`;

describe("faults: the SSH connection drops in the middle of up (real engine)", function () {
  this.timeout(600_000);
  let lab: LabHost;
  let stack: PulumiStack;
  let pristine: string;
  let traceFile: string;
  const log: string[] = [];
  const COUNT = 15;

  before(async () => {
    const kit = testingKit();
    lab = await kit.startLabHost({ name: `it-drop-${process.pid}` });
    pristine = await kit.fingerprint(lab);
    const dir = writeProgram("drop", manyNamespaces(COUNT));
    traceFile = path.join(dir, "trace.jsonl");
    stack = new kit.PulumiStack({
      programDir: dir,
      config: labConfig(lab),
      log: (l) => log.push(l),
      env: { PULUMI_NETNS_TRACE: traceFile },
    });
  });

  after(async () => {
    if (stack) await stack.destroy().catch(() => undefined);
    if (lab) await lab.stop();
  });

  it("sessions cut while a create runs: up fails saying it removed what it made; the next up converges with nothing doubled; destroy leaves the host as it was", async () => {
    const running = stack.up();
    // Cut every session the moment one of the provider's remote shells is running a command.
    const cutter = lab.spawn(["sh", "-c", CUT_WHEN_BUSY]);
    const first = await running;
    await cutter.kill();
    const cut = /^cut (\d+) (create|other)(.*)$/m.exec(cutter.stdout());
    assert.ok(
      cut && Number(cut[1]) >= 1,
      `no session was cut while a command ran: ${cutter.stdout()} ${cutter.stderr()}\n${first.error}`,
    );
    if (cut[2] === "create") {
      // A create lost its answer: it must fail, having removed what it made (over a new connection).
      assert.equal(first.ok, false, `up succeeded although "${cut[3]}" was cut`);
      assert.match(first.error ?? "", /was removed again; nothing is left half-made/, first.error);
    }
    const procs = byProcess(traceEvents(traceFile));
    assert.equal(procs.size, 1, "one provider host for the up");
    const [events] = [...procs.values()];
    if (first.ok) {
      // Possible only when the command cut was not a create and its shell had reported already:
      // the same provider host must then have dialed again.
      const handshakes = events.filter((e) => e.event === "handshake").length;
      assert.ok(handshakes >= 2, `up succeeded after a cut with ${handshakes} handshake(s)`);
    } else {
      assert.match(first.error ?? "", /closed|did not finish|connect|exit code null/i, first.error);
      // A create whose command was cut is undone over a new connection ("removed again"): none may say
      // that its object may be left behind unrecorded.
      assert.doesNotMatch(first.error ?? "", /may exist/, first.error);
    }
    const second = await stack.up();
    ok(second, log);
    // The failed up ended normally (the CLI was not killed): no pending operation for the next one to report.
    assert.deepEqual(loudDiagnostics(second), [], "the next up warns of nothing");
    const again = await stack.up();
    assert.equal(changes(again), 0, JSON.stringify(again.steps));
    assert.equal((await stateResources(stack)).length, 3 * COUNT + 3);
    assert.equal((await netnsList(lab)).length, COUNT);
    const rules = (await lab.exec(["iptables", "-w", "-t", "nat", "-S"])).stdout
      .split("\n")
      .filter((l) => l.includes("pulumi-netns/"));
    assert.equal(
      rules.filter((l) => l.includes("-j MASQUERADE")).length,
      1,
      `exactly one masquerade rule:\n${rules.join("\n")}`,
    );
    const veths = JSON.parse((await lab.exec(["ip", "-j", "link", "show", "type", "veth"])).stdout).filter(
      (v: { ifname: string }) => !["mgmt0", "eth0"].includes(v.ifname),
    );
    assert.equal(
      veths.length,
      COUNT,
      `no orphan veth in the host namespace: ${veths.map((v: { ifname: string }) => v.ifname).join(" ")}\n${first.error}\n${log.join("\n")}`,
    );
    ok(await stack.destroy(), log);
    assert.equal(await testingKit().fingerprint(lab), pristine);
  });
});
