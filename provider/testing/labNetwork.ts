import * as ipaddr from "ipaddr.js";
import { fromBig, toBig } from "../kernel/cidr";
import { interfaceName, ipv4Network, ipv6Network, show } from "../validate";
import { type LabExecOptions, type LabExecResult, namespaceLink, runCommand, sleep } from "./commands";
import type { LabHost } from "./labHost";
import { type LabAttachment, LabHostImpl } from "./labHost";
import { startHolder } from "./launch";
import { isLabAlive, readLabState, removeSegmentState, type SegmentState, writeSegmentState } from "./state";

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
  /** An IPv6 subnet besides, e.g. "2001:db8:2::/64": lab i gets its (i+1)-th address too (no DAD). Default: none. */
  subnet6?: string;
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
  /** With subnet6: its IPv6 address, e.g. "2001:db8:2::1", and with the prefix. */
  address6?: string;
  cidr6?: string;
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

/** The IPv6 addresses lab 0..count-1 get: the subnet's ::1, ::2, ... Throws naming the field when they do not fit. */
export function segmentAddresses6(subnet6: string, count: number): string[] {
  const bad = ipv6Network(subnet6);
  if (bad) throw new Error(`linkLabHosts: subnet6: ${bad}`);
  const [network, prefix] = subnet6.split("/");
  if (BigInt(count) >= 1n << BigInt(128 - Number(prefix)))
    throw new Error(`linkLabHosts: subnet6: ${show(subnet6)} is too small for ${count} labs; use a larger subnet6`);
  return Array.from({ length: count }, (_, i) => fromBig(toBig(network) + BigInt(i + 1)));
}

/** What linking needs of a lab: its name, a way to run commands in it, and (for labs of this process) to be told of the segment. */
interface LinkTarget {
  name: string;
  exec(cmd: string[], opts?: LabExecOptions): Promise<LabExecResult>;
  attach?(attachment: LabAttachment): () => void;
  /** Recorded with a detached segment, so a later stop finds it. */
  holderPid: number;
}

async function deviceGone(lab: LinkTarget, device: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await lab.exec(["ip", "-j", "link", "show", "dev", device], { allowFailure: true });
    if (r.code !== 0) return;
    await sleep(20);
  }
  throw new Error(`lab ${lab.name}: ${device} still there 2 s after its segment was removed`);
}

function checkNames(names: string[]): void {
  if (names.length < 2) throw new Error("linkLabHosts: labs: give two or more lab hosts");
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new Error(`linkLabHosts: labs: lab ${show(twice)} is listed twice`);
}

/** Links two or more labs started by this process through one switch; see the module comment. */
export async function linkLabHosts(labs: LabHost[], opts: LinkLabHostsOptions = {}): Promise<LabSegment> {
  if (!Array.isArray(labs)) throw new Error("linkLabHosts: labs: give two or more lab hosts");
  checkNames(labs.map((l) => l.name));
  for (const lab of labs)
    if (!(lab instanceof LabHostImpl))
      throw new Error(
        `linkLabHosts: labs: ${show(lab?.name)} was not started by this copy of pulumi-netns/testing (a lab started by \`pulumi-netns-lab start\` is linked with \`pulumi-netns-lab link\`)`,
      );
  const targets = (labs as LabHostImpl[]).map((lab) => ({
    name: lab.name,
    exec: (cmd: string[], o?: LabExecOptions) => lab.exec(cmd, o),
    attach: (a: LabAttachment) => lab.attach(a),
    holderPid: lab.pid,
  }));
  return link(targets, opts, false);
}

/**
 * @internal For the CLI: links labs recorded on this machine (`pulumi-netns-lab
 * start`), found by name. The switch outlives this process; it is recorded in
 * the state directory and removed when any of its labs is stopped.
 */
export async function linkRecordedLabs(names: string[], opts: LinkLabHostsOptions = {}): Promise<LabSegment> {
  checkNames(names);
  const targets: LinkTarget[] = names.map((name) => {
    const state = readLabState(name);
    if (!state)
      throw new Error(`linkLabHosts: labs: no lab host named ${show(name)} (pulumi-netns-lab list shows the labs)`);
    if (!isLabAlive(state))
      throw new Error(
        `linkLabHosts: labs: lab ${show(name)} is not running (its record outlived it): remove it with pulumi-netns-lab stop ${name}`,
      );
    return {
      name,
      exec: (cmd: string[], o?: LabExecOptions) =>
        runCommand(["nsenter", "-t", String(state.holderPid), "-n", "-m", "--", ...cmd], o),
      holderPid: state.holderPid,
    };
  });
  return link(targets, opts, true);
}

async function link(labs: LinkTarget[], opts: LinkLabHostsOptions, detached: boolean): Promise<LabSegment> {
  const subnet = opts.subnet ?? "192.0.2.0/24";
  const device = opts.device ?? "eth1";
  const log = opts.log ?? (() => {});
  const badDevice = interfaceName(device);
  if (badDevice) throw new Error(`linkLabHosts: device: ${badDevice}`);
  const addresses = segmentAddresses(subnet, labs.length);
  const prefix = subnet.split("/")[1];
  const addresses6 = opts.subnet6 === undefined ? undefined : segmentAddresses6(opts.subnet6, labs.length);
  const prefix6 = opts.subnet6?.split("/")[1];
  const members: LabSegmentMember[] = labs.map((l, i) => ({
    lab: l.name,
    address: addresses[i],
    cidr: `${addresses[i]}/${prefix}`,
    ...(addresses6 ? { address6: addresses6[i], cidr6: `${addresses6[i]}/${prefix6}` } : {}),
  }));

  // Detached, the switch outlives this process (no pdeathsig, its own session), as a CLI lab does.
  const guard = detached ? [] : ["setpriv", "--pdeathsig", "KILL", "--"];
  const holder = await startHolder(
    [...guard, "unshare", "--net", "--", "sh", "-c", SWITCH_SCRIPT],
    detached,
    `segment ${subnet} switch`,
  );
  const pid = holder.pid as number;
  let record: SegmentState | undefined;
  if (detached) {
    // Recorded before any lab is touched, so a stop finds the switch even if this process dies mid-link.
    record = {
      version: 1,
      subnet,
      device,
      pid,
      netNs: namespaceLink(pid, "net") ?? "",
      members: labs.map((l, i) => ({ ...members[i], holderPid: l.holderPid })),
    };
    writeSegmentState(record);
  }
  const exited = new Promise<void>((r) =>
    holder.exitCode !== null || holder.signalCode !== null ? r() : holder.once("exit", () => r()),
  );
  const inSwitch = ["nsenter", "-t", String(pid), "-n", "--"];
  const detachers: Array<() => void> = [];
  const linked: LinkTarget[] = []; // the labs whose device this segment made
  let removing: Promise<void> | undefined;
  let linkingFailed = false;
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
        // A detached switch is unref'd: without this, a CLI whose link failed would exit (0, silently) while waiting here.
        holder.ref();
        await exited;
        // The kernel frees the namespace, and the veths in it, asynchronously.
        for (const lab of linked) await deviceGone(lab, device).catch((e) => log(String(e)));
        if (record) removeSegmentState(record);
        log(
          linkingFailed
            ? `segment ${subnet}: linking failed; removed the parts this call had made (no other segment was touched)`
            : `segment ${subnet}: removed`,
        );
      })();
      return removing;
    },
  };
  try {
    for (const [i, lab] of labs.entries()) {
      if (lab.attach) detachers.push(lab.attach(attachment));
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
        input:
          `addr add ${members[i].cidr} dev ${device}\n` +
          (members[i].cidr6 ? `addr add ${members[i].cidr6} dev ${device} nodad\n` : "") +
          `link set ${device} up\n`,
      });
    }
    // Returned settled: carrier up and IPv6 duplicate address detection done, so a fingerprint taken
    // now is the one the labs keep (the kernel flips eth1's operstate and "tentative" a moment later).
    for (const lab of labs) await settled(lab, device);
  } catch (err) {
    linkingFailed = true;
    await segment.remove();
    throw err;
  }
  log(`segment ${subnet}: ${members.map((m) => `${m.lab} ${m.address}`).join(", ")}`);
  return segment;
}

/** Waits (up to 10 s) until `device` in `lab` is up with carrier and none of its addresses is tentative. */
async function settled(lab: LinkTarget, device: string): Promise<void> {
  let seen = "";
  for (let i = 0; i < 100; i++) {
    const [link] = JSON.parse((await lab.exec(["ip", "-j", "addr", "show", "dev", device])).stdout || "[]");
    const tentative = (link?.addr_info ?? []).some((a: { tentative?: boolean }) => a.tentative);
    if (link?.operstate === "UP" && !link.flags?.includes("NO-CARRIER") && !tentative) return;
    seen = `operstate ${link?.operstate}, flags ${(link?.flags ?? []).join(",")}${tentative ? ", an address still tentative" : ""}`;
    await sleep(100);
  }
  throw new Error(
    `linkLabHosts: lab ${lab.name}: ${device} is not settled 10 s after linking (${seen}); is the machine overloaded? stop other labs (pulumi-netns-lab list) and retry`,
  );
}
