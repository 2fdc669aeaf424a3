import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LAN, type ManagementAddresses, reserveManagementAddresses } from "./addressing";
import { LAB_ENV, namespaceLink, runCommand } from "./commands";
import { liveLab } from "./liveLabs";
import { assertLabPrerequisites } from "./prerequisites";
import {
  CLIENT_KEY_FILE,
  configureSshd,
  generateKey,
  HOST_KEY_FILE,
  HOST_KEY_FILES,
  publicKeyOf,
  spawnSshd,
  waitForSshd,
} from "./sshd";
import { isLabAlive, LAB_NAME, type LabHostState, listLabStates, readLabState, writeLabState } from "./state";
import { teardownLab } from "./teardown";

/**
 * Starting a lab: two namespace holders (the lab and its LAN peer), the links
 * between this machine, the lab and the peer, then sshd. Every step records
 * what it made, so a failed launch takes down exactly that.
 */

export interface LabHostOptions {
  /** Lab name ([a-z0-9-], max 32 chars). Defaults to `lab-<6 hex>`. */
  name?: string;
  /** Writes `/root/.bashrc` with `sleep 0.15` in the lab's private home: a slow login shell. */
  heavyShell?: boolean;
  /** Sets the lab's iptables FORWARD policy to DROP, the way Docker leaves hosts. */
  forwardPolicyDrop?: boolean;
  /** Receives progress lines and sshd's stderr. */
  log?: (line: string) => void;
}

/** @internal Options shared by the library and the CLI. */
export interface LaunchOptions extends LabHostOptions {
  /** Survive this process (CLI labs): no pdeathsig, no exit handlers. */
  detached?: boolean;
}

// The lab gets a private /run (so `ip netns` state, sshd's privsep dir and
// xtables.lock are per lab and nothing is created on the machine's /run) and a
// private /root (so the machine's own shell rc files never run in the lab), and
// a sysfs of its own, mounted from inside its network namespace (as `ip netns
// exec` does), so that /sys/class/net shows the lab's interfaces as a host's
// does, not the machine's (the announcements in kernel/link read it).
const LAB_HOLDER_SCRIPT = [
  "set -e",
  "mount -t tmpfs -o mode=0755,size=16m pulumi-netns-lab /run",
  "mount -t sysfs pulumi-netns-lab /sys",
  "mkdir -p /run/netns /run/sshd /run/lock",
  "mount -t tmpfs -o mode=0700,size=16m pulumi-netns-lab /root",
  "ip link set lo up",
  "echo ready",
  "exec sleep infinity </dev/null >/dev/null 2>&1",
].join("\n");
const LAN_HOLDER_SCRIPT = [
  "set -e",
  "ip link set lo up",
  "echo ready",
  "exec sleep infinity </dev/null >/dev/null 2>&1",
].join("\n");

/** A lab being launched: what exists of it so far. */
interface Launching {
  name: string;
  dir: string;
  detached: boolean;
  /** Prefixes every long-lived process: pdeathsig ties it to this node process's lifetime, covering kill -9. */
  guard: string[];
  children: ChildProcess[];
  made: Partial<LabHostState>;
  log: (line: string) => void;
}

/** @internal Starts a lab and returns its recorded state and live children. */
export async function launch(opts: LaunchOptions): Promise<{ state: LabHostState; children: ChildProcess[] }> {
  assertLabPrerequisites();
  const log = opts.log ?? (() => {});
  const detached = opts.detached ?? false;
  const name = await claimName(opts.name ?? `lab-${randomBytes(3).toString("hex")}`, log);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pulumi-netns-lab-${name}-`));
  const lab: Launching = {
    name,
    dir,
    detached,
    guard: detached ? [] : ["setpriv", "--pdeathsig", "KILL", "--"],
    children: [],
    made: {},
    log,
  };
  try {
    const { holderPid, lanPid } = await startHolders(lab);
    const keysReady = Promise.all([
      ...HOST_KEY_FILES.map((k) => generateKey(path.join(dir, k.file), `pulumi-netns-lab ${name} host`, "", k)),
      generateKey(path.join(dir, CLIENT_KEY_FILE), `pulumi-netns-lab ${name} client`),
    ]);
    const management = await createManagementVeth(lab, holderPid);
    await wireNetworks(management, holderPid, lanPid);
    await applyLabOptions(opts, holderPid);
    await keysReady;
    await startSshd(lab, holderPid, management.address);
    const state = recordState(lab);
    writeLabState(state);
    return { state, children: lab.children };
  } catch (err) {
    await abandon(lab);
    throw err;
  }
}

/** Checks the name is free; first tears down labs whose processes died with their owner. */
async function claimName(name: string, log: (line: string) => void): Promise<string> {
  if (!LAB_NAME.test(name)) throw new Error(`invalid lab name ${JSON.stringify(name)}: use [a-z0-9-], max 32 chars`);
  if (liveLab(name)) throw new Error(`lab ${name} is already running in this process`);
  // A recorded lab whose holder is gone was left by a process that died without
  // running its exit handlers (kill -9): the kernel took its namespaces, files remain.
  for (const stale of listLabStates()) {
    if (!isLabAlive(stale) && !liveLab(stale.name)) await teardownLab(stale, log);
  }
  const existing = readLabState(name);
  if (existing) throw new Error(`lab ${name} is already running (pid ${existing.holderPid})`);
  return name;
}

/** Starts a namespace holder and resolves once its setup script said "ready" (also a shared segment's switch, see labNetwork.ts). */
export function startHolder(argv: string[], detached: boolean, label: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { env: LAB_ENV, stdio: ["ignore", "pipe", "pipe"], detached });
    let out = "";
    let err = "";
    let settled = false;
    const done = (e?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdout?.removeAllListeners("data");
      child.stderr?.removeAllListeners("data");
      // The holder redirected its own stdio to /dev/null before exec'ing sleep, so the
      // pipes can go: they must not keep this process's event loop alive.
      child.stdout?.destroy();
      child.stderr?.destroy();
      child.unref();
      if (e) {
        child.kill("SIGKILL");
        reject(e);
      } else {
        resolve(child);
      }
    };
    const timer = setTimeout(() => done(new Error(`${label}: not ready after 5 s: ${err.trim()}`)), 5000);
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      if (out.includes("ready\n")) done();
    });
    child.stderr?.setEncoding("utf8").on("data", (d: string) => (err += d));
    child.on("error", (e) => done(new Error(`${label}: ${e.message}`)));
    child.on("exit", (code) => done(new Error(`${label} exited with ${code}: ${err.trim()}`)));
  });
}

/** The lab's holder (network + mount namespace) and the LAN peer's (network namespace), started together. */
async function startHolders(lab: Launching): Promise<{ holderPid: number; lanPid: number }> {
  const started = await Promise.allSettled([
    startHolder(
      [...lab.guard, "unshare", "--net", "--mount", "--propagation", "private", "--", "sh", "-c", LAB_HOLDER_SCRIPT],
      lab.detached,
      `lab ${lab.name} holder`,
    ),
    startHolder(
      [...lab.guard, "unshare", "--net", "--", "sh", "-c", LAN_HOLDER_SCRIPT],
      lab.detached,
      `lab ${lab.name} LAN peer`,
    ),
  ]);
  for (const s of started) if (s.status === "fulfilled") lab.children.push(s.value);
  for (const s of started) if (s.status === "rejected") throw s.reason;
  const [holder, lanHolder] = lab.children;
  const holderPid = holder.pid as number;
  const lanPid = lanHolder.pid as number;
  Object.assign(lab.made, {
    holderPid,
    lanPid,
    mntNs: namespaceLink(holderPid, "mnt"),
    netNs: namespaceLink(holderPid, "net"),
    lanNetNs: namespaceLink(lanPid, "net"),
  });
  if (!lab.made.mntNs || !lab.made.netNs || !lab.made.lanNetNs) throw new Error(`lab ${lab.name}: holder vanished`);
  return { holderPid, lanPid };
}

/** The management link, this machine to the lab: a veth (a fresh `pnl…` name here, mgmt0 there) on a free /30. */
interface ManagementLink extends ManagementAddresses {
  rootVeth: string;
}

async function createManagementVeth(lab: Launching, holderPid: number): Promise<ManagementLink> {
  const addresses = await reserveManagementAddresses();
  for (let i = 0; ; i++) {
    const candidate = `pnl${randomBytes(3).toString("hex")}`;
    const r = await runCommand(
      ["ip", "link", "add", candidate, "type", "veth", "peer", "name", "mgmt0", "netns", String(holderPid)],
      { allowFailure: true },
    );
    if (r.code === 0) {
      const link = { rootVeth: candidate, ...addresses };
      Object.assign(lab.made, link);
      return link;
    }
    if (!/exists/i.test(r.stderr) || i > 5) throw new Error(`ip link add ${candidate}: ${r.stderr.trim()}`);
  }
}

/**
 * Addresses both ends of the management link; links the lab's eth0 to the LAN
 * peer's lan0, gives the peer its "internet" address and the lab its default route.
 */
async function wireNetworks(management: ManagementLink, holderPid: number, lanPid: number): Promise<void> {
  const { rootVeth, rootAddress, address } = management;
  const nsLab = ["nsenter", "-t", String(holderPid), "-n", "--"];
  const nsLan = ["nsenter", "-t", String(lanPid), "-n", "--"];
  await Promise.all([
    runCommand(["ip", "-batch", "-"], {
      input: `addr add ${rootAddress}/30 dev ${rootVeth}\nlink set ${rootVeth} up\n`,
    }),
    runCommand([
      ...nsLab,
      "ip",
      "link",
      "add",
      "eth0",
      "type",
      "veth",
      "peer",
      "name",
      "lan0",
      "netns",
      String(lanPid),
    ]),
  ]);
  await Promise.all([
    runCommand([...nsLan, "ip", "-batch", "-"], {
      input: [
        `addr add ${LAN.peerAddress}/24 dev lan0`,
        // nodad: usable at once (no duplicate can be on a two-end cable).
        `addr add ${LAN.peerAddress6}/64 dev lan0 nodad`,
        "link set lan0 up",
        `addr add ${LAN.internetAddress}/32 dev lo`,
        `addr add ${LAN.internetAddress6}/128 dev lo`,
        "",
      ].join("\n"),
    }),
    // New namespaces may inherit IPv4 sysctls from the machine; a fresh host and a
    // plain peer router are what the provider's tests assume.
    runCommand([...nsLan, "sysctl", "-qw", "net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0"]),
    runCommand([...nsLab, "sysctl", "-qw", "net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0"]),
  ]);
  await runCommand([...nsLab, "ip", "-batch", "-"], {
    input: [
      `addr add ${address}/30 dev mgmt0`,
      "link set mgmt0 up",
      `addr add ${LAN.hostAddress}/24 dev eth0`,
      `addr add ${LAN.hostAddress6}/64 dev eth0 nodad`,
      "link set eth0 up",
      `route add default via ${LAN.peerAddress} dev eth0`,
      `route add default via ${LAN.peerAddress6} dev eth0`,
      "",
    ].join("\n"),
  });
}

/** The lab's optional quirks: a FORWARD policy of DROP, a slow login shell. */
async function applyLabOptions(opts: LaunchOptions, holderPid: number): Promise<void> {
  if (opts.forwardPolicyDrop)
    await runCommand(["nsenter", "-t", String(holderPid), "-n", "--", "iptables", "-w", "-P", "FORWARD", "DROP"]);
  if (opts.heavyShell) {
    // The lab's /root is its private tmpfs, reached through the holder's root.
    fs.writeFileSync(`/proc/${holderPid}/root/root/.bashrc`, "# pulumi-netns lab: a slow login shell\nsleep 0.15\n");
  }
}

async function startSshd(lab: Launching, holderPid: number, address: string): Promise<void> {
  configureSshd(lab.dir, address);
  const { sshd, failure } = spawnSshd({ ...lab, holderPid });
  lab.children.push(sshd);
  lab.made.sshdPid = sshd.pid;
  await waitForSshd(address, 22, 5000, failure);
}

/** The finished lab's record. */
function recordState(lab: Launching): LabHostState {
  const m = lab.made as Required<LabHostState>;
  return {
    version: 1,
    name: lab.name,
    dir: lab.dir,
    ownerPid: lab.detached ? null : process.pid,
    holderPid: m.holderPid,
    lanPid: m.lanPid,
    sshdPid: m.sshdPid,
    mntNs: m.mntNs,
    netNs: m.netNs,
    lanNetNs: m.lanNetNs,
    rootVeth: m.rootVeth,
    rootAddress: m.rootAddress,
    address: m.address,
    connection: {
      host: m.address,
      port: 22,
      user: "root",
      privateKey: fs.readFileSync(path.join(lab.dir, CLIENT_KEY_FILE), "utf8"),
      hostKey: publicKeyOf(path.join(lab.dir, HOST_KEY_FILE)),
    },
    hostKeys: HOST_KEY_FILES.map((k) => publicKeyOf(path.join(lab.dir, k.file))),
    startedAt: new Date().toISOString(),
  };
}

/** Tears down whatever a failed launch made so far; the namespaces are found through the holders. */
async function abandon(lab: Launching): Promise<void> {
  const m = lab.made;
  const known: LabHostState = {
    version: 1,
    name: lab.name,
    dir: lab.dir,
    ownerPid: null,
    holderPid: m.holderPid ?? -1,
    lanPid: m.lanPid ?? -1,
    sshdPid: m.sshdPid ?? -1,
    mntNs: m.mntNs ?? "",
    netNs: m.netNs ?? "",
    lanNetNs: m.lanNetNs ?? "",
    rootVeth: m.rootVeth ?? "",
    rootAddress: m.rootAddress ?? "0.0.0.1",
    address: m.address ?? "",
    connection: { host: "", port: 22, user: "root", privateKey: "", hostKey: "" },
    hostKeys: [],
    startedAt: "",
  };
  for (const c of lab.children) c.kill("SIGKILL");
  if (known.mntNs || known.netNs) await teardownLab(known, lab.log);
  else fs.rmSync(lab.dir, { recursive: true, force: true });
}
