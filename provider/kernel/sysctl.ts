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
  return ns.exec("sh", "-c", `echo ${checked(key, value)} > ${SYSCTLS[key]}`);
}

function checked(key: SysctlKey, value: string): string {
  if (!/^\d+$/.test(value)) throw new Error(`refusing to write ${JSON.stringify(value)} to ${SYSCTLS[key]}`);
  return value;
}

/**
 * The global forwarding switches, each with the directory of its family's
 * per-interface values. Writing the switch rewrites every interface's own
 * `forwarding` and default's (IPv6 even when the switch does not change:
 * measured on 6.18), so an interface a person had set to 1 while the switch
 * was 0 would come back 0. The interfaces that were 1 are recorded when this
 * package switches forwarding on, and set back when it puts the switch back.
 */
const PER_INTERFACE: Partial<Record<SysctlKey, string>> = {
  ipfw: "/proc/sys/net/ipv4/conf",
  ip6fw: "/proc/sys/net/ipv6/conf",
};

/**
 * Where the record of one namespace's interfaces lives: /run (gone after a
 * reboot, as the switch's value is), named by the network namespace's inode so
 * two namespaces (or lab hosts sharing /run) never share one.
 */
const recordFile = (key: SysctlKey) => `"/run/pulumi-netns.${key}.$(readlink /proc/self/ns/net | tr -dc 0-9)"`;

/** Switches `key` on (it is not 1 now), first recording the interfaces whose own forwarding is 1. */
export function switchOnStep(ns: Namespace, key: SysctlKey): string {
  const dir = PER_INTERFACE[key];
  if (!dir) return writeSysctlStep(ns, key, "1");
  const record =
    `f=${recordFile(key)}; for p in ${dir}/*/forwarding; do case "$p" in ${dir}/all/forwarding) continue;; esac; ` +
    `[ "$(cat "$p")" != 1 ] || printf '%s\n' "$p"; done > "$f"`;
  return ns.exec("sh", "-c", `${record} && echo 1 > ${SYSCTLS[key]}`);
}

/**
 * Puts `key` back to `value` (the value before the first owner), written only
 * if it differs (an IPv6 write of the same value still rewrites every
 * interface), then sets back to 1 the interfaces recorded when it was switched
 * on, those still there.
 */
export function putBackStep(ns: Namespace, key: SysctlKey, value: string): string {
  const write = `[ "$(cat ${SYSCTLS[key]})" = ${checked(key, value)} ] || echo ${value} > ${SYSCTLS[key]}`;
  const dir = PER_INTERFACE[key];
  if (!dir) return ns.exec("sh", "-c", write);
  const restore =
    `f=${recordFile(key)}; [ ! -f "$f" ] || while read -r p; do case "$p" in ${dir}/*/forwarding) ` +
    `[ ! -e "$p" ] || echo 1 > "$p";; esac; done < "$f"; rm -f "$f"`;
  return ns.exec("sh", "-c", `${write} && { ${restore}; }`);
}
