import * as ipaddr from "ipaddr.js";
import { interfaceName, ipv4Network, show } from "../validate";
import { runCommand, sleep } from "./commands";
import type { LabHost } from "./labHost";
import { type LabAttachment, LabHostImpl } from "./labHost";
import { startHolder } from "./launch";

/**
 * Lab hosts that share a network, as machines on one switch: a bridge in a
 * throwaway network namespace of its own (the "switch"), and per lab a veth
 * whose lab end (`eth1`) carries an address of the shared subnet. The switch
 * namespace is held by one process; killing it makes the kernel free the
 * namespace and with it every veth (both ends), so nothing is left in the labs
 * or on this machine. Nothing outside the labs and that namespace is touched.
 */

export interface LinkLabHostsOptions {
  /** The shared subnet (IPv4 CIDR); lab i gets its (i+1)-th address. Default "192.0.2.0/24" (TEST-NET-1). */
  subnet?: string;
  /** The interface name inside each lab. Default "eth1" (eth0 is the lab's uplink). */
  device?: string;
  /** Receives progress lines. */
  log?: (line: string) => void;
}

export interface LabSegmentMember {
  /** The lab's name. */
  lab: string;
  /** Its address on the segment, e.g. "192.0.2.1". */
  address: string;
  /** The same with the subnet's prefix, e.g. "192.0.2.1/24". */
  cidr: string;
}

export interface LabSegment {
  readonly subnet: string;
  /** The interface inside each lab. */
  readonly device: string;
  /** One per lab, in the order given. */
  readonly members: readonly LabSegmentMember[];
  /** Pid of the process holding the switch's network namespace. */
  readonly pid: number;
  /** The lab's address on the segment; throws for a lab that is not on it. */
  addressOf(lab: LabHost | string): string;
  /** Unlinks the labs and frees the switch namespace. Idempotent; also done by any member lab's stop(). */
  remove(): Promise<void>;
}

const SWITCH_BRIDGE = "seg0";
// The switch's bridge, up; the holder then only keeps the namespace alive.
const SWITCH_SCRIPT = [
  "set -e",
  "ip link set lo up",
  `ip link add ${SWITCH_BRIDGE} type bridge`,
  `ip link set ${SWITCH_BRIDGE} up`,
  "echo ready",
  "exec sleep infinity </dev/null >/dev/null 2>&1",
].join("\n");

/** The addresses lab 0..count-1 get: the subnet's first usable ones. Throws naming the field when they do not fit. */
export function segmentAddresses(subnet: string, count: number): string[] {
  const bad = ipv4Network(subnet);
  if (bad) throw new Error(`linkLabHosts: subnet: ${bad}`);
  const [network, prefix] = ipaddr.IPv4.parseCIDR(subnet);
  const usable = 2 ** (32 - prefix) - 2;
  if (count > usable)
    throw new Error(
      `linkLabHosts: subnet: ${show(subnet)} has ${Math.max(usable, 0)} usable addresses for ${count} labs; use a larger subnet`,
    );
  const base = network.toByteArray().reduce((n, b) => n * 256 + b, 0);
  return Array.from({ length: count }, (_, i) => {
    const n = base + 1 + i;
    return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
  });
}

async function deviceGone(lab: LabHost, device: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await lab.exec(["ip", "-j", "link", "show", "dev", device], { allowFailure: true });
    if (r.code !== 0) return;
    await sleep(20);
  }
  throw new Error(`lab ${lab.name}: ${device} still there 2 s after its segment was removed`);
}

/**
 * Waits until the lab's device is up with a carrier. The kernel sets a link's operstate from a work
 * item that needs the RTNL lock, some time after `ip link set up`: under load (namespaces being freed
 * elsewhere hold that lock) a lab fingerprinted or pinged right after linking saw eth1 still DOWN.
 */
async function deviceUp(lab: LabHost, device: string): Promise<void> {
  let seen = "";
  for (let i = 0; i < 250; i++) {
    const r = await lab.exec(["ip", "-j", "link", "show", "dev", device], { allowFailure: true });
    const [link] = r.code === 0 ? (JSON.parse(r.stdout) as Array<{ operstate?: string; flags?: string[] }>) : [];
    if (link?.operstate === "UP" && !link.flags?.includes("NO-CARRIER")) return;
    seen = link ? `operstate ${link.operstate}, flags ${(link.flags ?? []).join(",")}` : r.stderr.trim();
    await sleep(20);
  }
  throw new Error(
    `linkLabHosts: lab ${lab.name}: ${device} is not up with a carrier 5 s after linking (${seen}); is the machine overloaded? stop other labs (pulumi-netns-lab list) and retry`,
  );
}

/** Links two or more labs started by this process through one switch; see the module comment. */
export async function linkLabHosts(labs: LabHost[], opts: LinkLabHostsOptions = {}): Promise<LabSegment> {
  const subnet = opts.subnet ?? "192.0.2.0/24";
  const device = opts.device ?? "eth1";
  const log = opts.log ?? (() => {});
  if (!Array.isArray(labs) || labs.length < 2) throw new Error("linkLabHosts: labs: give two or more lab hosts");
  const names = labs.map((l) => l.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new Error(`linkLabHosts: labs: lab ${show(twice)} is listed twice`);
  for (const lab of labs)
    if (!(lab instanceof LabHostImpl))
      throw new Error(`linkLabHosts: labs: ${show(lab?.name)} was not started by this copy of pulumi-netns/testing`);
  const badDevice = interfaceName(device);
  if (badDevice) throw new Error(`linkLabHosts: device: ${badDevice}`);
  const addresses = segmentAddresses(subnet, labs.length);
  const prefix = subnet.split("/")[1];
  const members = labs.map((l, i) => ({ lab: l.name, address: addresses[i], cidr: `${addresses[i]}/${prefix}` }));

  const holder = await startHolder(
    ["setpriv", "--pdeathsig", "KILL", "--", "unshare", "--net", "--", "sh", "-c", SWITCH_SCRIPT],
    false,
    `segment ${subnet} switch`,
  );
  const pid = holder.pid as number;
  const exited = new Promise<void>((r) =>
    holder.exitCode !== null || holder.signalCode !== null ? r() : holder.once("exit", () => r()),
  );
  const inSwitch = ["nsenter", "-t", String(pid), "-n", "--"];
  const detachers: Array<() => void> = [];
  const linked: LabHost[] = []; // the labs whose device this segment made
  let removing: Promise<void> | undefined;
  const attachment: LabAttachment = {
    remove: () => segment.remove(),
    removeSync: () => {
      for (const d of detachers) d();
      holder.kill("SIGKILL");
    },
  };
  const segment: LabSegment = {
    subnet,
    device,
    members,
    pid,
    addressOf(lab) {
      const name = typeof lab === "string" ? lab : lab.name;
      const m = members.find((x) => x.lab === name);
      if (!m) throw new Error(`lab ${show(name)} is not on segment ${subnet}`);
      return m.address;
    },
    remove() {
      removing ??= (async () => {
        for (const d of detachers) d();
        holder.kill("SIGKILL");
        await exited;
        // The kernel frees the namespace, and the veths in it, asynchronously.
        for (const lab of linked) await deviceGone(lab, device).catch((e) => log(String(e)));
        log(`segment ${subnet}: removed`);
      })();
      return removing;
    },
  };
  try {
    for (const [i, lab] of labs.entries()) {
      detachers.push((lab as LabHostImpl).attach(attachment));
      const port = `port${i}`;
      const made = await lab.exec(
        ["ip", "link", "add", device, "type", "veth", "peer", "name", port, "netns", String(pid)],
        { allowFailure: true },
      );
      if (made.code !== 0)
        throw new Error(
          `linkLabHosts: device: cannot add ${show(device)} in lab ${lab.name}: ${made.stderr.trim()}` +
            (/exists/i.test(made.stderr)
              ? " (the lab already has it: is it on another segment? give another device)"
              : ""),
        );
      linked.push(lab);
      await runCommand([...inSwitch, "ip", "link", "set", port, "master", SWITCH_BRIDGE, "up"]);
      await lab.exec(["ip", "-batch", "-"], {
        input: `addr add ${members[i].cidr} dev ${device}\nlink set ${device} up\n`,
      });
    }
    // Resolved means usable and settled: what a test fingerprints next is the link as it stays.
    for (const lab of labs) await deviceUp(lab, device);
  } catch (err) {
    await segment.remove();
    throw err;
  }
  log(`segment ${subnet}: ${members.map((m) => `${m.lab} ${m.address}`).join(", ")}`);
  return segment;
}
