import { inNamespace } from "./exec";

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
export function readSysctlsScript(ns: string | undefined, keys: SysctlKey[]): string {
  const body = keys.map((k) => `printf '%s=%s\\n' ${k} "$(cat ${SYSCTLS[k]})"`).join("; ");
  return inNamespace(ns, "sh", "-c", body);
}

export function parseSysctls(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([a-z]+)=(\d+)$/.exec(line.trim());
    if (m) values[m[1]] = m[2];
  }
  return values;
}

export function writeSysctlStep(ns: string | undefined, key: SysctlKey, value: string): string {
  if (!/^\d+$/.test(value)) throw new Error(`refusing to write ${JSON.stringify(value)} to ${SYSCTLS[key]}`);
  return inNamespace(ns, "sh", "-c", `echo ${value} > ${SYSCTLS[key]}`);
}
