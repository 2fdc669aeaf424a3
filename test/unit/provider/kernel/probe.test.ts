import { strict as assert } from "node:assert";
import { parseProbe, probeCommand } from "../../../../provider/kernel/probe";

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
    assert.match(c, /^out=\$\(timeout 1\.5 bash '-c' '.*\/dev\/tcp\/\$1\/\$2.*' probe 127\.0\.0\.1 8080 2>&1\)/);
  });

  it("the command always exits 0 and marks its output", () => {
    assert.match(probeCommand(icmp), /; printf '%s rc=%s\\n%s\\n' pulumi-netns-probe "\$rc" "\$out"$/);
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
      "a namespace that is gone",
      icmp,
      out(255, 'Cannot open network namespace "red": No such file or directory'),
      { reachable: false, seen: 'Cannot open network namespace "red": No such file or directory' },
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
      { reachable: false, seen: "no answer from the check (bash: not found)" },
    ],
  ];
  for (const [what, spec, text, expected] of cases)
    it(`reads ${what}`, () => assert.deepEqual(parseProbe(text, spec as never), expected));
});
