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

/**
 * Prints "key=value" per line, and "key.was=value" for each key with a record
 * (switchOnStep). /proc/sys/net is per network namespace, hence `ip netns exec`.
 */
export function readSysctlsScript(ns: Namespace, keys: SysctlKey[]): string {
  const values = keys.map((k) => `printf '%s=%s\\n' ${k} "$(cat ${SYSCTLS[k]})"; `).join("");
  // Every record of the namespace, of sysctls and tables alike (recordFile).
  const records =
    `for f in ${RECORD_PREFIX}*.${NETNS_INODE}; do ${IS_RECORD} || { k=\${f#${RECORD_PREFIX}}; ` +
    `printf '%s.was=%s\\n' "\${k%.*}" "$(sed -n 's/^was=//p' "$f" | head -n 1)"; }; done`;
  return ns.exec("sh", "-c", values + records);
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

/**
 * The values records hold (readSysctlsScript's "key.was=" lines), by claim key:
 * what each switch was before this package switched it on, and "0" for each
 * table it brought into being.
 */
export function parseRecords(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([a-z0-9]+)\.was=(\d+)$/.exec(line.trim());
    if (m) values[m[1]] = m[2];
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
 * was 0 would come back 0.
 */
const PER_INTERFACE: Partial<Record<SysctlKey, string>> = {
  ipfw: "/proc/sys/net/ipv4/conf",
  ip6fw: "/proc/sys/net/ipv6/conf",
};

const RECORD_PREFIX = "/run/pulumi-netns.";
const NETNS_INODE = "$(readlink /proc/self/ns/net | tr -dc 0-9)";

/**
 * The record of one switch in one network namespace: written when this
 * package switches it on, gone when the last owner puts it back. It holds the
 * value before ("was=0") and, for a forwarding switch, the interfaces whose
 * own forwarding was 1 ("IFINDEX NAME"; default as 0). Its existence is what
 * an owner's claim is taken from, since owner comments can be flushed or
 * forged: a firewall reload hides the first owner, the record stays. In /run
 * (gone after a reboot, as the switch's value is), named by the namespace's
 * inode, so lab hosts sharing /run never share one; a Namespace's delete
 * removes its namespace's records (forgetRecordsStep), as the inode is reused.
 */
const recordFile = (key: string) => {
  if (!/^[a-z0-9]+$/.test(key)) throw new Error(`no record is named ${JSON.stringify(key)}`);
  return `"${RECORD_PREFIX}${key}.${NETNS_INODE}"`;
};

/** Shell test, true when "$f" is NOT a record: a record is a regular file, never a link (which would point elsewhere). */
const IS_RECORD = '{ [ ! -f "$f" ] || [ -L "$f" ]; }';

/**
 * Writes what `print` prints as the record "$f": into a new file of mktemp's
 * (made exclusively), then renamed over "$f", so a link someone put at the
 * record's path is replaced, never written through; a directory there fails the step (mv would move
 * the file into it).
 */
const writeRecord = (print: string) =>
  `{ [ ! -d "$f" ] || { echo "$f is a directory, not a record of pulumi-netns" >&2; false; }; } && ` +
  `t=$(mktemp "$f.XXXXXX") && ${print} > "$t" && mv -f "$t" "$f"`;

/** Records that this package brought a table (claim key, e.g. "tnat") into being: its last owner drops it. */
export const recordTableStep = (ns: Namespace, claimKey: string): string =>
  ns.exec("sh", "-c", `f=${recordFile(claimKey)}; ${writeRecord("echo was=0")}`);

/** Removes the record of a claim (its last owner is gone). */
export const forgetRecordStep = (ns: Namespace, claimKey: string): string =>
  ns.exec("sh", "-c", `rm -f ${recordFile(claimKey)}`);

/** Prints every record of the namespace (for the owner digest: a plan depends on them). */
export const printRecords = (): string =>
  `for f in ${RECORD_PREFIX}*.${NETNS_INODE}; do ${IS_RECORD} || { echo "$f"; cat "$f"; }; done`;

/** Removes the records of a namespace about to be deleted (run inside it). */
export const forgetRecordsStep = (ns: Namespace): string =>
  ns.exec("sh", "-c", `rm -f ${RECORD_PREFIX}*.${NETNS_INODE}`);

/**
 * Switches `key` on (it is not 1 now). With `record` (no record exists: this
 * owner is the one switching it on from `was`), first writes the record.
 */
export function switchOnStep(ns: Namespace, key: SysctlKey, record: boolean, was: string): string {
  if (!record) return writeSysctlStep(ns, key, "1");
  const dir = PER_INTERFACE[key];
  const interfaces = dir
    ? `for d in /sys/class/net/*; do n=\${d##*/}; [ "$(cat "${dir}/$n/forwarding" 2>/dev/null)" != 1 ] || ` +
      `printf '%s %s\\n' "$(cat "$d/ifindex")" "$n"; done; [ "$(cat ${dir}/default/forwarding)" != 1 ] || echo "0 default"; `
    : "";
  const write = writeRecord(`{ echo was=${checked(key, was)}; ${interfaces}}`);
  return ns.exec("sh", "-c", `f=${recordFile(key)}; ${write} && echo 1 > ${SYSCTLS[key]}`);
}

/**
 * Puts `key` back to the value its record holds (none: `fallback`, the owner's
 * claim), written only if it differs (an IPv6 write of the same value still
 * rewrites every interface), then sets back to 1 each recorded interface that
 * is still there under its ifindex (renamed, it is found by that; gone, or its
 * index taken by another, nothing is written), and removes the record.
 */
export function putBackStep(ns: Namespace, key: SysctlKey, fallback: string): string {
  const dir = PER_INTERFACE[key];
  const restore = dir
    ? `while read -r i n; do case "$i" in *[!0-9]*|"") continue;; esac; ` +
      `if [ "$i" = 0 ]; then [ "$n" != default ] || echo 1 > ${dir}/default/forwarding; continue; fi; ` +
      `for d in /sys/class/net/*; do [ "$(cat "$d/ifindex" 2>/dev/null)" != "$i" ] || ` +
      `{ p="${dir}/\${d##*/}/forwarding"; [ ! -e "$p" ] || echo 1 > "$p"; }; done; done < "$f"; `
    : "";
  return ns.exec(
    "sh",
    "-c",
    `f=${recordFile(key)}; was=${checked(key, fallback)}; ` +
      `if ! ${IS_RECORD}; then r=$(sed -n 's/^was=//p' "$f" | head -n 1); case "$r" in ""|*[!0-9]*) ;; *) was=$r;; esac; fi; ` +
      `[ "$(cat ${SYSCTLS[key]})" = "$was" ] || echo "$was" > ${SYSCTLS[key]}; ` +
      `if ! ${IS_RECORD}; then ${restore}:; fi; rm -f "$f"`,
  );
}

/**
 * A base chain of a table that exists, which the first rule in it brings into
 * being on an nf_tables host (iptables-nft makes a table's built-in chains one
 * by one, as rules need them: a user's `table ip nat` with only POSTROUTING
 * gains PREROUTING and OUTPUT from a PortForward). Recorded when this package
 * brings it; its last rule's owner deletes it again once empty (`nft delete
 * chain` refuses a chain with rules: another owner's stay). A chain of a table
 * this package brought goes with the table.
 */
export interface ChainOf {
  table: string;
  chain: string;
  family?: 6;
}

const chainRecordKey = (c: ChainOf) => {
  if (!/^[a-z]+$/.test(c.table) || !/^[A-Z]+$/.test(c.chain)) throw new Error(`no chain ${c.table} ${c.chain}`);
  return `ch${c.family === 6 ? "6" : ""}${c.table}${c.chain.toLowerCase()}`;
};

const nftOnly = (c: ChainOf) =>
  `command -v nft >/dev/null 2>&1 && ${c.family === 6 ? "ip6tables" : "iptables"} -V 2>/dev/null | grep -q nf_tables`;
const nftTable = (c: ChainOf) => `${c.family === 6 ? "ip6" : "ip"} ${c.table}`;

/** Records the chain when its table exists without it (run before the rules go in). */
export function recordChainStep(ns: Namespace, c: ChainOf): string {
  const t = nftTable(c);
  return ns.exec(
    "sh",
    "-c",
    `if ${nftOnly(c)} && nft list table ${t} >/dev/null 2>&1 && ! nft list chain ${t} ${c.chain} >/dev/null 2>&1; ` +
      `then f=${recordFile(chainRecordKey(c))}; ${writeRecord("echo was=0")}; fi; true`,
  );
}

/** Deletes a recorded chain once it is empty, with its record; a record whose table is gone goes too. */
export function dropChainStep(ns: Namespace, c: ChainOf): string {
  const t = nftTable(c);
  return ns.exec(
    "sh",
    "-c",
    `f=${recordFile(chainRecordKey(c))}; if ! ${IS_RECORD}; then ` +
      `if ! nft list table ${t} >/dev/null 2>&1; then rm -f "$f"; ` +
      // `nft delete chain` takes a chain's rules with it (measured on 6.18): only an empty one goes.
      `elif ! nft -j list chain ${t} ${c.chain} 2>/dev/null | grep -q '"rule"' && nft delete chain ${t} ${c.chain} 2>/dev/null; ` +
      `then rm -f "$f"; fi; fi; true`,
  );
}
