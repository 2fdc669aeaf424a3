import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { LabHost, OperationResult, PulumiStack } from "../../provider/testing";
import { labConfig, netnsList } from "../integration/support";
import { CONFIGURED_PROGRAM, strayKey } from "../security/support";
import { fakeDnsNodeOptions } from "../support/fakeDns";
import { testingKit, writeProgram } from "../support/harness";
import { traceEvents } from "../support/trace";

describe("faults: connection failures through the real engine: fast when nothing can heal, bounded and shown when it can", function () {
  this.timeout(600_000);
  let lab: LabHost;
  let dir: string;
  let scratch: string;
  let n = 0;
  let fakeDns: string;
  const stacks: PulumiStack[] = [];
  const drop = () => ["INPUT", "-p", "tcp", "--dport", String(lab.connection.port), "-j", "DROP"];

  /** The one-Namespace program as stack `name`, with connection overrides; its CLI output lines with the time each arrived. */
  const stack = (conn: Record<string, unknown>, name: string) => {
    const trace = path.join(scratch, `trace-${++n}.jsonl`);
    const lines: Array<{ t: number; line: string }> = [];
    const s = new (testingKit().PulumiStack)({
      programDir: dir,
      stack: name,
      config: {
        ...labConfig(lab),
        kind: "Namespace",
        args: JSON.stringify({ name }),
        conn: { value: JSON.stringify(conn), secret: JSON.stringify(conn).includes("PRIVATE KEY") },
      },
      env: { PULUMI_NETNS_TRACE: trace, NODE_OPTIONS: fakeDns },
      log: (line) => lines.push({ t: Date.now(), line }),
    });
    stacks.push(s);
    return { s, trace, lines };
  };
  /** Node stack frames among the diagnostics: the error is for the user, the frames are not. */
  const framesShown = (r: OperationResult) => r.diagnostics.filter((d) => /^\s+at \S/m.test(d.message));
  const attempts = (trace: string) => traceEvents(trace).filter((e) => e.event === "dial-failed").length;
  /**
   * One attempt, given up on at once. The provider's own figures (the trace's
   * failed dials) are what is asserted: the whole up's time is mostly the CLI
   * and the program starting, seconds more on a loaded machine.
   */
  const failedFast = (r: OperationResult, trace: string, what: string) => {
    const dials = traceEvents(trace).filter((e) => e.event === "dial-failed");
    console.log(`      ${what}: up failed after ${r.durationMs} ms; dials: ${JSON.stringify(dials.map((d) => d.ms))}`);
    assert.equal(r.ok, false);
    assert.equal(dials.length, 1, `${what}: ${dials.length} dials: ${r.error}`);
    assert.ok((dials[0].ms ?? 0) < 5_000, `${what}: the dial took ${dials[0].ms} ms`);
  };

  before(async () => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), "pnetns-connfail-"));
    fakeDns = fakeDnsNodeOptions(scratch);
    lab = await testingKit().startLabHost({ name: `ft-connfail-${process.pid}` });
    dir = writeProgram("connfail", CONFIGURED_PROGRAM);
  });

  afterEach(async () => {
    await lab.exec(["iptables", "-D", ...drop()], { allowFailure: true });
  });

  after(async () => {
    for (const s of stacks) await s.destroy().catch(() => undefined);
    if (lab) await lab.stop();
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  it("a host name that does not resolve fails at once, naming connection.host", async () => {
    const { s, trace } = stack({ host: "no-such-host.invalid" }, "unresolved");
    const r = await s.up();
    failedFast(r, trace, "unknown name");
    assert.match(
      r.error ?? "",
      /cannot connect to root@no-such-host\.invalid:\d+: the name "no-such-host\.invalid" does not resolve/,
    );
    assert.match(r.error ?? "", /Check connection\.host/);
    // Nothing is in the state yet: the advice to remove resources from it does not apply.
    assert.doesNotMatch(r.error ?? "", /gone for good|pulumi state delete/);
  });

  it("a refused port fails at once, naming connection.port", async () => {
    const { s, trace } = stack({ port: 2 }, "refused");
    const r = await s.up();
    failedFast(r, trace, "refused port");
    assert.match(
      r.error ?? "",
      /refused the connection to port 2: no SSH server listens there\. Check connection\.port/,
    );
  });

  it("a refused login fails at once and says what to check, without the key", async () => {
    const key = strayKey().privateKey;
    const { s, trace } = stack({ privateKey: key }, "badauth");
    const r = await s.up();
    failedFast(r, trace, "bad auth");
    assert.match(
      r.error ?? "",
      /authentication to root@.* failed: the host refused the login of user "root" with the key in connection\.privateKey/,
    );
    assert.match(r.error ?? "", /authorized_keys/);
    assert.ok(!(r.error ?? "").includes(key.split("\n")[1]), "the key is not in the error");
  });

  it("a host that drops every packet: dialErrorLimit attempts of perDialTimeout, each shown in up's output as it fails, then advice", async () => {
    await lab.exec(["iptables", "-I", ...drop()]);
    const { s, trace } = stack({ dialErrorLimit: 3, perDialTimeout: 5 }, "dropped");
    const r = await s.up();
    console.log(`      dropping host: up failed after ${r.durationMs} ms`);
    assert.equal(r.ok, false);
    // 3 dials of 5 s and 1.2 s of backoff, plus the CLI and the program starting.
    assert.ok(r.durationMs < 60_000, `up took ${r.durationMs} ms to fail`);
    assert.ok(r.durationMs > 16_000, `up failed after ${r.durationMs} ms: fewer attempts than 3 x 5 s`);
    // The provider host's stderr, as the engine relays it: a diagnostic per line, shown by `pulumi up` as it
    // arrives (with --diff, as the Automation API runs it, only in the summary at the end).
    const shown = r.diagnostics.filter((d) =>
      /\[pulumi-netns\] connecting to root@.*: attempt \d of 3 timed out after 5 s; retrying/.test(d.message),
    );
    assert.equal(shown.length, 2, JSON.stringify(r.diagnostics));
    assert.equal(attempts(trace), 3);
    assert.match(r.error ?? "", /after 3 attempts: the last one timed out after 5 s/);
    // A create: check where the program points, not the state (which holds nothing yet).
    assert.match(r.error ?? "", /connection\.host/);
    assert.doesNotMatch(r.error ?? "", /gone for good|pulumi state delete/);
  });

  it("a host gone for good: destroy fails at once with advice, and the advice as written lets destroy finish", async () => {
    const { s } = stack({ dialErrorLimit: 1, perDialTimeout: 5 }, "gone");
    const up = await s.up();
    assert.ok(up.ok, up.error);
    await lab.exec(["iptables", "-I", ...drop()]);
    try {
      const d = await s.destroy();
      assert.equal(d.ok, false);
      const advice = /`(pulumi state delete '<urn>'[^`]*)`/.exec(d.error ?? "");
      assert.ok(advice, d.error);
      const urn = s.urn("pulumi-nodejs:dynamic/netns:Namespace", "subject");
      const argv = advice[1].replace("'<urn>'", urn).split(" ").slice(1);
      const cli = await s.cli([...argv, "--stack", s.stackName, "--non-interactive"]);
      assert.equal(cli.code, 0, cli.stderr);
      const again = await s.destroy();
      assert.ok(again.ok, again.error);
      const left = ((await s.exportState()).deployment?.resources ?? []) as Array<{ type: string }>;
      assert.deepEqual(
        left.filter((x) => x.type.startsWith("pulumi-nodejs:dynamic")),
        [],
      );
    } finally {
      await lab.exec(["iptables", "-D", ...drop()], { allowFailure: true });
      await lab.exec(["ip", "netns", "delete", "gone"], { allowFailure: true });
    }
    assert.deepEqual(await netnsList(lab), []);
  });

  it("a wrong connection.user (an account without a login shell): the error names connection.user and keeps the host's whole answer", async () => {
    const { s } = stack({ user: "nobody" }, "nologin");
    const r = await s.up();
    assert.equal(r.ok, false);
    assert.match(r.error ?? "", /cannot start \/bin\/sh on nobody@/);
    assert.match(r.error ?? "", /connection\.user/);
    assert.match(r.error ?? "", /no login shell/);
    assert.match(r.error ?? "", /This account is currently not available/);
    assert.deepEqual(framesShown(r), []);
  });

  it("destroy when every connection is cut before the handshake: retried, then the state-delete advice, no stack", async () => {
    const { s } = stack({ dialErrorLimit: 2, perDialTimeout: 5 }, "cut");
    const up = await s.up();
    assert.ok(up.ok, up.error);
    // The TCP handshake completes; everything after it is answered with a reset.
    const cut = [
      "INPUT",
      "-p",
      "tcp",
      "--dport",
      String(lab.connection.port),
      "!",
      "--syn",
      "-j",
      "REJECT",
      "--reject-with",
      "tcp-reset",
    ];
    await lab.exec(["iptables", "-I", ...cut]);
    try {
      const d = await s.destroy();
      assert.equal(d.ok, false);
      assert.match(d.error ?? "", /cannot connect to root@.* after 2 attempts/);
      assert.match(d.error ?? "", /`pulumi state delete '<urn>' --target-dependents --yes`/);
      assert.deepEqual(framesShown(d), [], "no stack frames in destroy's diagnostics");
    } finally {
      await lab.exec(["iptables", "-D", ...cut], { allowFailure: true });
    }
    const again = await s.destroy();
    assert.ok(again.ok, again.error);
  });

  // Last: the lab's host key changes for good.
  it("refresh after the host key changed: each resource fails once with the mismatch, no stack in the diagnostics", async () => {
    const { s } = stack({}, "rotated");
    const up = await s.up();
    assert.ok(up.ok, up.error);
    await lab.rotateHostKey();
    const r = await s.refresh();
    assert.equal(r.ok, false);
    assert.match(r.error ?? "", /host key mismatch for root@.*recorded in this resource's knownHostKeys/);
    assert.deepEqual(framesShown(r), [], "no stack frames in refresh's diagnostics");
    const mentions = r.diagnostics.filter((d) => d.message.includes("host key mismatch"));
    assert.equal(mentions.length, 1, JSON.stringify(r.diagnostics));
    const urn = s.urn("pulumi-nodejs:dynamic/netns:Namespace", "subject");
    const cli = await s.cli(["state", "delete", urn, "--yes", "--stack", s.stackName, "--non-interactive"]);
    assert.equal(cli.code, 0, cli.stderr);
    await lab.exec(["ip", "netns", "delete", "rotated"], { allowFailure: true });
  });
});
