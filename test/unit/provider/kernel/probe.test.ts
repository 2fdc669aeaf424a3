import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseProbe, probeCommand } from "../../../../provider/kernel/probe";

/** Runs the check command in a local /bin/sh (PATH as given), as the remote shell would. */
function runLocally(command: string, path = process.env.PATH ?? ""): string {
  return spawnSync("/bin/sh", ["-c", command], { encoding: "utf8", env: { PATH: path } }).stdout;
}

/** A PATH that has only these tools (symlinks to the host's). */
function pathWith(tools: string[]): { path: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "probe-path-"));
  for (const t of tools) {
    const found = spawnSync("/bin/sh", ["-c", `command -v ${t}`], { encoding: "utf8" }).stdout.trim();
    if (found) symlinkSync(found, join(dir, t));
  }
  return { path: dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

const icmp = { namespace: "red", target: "192.168.15.2", timeoutMs: 2000 };
const tcp = { target: "127.0.0.1", port: 8080, timeoutMs: 1500 };
const out = (rc: number, ...lines: string[]) => ["pulumi-netns-probe rc=" + rc, ...lines, ""].join("\n");

describe("kernel/probe", () => {
  it("ICMP: ping once inside the namespace, -W in whole seconds, bounded by timeout", () => {
    const c = probeCommand(icmp);
    assert.match(c, /ip netns exec red timeout 3 ping '-n' '-c' 1 '-W' 2 192\.168\.15\.2 2>&1\)/);
    assert.match(
      probeCommand({ target: "10.0.0.1", timeoutMs: 300 }),
      /\$\(timeout 1\.3 ping '-n' '-c' 1 '-W' 1 10\.0\.0\.1 /,
    );
  });

  it("TCP: bash /dev/tcp with the address and port as arguments, never in the script text", () => {
    const c = probeCommand(tcp);
    assert.match(c, /else out=\$\(timeout 1\.5 bash '-c' '.*\/dev\/tcp\/\$1\/\$2.*' probe 127\.0\.0\.1 8080 2>&1\)/);
  });

  it("the command always exits 0 and marks its output", () => {
    assert.match(probeCommand(icmp), /; printf '%s rc=%s\\n%s\\n' pulumi-netns-probe "\$rc" "\$out"; fi$/);
  });

  const cases: Array<[string, object, string, object]> = [
    [
      "an echo reply with its time",
      icmp,
      out(
        0,
        "PING 192.168.15.2 (192.168.15.2) 56(84) bytes of data.",
        "64 bytes from 192.168.15.2: icmp_seq=1 ttl=64 time=0.045 ms",
        "rtt min/avg/max/mdev = 0.045/0.045/0.045/0.000 ms",
      ),
      { reachable: true, rttMs: 0.045, seen: "echo reply in 0.045 ms" },
    ],
    [
      "no reply",
      icmp,
      out(
        1,
        "PING 192.168.15.9 (192.168.15.9) 56(84) bytes of data.",
        "",
        "1 packets transmitted, 0 received, 100% packet loss, time 0ms",
      ),
      { reachable: false, seen: "no echo reply within 2000 ms" },
    ],
    [
      "an ICMP error from a router",
      icmp,
      out(
        1,
        "PING 10.9.9.9 (10.9.9.9) 56(84) bytes of data.",
        "From 192.168.15.5 icmp_seq=1 Destination Host Unreachable",
      ),
      { reachable: false, seen: "From 192.168.15.5 icmp_seq=1 Destination Host Unreachable" },
    ],
    [
      "no route",
      icmp,
      out(2, "ping: connect: Network is unreachable"),
      { reachable: false, seen: "ping: connect: Network is unreachable" },
    ],
    [
      "a namespace that went between the precheck and the check: could not check, never unreachable",
      icmp,
      out(255, 'Cannot open network namespace "red": No such file or directory'),
      {
        couldNotCheck:
          'the check could not run (exit 255: Cannot open network namespace "red": No such file or directory)',
        fix: "run the same check by hand on the host (as the connection's user) to see why",
      },
    ],
    [
      "a namespace that does not exist (the precheck)",
      icmp,
      "pulumi-netns-probe missing=namespace\n",
      {
        couldNotCheck: 'namespace "red" does not exist',
        fix: 'make it first (a Namespace named "red", and dependsOn it on the Probe) or correct namespace',
      },
    ],
    [
      "tools missing (the precheck)",
      tcp,
      "pulumi-netns-probe missing=timeout bash\n",
      { couldNotCheck: "the host has no `timeout`, `bash`", fix: "install coreutils, bash on the host" },
    ],
    [
      "a command not found (127)",
      icmp,
      out(127, "timeout: failed to run command 'ping': No such file or directory"),
      {
        couldNotCheck:
          "the check could not run (exit 127: timeout: failed to run command 'ping': No such file or directory)",
        fix: "run the same check by hand on the host (as the connection's user) to see why",
      },
    ],
    [
      "ping not permitted to open its socket",
      icmp,
      out(2, "ping: socket: Operation not permitted"),
      {
        couldNotCheck: "the check could not run (exit 2: ping: socket: Operation not permitted)",
        fix: "the check needs root: connect as root or set connection.sudo: true",
      },
    ],
    [
      "a firewall's drop of what ping sent (sendmsg): an observation",
      icmp,
      out(1, "ping: sendmsg: Operation not permitted"),
      { reachable: false, seen: "ping: sendmsg: Operation not permitted" },
    ],
    [
      "a TCP connect accepted (microseconds to ms)",
      tcp,
      out(0, "us=1234"),
      { reachable: true, rttMs: 1.23, seen: "TCP connection to port 8080 accepted in 1.23 ms" },
    ],
    [
      "a TCP connect refused",
      tcp,
      out(7, "probe: connect: Connection refused", "probe: line 1: /dev/tcp/127.0.0.1/8080: Connection refused"),
      { reachable: false, seen: "TCP connect to port 8080: Connection refused" },
    ],
    ["a TCP connect timed out", tcp, out(124), { reachable: false, seen: "no answer within 1500 ms" }],
    [
      "no marker (the shell failed)",
      tcp,
      "bash: not found\n",
      {
        couldNotCheck: "the check did not run (bash: not found)",
        fix: "run the same check by hand on the host (as the connection's user) to see why",
      },
    ],
  ];
  for (const [what, spec, text, expected] of cases)
    it(`reads ${what}`, () => assert.deepEqual(parseProbe(text, spec as never), expected));

  // Issue #10 item 8: expect "unreachable" passed when the check could not run at all.
  describe("a check that cannot run is told apart from unreachable (run in a local shell)", () => {
    it("a namespace that does not exist: could not check, naming it", function () {
      if (process.getuid?.() !== 0) this.skip();
      const spec = { namespace: "pn-probe-nosuch", target: "127.0.0.1", timeoutMs: 200 };
      assert.deepEqual(parseProbe(runLocally(probeCommand(spec)), spec), {
        couldNotCheck: 'namespace "pn-probe-nosuch" does not exist',
        fix: 'make it first (a Namespace named "pn-probe-nosuch", and dependsOn it on the Probe) or correct namespace',
      });
    });

    it("no ping on the host: could not check, naming the tool and its package", () => {
      const spec = { target: "127.0.0.1", timeoutMs: 200 };
      const bin = pathWith(["timeout"]);
      try {
        assert.deepEqual(parseProbe(runLocally(probeCommand(spec), bin.path), spec), {
          couldNotCheck: "the host has no `ping`",
          fix: "install iputils-ping (iputils) on the host",
        });
      } finally {
        bin.done();
      }
    });

    it("with everything there, a closed port on loopback is an observation (unreachable), not a failed check", () => {
      const spec = { target: "127.0.0.1", port: 9, timeoutMs: 1000 };
      const r = parseProbe(runLocally(probeCommand(spec)), spec);
      assert.deepEqual(r, { reachable: false, seen: "TCP connect to port 9: Connection refused" });
    });
  });
});
