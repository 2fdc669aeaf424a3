import * as assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  checkLabPrerequisites,
  type LabHost,
  type LabHostState,
  readLabState,
  startLabHost,
  stopAllLabHosts,
  stopLabByName,
} from "../../provider/testing";

const REPO = path.resolve(__dirname, "../..");
const CLI = path.join(REPO, "provider/testing/labCli.ts");

interface JsonLink {
  ifname: string;
}

function rootLinks(): string[] {
  const r = spawnSync("ip", ["-j", "link", "show"], { encoding: "utf8" });
  return (JSON.parse(r.stdout) as JsonLink[]).map((l) => l.ifname);
}

function rootNetns(): string[] {
  const r = spawnSync("ip", ["-j", "netns", "list"], { encoding: "utf8" });
  return r.stdout.trim() ? (JSON.parse(r.stdout) as Array<{ name: string }>).map((n) => n.name) : [];
}

function pidAlive(pid: number): boolean {
  try {
    // A zombie still has /proc/PID but is dead for every purpose here.
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function assertGone(state: LabHostState): void {
  assert.ok(!rootLinks().includes(state.rootVeth), `${state.rootVeth} still exists`);
  for (const pid of [state.holderPid, state.lanPid, state.sshdPid]) assert.ok(!pidAlive(pid), `pid ${pid} still alive`);
  assert.ok(!fs.existsSync(state.dir), `${state.dir} still exists`);
  assert.equal(readLabState(state.name), undefined, `state file of ${state.name} still exists`);
}

/** The real `ssh` client, pinned to the lab's host key: proves the login path end to end. */
function sshTo(lab: { connection: LabHost["connection"] }, tmp: string, command: string) {
  const key = path.join(tmp, "id");
  const knownHosts = path.join(tmp, "known_hosts");
  fs.writeFileSync(key, lab.connection.privateKey, { mode: 0o600 });
  fs.writeFileSync(knownHosts, `${lab.connection.host} ${lab.connection.hostKey}\n`);
  return spawnSync(
    "ssh",
    [
      "-F",
      "/dev/null",
      "-i",
      key,
      "-p",
      String(lab.connection.port),
      "-o",
      "IdentitiesOnly=yes",
      "-o",
      "BatchMode=yes",
      "-o",
      "StrictHostKeyChecking=yes",
      "-o",
      `UserKnownHostsFile=${knownHosts}`,
      "-o",
      "GlobalKnownHostsFile=/dev/null",
      "-o",
      "ConnectTimeout=5",
      `${lab.connection.user}@${lab.connection.host}`,
      command,
    ],
    { encoding: "utf8", timeout: 15000 },
  );
}

function runCli(args: string[]) {
  return spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", CLI, ...args], {
    cwd: REPO,
    encoding: "utf8",
    timeout: 30000,
  });
}

describe("testing/labHost", function () {
  this.timeout(60000);
  let tmp: string;

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "labhost-test-"));
  });
  after(async () => {
    await stopAllLabHosts();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("finds every prerequisite on this machine", () => {
    assert.deepEqual(checkLabPrerequisites(), []);
  });

  describe("two lab hosts at once", () => {
    let a: LabHost;
    let b: LabHost;
    let stateA: LabHostState;
    let stateB: LabHostState;

    before(async () => {
      [a, b] = await Promise.all([startLabHost({ heavyShell: true }), startLabHost({ forwardPolicyDrop: true })]);
      stateA = readLabState(a.name) as LabHostState;
      stateB = readLabState(b.name) as LabHostState;
    });
    after(async () => {
      await Promise.all([a?.stop(), b?.stop()]);
    });

    it("gives each lab lo, mgmt0 and eth0 with the documented addresses", async () => {
      for (const lab of [a, b]) {
        const links = JSON.parse((await lab.exec(["ip", "-j", "addr", "show"])).stdout) as Array<{
          ifname: string;
          addr_info: Array<{ family: string; local: string; prefixlen: number }>;
        }>;
        assert.deepEqual(links.map((l) => l.ifname).sort(), ["eth0", "lo", "mgmt0"]);
        const v4 = (n: string) =>
          links
            .find((l) => l.ifname === n)
            ?.addr_info.filter((x) => x.family === "inet")
            .map((x) => `${x.local}/${x.prefixlen}`);
        assert.deepEqual(v4("mgmt0"), [`${lab.address}/30`]);
        assert.deepEqual(v4("eth0"), ["203.0.113.2/24"]);
        assert.equal(lab.connection.host, lab.address);
        assert.match(lab.address, /^198\.1[89]\./);
        assert.match(lab.connection.hostKey, /^ssh-ed25519 AAAA\S+$/);
        assert.match(lab.connection.privateKey, /^-----BEGIN OPENSSH PRIVATE KEY-----/);
        const routes = JSON.parse((await lab.exec(["ip", "-j", "route", "show", "default"])).stdout) as Array<{
          gateway: string;
          dev: string;
        }>;
        assert.deepEqual(
          routes.map((r) => [r.gateway, r.dev]),
          [["203.0.113.1", "eth0"]],
        );
      }
      assert.notEqual(a.address, b.address);
    });

    it("keeps named namespaces private to each lab", async () => {
      await a.exec(["ip", "netns", "add", "red"]);
      const list = async (lab: LabHost) => {
        const out = (await lab.exec(["ip", "-j", "netns", "list"])).stdout.trim();
        return out ? (JSON.parse(out) as Array<{ name: string }>).map((n) => n.name) : [];
      };
      assert.deepEqual(await list(a), ["red"]);
      assert.deepEqual(await list(b), []);
      assert.ok(!rootNetns().includes("red"), "red leaked into the root namespace");
      const inRed = JSON.parse((await a.exec(["ip", "-j", "link", "show"], { namespace: "red" })).stdout) as JsonLink[];
      assert.deepEqual(
        inRed.map((l) => l.ifname),
        ["lo"],
      );
    });

    it("reaches the LAN peer and the internet address through the default route", async () => {
      for (const lab of [a, b]) {
        await lab.exec(["ping", "-c1", "-W1", lab.lan.peerAddress]);
        await lab.exec(["ping", "-c1", "-W1", lab.lan.internetAddress]);
      }
    });

    it("gives the LAN peer no route to 192.168.0.0/16 and no forwarding", async () => {
      const r = await a.execLan(["ip", "-j", "route", "get", "192.168.1.1"], { allowFailure: true });
      assert.notEqual(r.code, 0, `peer has a route to 192.168.1.1: ${r.stdout}`);
      assert.equal((await a.execLan(["sysctl", "-n", "net.ipv4.ip_forward"])).stdout.trim(), "0");
      assert.equal((await a.exec(["sysctl", "-n", "net.ipv4.ip_forward"])).stdout.trim(), "0");
    });

    it("applies forwardPolicyDrop only where asked", async () => {
      assert.match((await b.exec(["iptables", "-w", "-S", "FORWARD"])).stdout, /^-P FORWARD DROP$/m);
      assert.match((await a.exec(["iptables", "-w", "-S", "FORWARD"])).stdout, /^-P FORWARD ACCEPT$/m);
    });

    it("accepts an ssh login that lands in the lab's namespaces", () => {
      const r = sshTo(a, tmp, "echo ok; echo $HOME; ip -j link show; ip -j netns list");
      assert.equal(r.status, 0, r.stderr);
      const [ok, home, links, netns] = r.stdout.trim().split("\n");
      assert.equal(ok, "ok");
      assert.equal(home, "/root");
      assert.deepEqual((JSON.parse(links) as JsonLink[]).map((l) => l.ifname).sort(), ["eth0", "lo", "mgmt0"]);
      assert.deepEqual(
        (JSON.parse(netns) as Array<{ name: string }>).map((n) => n.name),
        ["red"],
      );
      // heavyShell: the lab's private ~/.bashrc (sleep 0.15) runs for ssh commands. A plain login
      // alone takes 200 ms or more here, so a's login is weighed against b's (no heavyShell):
      // the fastest of 3 each, taken in turns, so that load on the machine hits both alike.
      const fastest = { a: Number.POSITIVE_INFINITY, b: Number.POSITIVE_INFINITY };
      for (let i = 0; i < 3; i++)
        for (const [name, lab] of [
          ["a", a],
          ["b", b],
        ] as const) {
          const started = Date.now();
          assert.equal(sshTo(lab, tmp, "true").status, 0);
          fastest[name] = Math.min(fastest[name], Date.now() - started);
        }
      assert.ok(fastest.a - fastest.b >= 100, `heavy shell did not slow the login: ${JSON.stringify(fastest)} ms`);
      const rb = sshTo(b, tmp, "ip -j netns list; test -e /root/.bashrc || echo no-bashrc");
      assert.equal(rb.status, 0, rb.stderr);
      assert.match(rb.stdout, /no-bashrc/);
    });

    it("kills spawned processes and leaves nothing behind on stop()", async () => {
      const server = a.spawn(["sleep", "300"], { namespace: "red" });
      const peer = a.spawn(["sleep", "300"], { lan: true });
      // A process started over ssh, detached from the session, inside a named namespace.
      assert.equal(sshTo(a, tmp, "setsid ip netns exec red sleep 301 </dev/null >/dev/null 2>&1 &").status, 0);
      await waitFor("sleep 301", () => spawnSync("pgrep", ["-f", "^sleep 301$"]).status === 0);
      const t0 = Date.now();
      await Promise.all([a.stop(), b.stop()]);
      const took = Date.now() - t0;
      assert.ok(took < 5000, `stop took ${took} ms`);
      await a.stop(); // idempotent
      assert.equal(await server.exited, null);
      assert.equal(await peer.exited, null);
      assert.notEqual(spawnSync("pgrep", ["-f", "^sleep 301$"]).status, 0, "ssh-started process survived");
      assertGone(stateA);
      assertGone(stateB);
      assert.ok(!rootLinks().some((l) => l === stateA.rootVeth || l === stateB.rootVeth));
    });
  });

  it("cleans up through pdeathsig when the owning node process is killed with SIGKILL", async () => {
    const name = `killed-owner-${process.pid}`;
    const script = `require(${JSON.stringify(path.join(REPO, "provider/testing/labHost"))}).startLabHost({ name: ${JSON.stringify(name)} })
      .then(() => { process.stdout.write("up\\n"); setInterval(() => {}, 1000); })
      .catch((e) => { console.error(e); process.exit(1); });`;
    const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", "-e", script], {
      cwd: REPO,
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => d.toString().includes("up") && resolve());
        child.on("exit", (c) => reject(new Error(`child exited with ${c}`)));
      });
      const state = readLabState(name) as LabHostState;
      assert.ok(state && pidAlive(state.holderPid));
      child.kill("SIGKILL");
      await waitFor("holders to die", () => ![state.holderPid, state.lanPid, state.sshdPid].some(pidAlive));
      await waitFor("veth to vanish", () => !rootLinks().includes(state.rootVeth));
      // The kernel freed the namespaces; files left behind are pruned by the next start.
      const next = await startLabHost();
      await next.stop();
      assertGone(state);
    } finally {
      child.kill("SIGKILL");
      await stopLabByName(name);
    }
  });

  it("runs a detached lab through the CLI: start, env, list, stop from another process", async () => {
    const name = `cli-${process.pid}`;
    try {
      const started = runCli(["start", "--name", name, "--forward-drop"]);
      assert.equal(started.status, 0, started.stderr);
      const conn = JSON.parse(started.stdout);
      assert.deepEqual(Object.keys(conn).sort(), ["host", "hostKey", "port", "privateKey", "user"]);
      const state = readLabState(name) as LabHostState;
      assert.equal(state.ownerPid, null);
      assert.ok(pidAlive(state.holderPid), "detached lab died with the CLI process");

      const env = runCli(["env", name]);
      assert.equal(env.status, 0, env.stderr);
      assert.deepEqual(JSON.parse(env.stdout), conn);
      assert.match(runCli(["list"]).stdout, new RegExp(`^${name}\\t${conn.host.replace(/\./g, "\\.")}\\trunning`, "m"));

      const r = sshTo({ connection: conn }, tmp, "echo ok; iptables -w -S FORWARD");
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^ok\n-P FORWARD DROP/);

      const stopped = runCli(["stop", name]);
      assert.equal(stopped.status, 0, stopped.stderr);
      assertGone(state);
      assert.doesNotMatch(runCli(["list"]).stdout, new RegExp(`^${name}\\t`, "m"));
      assert.notEqual(runCli(["env", name]).status, 0);
    } finally {
      await stopLabByName(name);
    }
  });
});
