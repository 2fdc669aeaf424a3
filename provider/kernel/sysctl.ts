import type { Namespace } from "./namespace";

/**
 * The sysctls this package may change, by the short key used in owner
 * comments. Fixed paths: no user value ever reaches these commands.
 */
export const SYSCTLS = {
  ipfw: "/proc/sys/net/ipv4/ip_forward",
  rtlocal: "/proc/sys/net/ipv4/conf/all/route_localnet",
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
    const m = /^([a-z]+)=(\d+)$/.exec(line.trim());
    if (m) values[m[1]] = m[2];
  }
  return values;
}

export function writeSysctlStep(ns: Namespace, key: SysctlKey, value: string): string {
  if (!/^\d+$/.test(value)) throw new Error(`refusing to write ${JSON.stringify(value)} to ${SYSCTLS[key]}`);
  return ns.exec("sh", "-c", `echo ${value} > ${SYSCTLS[key]}`);
}
