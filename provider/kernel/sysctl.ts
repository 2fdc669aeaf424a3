import type { Namespace } from "./namespace";

/**
 * The sysctls this package may change, by the short key used in owner
 * comments. Fixed paths: no user value ever reaches these commands.
 */
export const SYSCTLS = {
  ipfw: "/proc/sys/net/ipv4/ip_forward",
  rtlocal: "/proc/sys/net/ipv4/conf/all/route_localnet",
  /**
   * IPv6 forwarding. Unlike ip_forward, setting all.forwarding=1 also makes
   * every interface a router: the kernel then ignores router advertisements
   * (accept_ra=1 acts as 0), so a host that took its IPv6 address or default
   * route from SLAAC keeps what it has but stops renewing it while this is 1.
   */
  ip6fw: "/proc/sys/net/ipv6/conf/all/forwarding",
} as const;

export type SysctlKey = keyof typeof SYSCTLS;

/** Prints "key=value" per line. /proc/sys/net is per network namespace, hence `ip netns exec`. */
export function readSysctlsScript(ns: Namespace, keys: SysctlKey[]): string {
  const body = keys.map((k) => `printf '%s=%s\\n' ${k} "$(cat ${SYSCTLS[k]})"`).join("; ");
  return ns.exec("sh", "-c", body);
}

export function parseSysctls(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([a-z0-9]+)=(\d+)$/.exec(line.trim());
    // Only the keys this package reads: anything else on the line is not a value of ours.
    if (m && m[1] in SYSCTLS) values[m[1]] = m[2];
  }
  return values;
}

export function writeSysctlStep(ns: Namespace, key: SysctlKey, value: string): string {
  if (!/^\d+$/.test(value)) throw new Error(`refusing to write ${JSON.stringify(value)} to ${SYSCTLS[key]}`);
  return ns.exec("sh", "-c", `echo ${value} > ${SYSCTLS[key]}`);
}
