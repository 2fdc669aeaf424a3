import { randomBytes } from "node:crypto";
import { runCommand } from "./commands";
import { listLabStates } from "./state";

/**
 * The addresses of lab hosts. Each lab reaches this machine over its own /30
 * in 198.18.0.0/15 (the benchmarking range, unlikely to be in use); behind it,
 * every lab has the same LAN (documentation ranges) to its upstream peer.
 */

export const LAN = {
  peerAddress: "203.0.113.1",
  hostAddress: "203.0.113.2",
  internetAddress: "198.51.100.1",
  // The same LAN's IPv6 side (2001:db8::/32, the documentation prefix), for dual-stack labs.
  peerAddress6: "2001:db8:113::1",
  hostAddress6: "2001:db8:113::2",
  internetAddress6: "2001:db8:100::1",
} as const;

/** The management link: this machine's end and the lab's (where sshd listens). */
export interface ManagementAddresses {
  rootAddress: string;
  address: string;
}

function ipv4ToInt(a: string): number {
  return a.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
}
function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
}
function overlaps(aNet: number, aLen: number, bNet: number, bLen: number): boolean {
  const len = Math.min(aLen, bLen);
  const size = 2 ** (32 - len);
  return Math.floor(aNet / size) === Math.floor(bNet / size);
}

const reservedBlocks = new Set<number>(); // /30s picked by this process but maybe not configured yet

/** The IPv4 networks the root namespace already uses: its addresses, its routes, and every recorded lab's /30. */
async function networksInUse(): Promise<Array<[number, number]>> {
  const used: Array<[number, number]> = [];
  const addrs = JSON.parse((await runCommand(["ip", "-j", "-4", "addr", "show"])).stdout || "[]") as Array<{
    addr_info?: Array<{ local?: string; prefixlen?: number }>;
  }>;
  for (const link of addrs) {
    for (const a of link.addr_info ?? []) {
      if (a.local) used.push([ipv4ToInt(a.local), a.prefixlen ?? 32]);
    }
  }
  const routes = JSON.parse(
    (await runCommand(["ip", "-j", "-4", "route", "show", "table", "all"])).stdout || "[]",
  ) as Array<{ dst?: string }>;
  for (const r of routes) {
    if (!r.dst || r.dst === "default") continue;
    const [addr, len] = r.dst.split("/");
    if (/^\d+\.\d+\.\d+\.\d+$/.test(addr)) used.push([ipv4ToInt(addr), len ? Number(len) : 32]);
  }
  for (const s of listLabStates()) used.push([ipv4ToInt(s.rootAddress), 30]);
  return used;
}

/** Reserves a free /30 inside 198.18.0.0/15 for a new lab's management link. */
export async function reserveManagementAddresses(): Promise<ManagementAddresses> {
  const used = await networksInUse();
  const base = ipv4ToInt("198.18.0.0");
  for (let i = 0; i < 64; i++) {
    const block = base + 4 * (1 + (randomBytes(2).readUInt16BE(0) % 32766));
    if (reservedBlocks.has(block)) continue;
    if (used.some(([n, l]) => overlaps(block, 30, n, l))) continue;
    reservedBlocks.add(block);
    return { rootAddress: intToIpv4(block + 1), address: intToIpv4(block + 2) };
  }
  throw new Error("pulumi-netns lab host: no free /30 found in 198.18.0.0/15");
}

/** Gives a torn-down lab's /30 back. */
export function releaseManagementAddresses(rootAddress: string): void {
  reservedBlocks.delete(ipv4ToInt(rootAddress) - 1);
}
