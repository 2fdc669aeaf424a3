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
}

function argv(ns: string | undefined, verb: string, rule: Rule, comment: string): string {
  return at(ns).exec("iptables", "-w", "-t", rule.table, verb, rule.chain, ...withComment(rule.spec, comment));
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
    ...["iptables", "-w", "-t", rule.table, "-D", rule.chain, ...withComment(rule.spec, comment)],
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

/** Prints a rule as `iptables -S` would, for humans reading outputs. */
export function describeRule(rule: Rule, comment: string): string {
  return command("-t", rule.table, rule.insert ? "-I" : "-A", rule.chain, ...withComment(rule.spec, comment));
}

/** Dumps every table that exists (`iptables-save` lists only those; `-t` would create one). */
export function saveScript(ns: string | undefined): string {
  return at(ns).exec("iptables-save");
}

export interface SavedTables {
  /** Tables that exist, e.g. "nat", "filter". */
  tables: Set<string>;
  /** Rule lines ("-A ...") per table. */
  rules: Map<string, string[]>;
  /** Chain policies per table, e.g. filter -> { FORWARD: "DROP" }. */
  policies: Map<string, Record<string, string>>;
}

export function parseSave(text: string): SavedTables {
  const saved: SavedTables = { tables: new Set(), rules: new Map(), policies: new Map() };
  let table = "";
  for (const line of text.split("\n")) {
    if (line.startsWith("*")) {
      table = line.slice(1).trim();
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
export function dropEmptyTableScript(ns: string | undefined, table: Rule["table"]): string {
  const nft = at(ns).exec("nft", "delete", "table", "ip", table);
  return `if command -v nft >/dev/null 2>&1 && iptables -V 2>/dev/null | grep -q nf_tables; then ${nft} 2>/dev/null || true; fi`;
}
