import { command, quote } from "../shell";
import { at } from "./namespace";

/**
 * One iptables rule this package owns. Every rule carries the owner's comment
 * (`pulumi-netns/<kind>/<id>/<claims>`, see ownership.ts), so it is found and
 * removed exactly, and so the host itself records which sysctls its owners changed.
 */
export interface Rule {
  table: "nat" | "filter" | "mangle";
  chain: string;
  /** Insert at the top (FORWARD accepts must come before a DROP a host may already have). */
  insert?: boolean;
  /** Matches and target, without the comment. */
  spec: string[];
  /** 6: an IPv6 rule, made with ip6tables. Absent: IPv4 (an IPv4 rule's state is as before IPv6 came). */
  family?: 6;
}

/** The tool a rule is made with: IPv4 and IPv6 have separate tables. */
const tool = (rule: Rule) => (rule.family === 6 ? "ip6tables" : "iptables");

/** A table of one family, as parseSave keys it: "nat" (IPv4), "6nat" (IPv6). */
export type TableKey = Rule["table"] | `6${Rule["table"]}`;

export function tableKey(rule: Rule): TableKey {
  return rule.family === 6 ? `6${rule.table}` : rule.table;
}

/** The family and table name a key stands for. */
export function tableOfKey(key: TableKey): { table: Rule["table"]; family?: 6 } {
  return key.startsWith("6") ? { table: key.slice(1) as Rule["table"], family: 6 } : { table: key as Rule["table"] };
}

/** Whether a network or address is IPv6 (validated before: IPv6 text has a colon, IPv4 text none). */
export const isIpv6 = (address: string) => address.includes(":");

function argv(ns: string | undefined, verb: string, rule: Rule, comment: string): string {
  return at(ns).exec(tool(rule), "-w", "-t", rule.table, verb, rule.chain, ...withComment(rule.spec, comment));
}

/** The comment goes before the target (`-j`), where iptables -S prints it too. */
function withComment(spec: string[], comment: string): string[] {
  const j = spec.indexOf("-j");
  const at = j < 0 ? spec.length : j;
  return [...spec.slice(0, at), "-m", "comment", "--comment", comment, ...spec.slice(at)];
}

export function addRuleStep(ns: string | undefined, rule: Rule, comment: string): string {
  return argv(ns, rule.insert ? "-I" : "-A", rule, comment);
}

/**
 * The command that removes one copy of the rule, as a human types it (a
 * warning's fix, never run here): our own option words bare, every value quoted
 * where the shell needs it.
 */
export function removeRuleCommand(ns: string | undefined, rule: Rule, comment: string): string {
  const words = [
    ...(ns ? ["ip", "netns", "exec", ns] : []),
    ...[
      rule.family === 6 ? "ip6tables" : "iptables",
      "-w",
      "-t",
      rule.table,
      "-D",
      rule.chain,
      ...withComment(rule.spec, comment),
    ],
  ];
  return words.map((w) => (/^--?[A-Za-z][a-z-]*$/.test(w) || w === "!" ? w : quote(w))).join(" ");
}

/** Removes every copy of the rule; a rule (or namespace) already gone is not an error. */
export function deleteRuleScript(ns: string | undefined, rule: Rule, comment: string): string {
  return `if ${at(ns).exists()}; then while ${argv(ns, "-C", rule, comment)} 2>/dev/null; do ${argv(ns, "-D", rule, comment)} || exit $?; done; fi`;
}

/** Prints one exit code per rule: 0 present, anything else missing. */
export function checkRulesScript(ns: string | undefined, rules: Rule[], comment: string): string {
  return rules.map((r) => `${argv(ns, "-C", r, comment)} >/dev/null 2>&1; echo $?`).join("; ");
}

/** Prints a rule as `iptables -S` would (an IPv6 one after "ip6tables"), for humans reading outputs. */
export function describeRule(rule: Rule, comment: string): string {
  const text = command("-t", rule.table, rule.insert ? "-I" : "-A", rule.chain, ...withComment(rule.spec, comment));
  return rule.family === 6 ? `ip6tables ${text}` : text;
}

/** The line between the IPv4 and the IPv6 dump in saveScript's output (iptables-save prints no such line). */
export const IP6_SAVE_MARK = "#pulumi-netns:ip6tables-save";

/**
 * Dumps every table that exists (`iptables-save` lists only those; `-t` would
 * create one); with `ipv6`, then the IPv6 tables after IP6_SAVE_MARK. Only rule
 * sets with IPv6 rules read those: an IPv4-only host needs no ip6tables at all.
 */
export function saveScript(ns: string | undefined, ipv6 = false): string {
  const v4 = at(ns).exec("iptables-save");
  return ipv6 ? `${v4} && ${command("echo", IP6_SAVE_MARK)} && ${at(ns).exec("ip6tables-save")}` : v4;
}

/** Whether any of the rules is IPv6 (then its rule set reads and releases the IPv6 tables too). */
export const hasIpv6 = (rules: Rule[]) => rules.some((r) => r.family === 6);

export interface SavedTables {
  /** Tables that exist, e.g. "nat", "filter"; IPv6 ones as "6nat", "6filter" (tableKey). */
  tables: Set<string>;
  /** Rule lines ("-A ...") per table. */
  rules: Map<string, string[]>;
  /** Chain policies per table, e.g. filter -> { FORWARD: "DROP" }. */
  policies: Map<string, Record<string, string>>;
}

export function parseSave(text: string): SavedTables {
  const saved: SavedTables = { tables: new Set(), rules: new Map(), policies: new Map() };
  let table = "";
  let family = "";
  for (const line of text.split("\n")) {
    if (line.trim() === IP6_SAVE_MARK) family = "6";
    else if (line.startsWith("*")) {
      table = family + line.slice(1).trim();
      saved.tables.add(table);
      saved.rules.set(table, []);
      saved.policies.set(table, {});
    } else if (line.startsWith("-A ")) saved.rules.get(table)?.push(line);
    else if (line.startsWith(":")) {
      const [chain, policy] = line.slice(1).split(" ");
      const policies = saved.policies.get(table);
      if (policies && policy !== "-") policies[chain] = policy;
    }
  }
  return saved;
}

/**
 * Deletes a table this package's rules brought into existence, once it holds
 * no rule and no non-default policy again (nf_tables keeps empty tables). On
 * hosts without `nft` (or with the legacy backend) the empty table stays.
 */
export function dropEmptyTableScript(ns: string | undefined, key: TableKey): string {
  const { table, family } = tableOfKey(key);
  const nft = at(ns).exec("nft", "delete", "table", family === 6 ? "ip6" : "ip", table);
  const user = family === 6 ? "ip6tables" : "iptables";
  return `if command -v nft >/dev/null 2>&1 && ${user} -V 2>/dev/null | grep -q nf_tables; then ${nft} 2>/dev/null || true; fi`;
}
