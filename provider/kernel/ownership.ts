import { type Rule, type SavedTables, type TableKey, tableKey } from "./iptables";
import { SYSCTLS, type SysctlKey } from "./sysctl";

/**
 * The claims protocol shared by every owner of iptables rules (MasqueradeRule,
 * PortForward, Bridge). Each rule carries its owner's comment,
 * `pulumi-netns/<kind>/<id>/<claims>`, and the claims record what the host had
 * before the first owner changed it: each sysctl the owner switches on, and
 * whether each table its rules live in existed. The host itself thus keeps the
 * originals, so whichever owner goes last puts the host back as it was.
 *
 * Pure: plans from a parsed `iptables-save` and sysctl values; impl/ruleSet
 * reads the host and runs the plans.
 *
 * impl/ruleSet runs each plan under a host-wide flock, and only if the host's
 * owner state is still the one planned from (./hostLock): two owners at the
 * same moment on one host never plan from the same read.
 */

export const OWNER_PREFIX = "pulumi-netns/";

export interface Owner {
  kind: string;
  id: string;
  /** Claim key -> the value the host had before the first claimant changed it. */
  claims: Record<string, string>;
}

type Table = TableKey;

/**
 * The claim key recording whether a table existed ("1") or not ("0") before
 * the first owner. IPv6 tables are separate tables with claims of their own;
 * an owner's IPv6 claims appear only on its IPv6 rules (and its IPv4 claims
 * on IPv4 ones), so each claim is found in the dump of its own family.
 */
const TABLE_CLAIM: Record<Table, string> = {
  nat: "tnat",
  filter: "tfilter",
  mangle: "tmangle",
  "6nat": "t6nat",
  "6filter": "t6filter",
  "6mangle": "t6mangle",
};

export function ownerComment(kind: string, id: string, claims: Record<string, string>): string {
  return `${OWNER_PREFIX}${kind}/${id}/${Object.entries(claims)
    .map(([k, v]) => `${k}=${v}`)
    .join(",")}`;
}

/** An owner comment: quoted, as iptables-save prints it, or bare, as the state keeps it. */
const OWNER_COMMENT = new RegExp(
  `--comment "?(${OWNER_PREFIX.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}([a-z]+)/([0-9a-f]+)/([a-z0-9=,]*))"?`,
  "g",
);

/** Finds every owner comment in `iptables -S` or `iptables-save` output; any other comment is not an owner. */
export function parseOwners(text: string): Map<string, Owner> {
  const owners = new Map<string, Owner>();
  for (const m of text.matchAll(OWNER_COMMENT)) {
    const claims: Record<string, string> = {};
    for (const part of m[4].split(",").filter(Boolean)) {
      const [k, v] = part.split("=");
      if (k && v !== undefined) claims[k] = v;
    }
    owners.set(m[3], { kind: m[2], id: m[3], claims });
  }
  return owners;
}

/**
 * The owner comments of a Bridge's rules left by a bridge of that name that no
 * longer exists (its link deleted behind the program's back, then dropped from
 * state by refresh): its FORWARD accept `-i NAME -o NAME` under a rule set's
 * comment whose id is none of `liveIds`. The link of that name carries the
 * mark of the one Bridge it belongs to (kernel/mark), whose id is its rule
 * set's: so a rule set of another id is a gone bridge's. `liveIds`: the
 * creating Bridge's own id, and the id of the mark the link carried before
 * (an adopted link: that Bridge may live on in another stack; none for a link
 * just made). Its claims are inherited by the new owner (planAdd) before the rule goes.
 */
export function orphanBridgeOwners(saved: SavedTables, bridge: string, liveIds: string[]): string[] {
  const comments = new Set<string>();
  for (const line of saved.rules.get("filter") ?? []) {
    if (!line.includes(` -i ${bridge} -o ${bridge} `)) continue;
    for (const m of line.matchAll(OWNER_COMMENT)) if (m[2] === "bridge" && !liveIds.includes(m[3])) comments.add(m[1]);
  }
  return [...comments];
}

/**
 * The forwardFrom networks of a gone Bridge (`comment`, one of
 * orphanBridgeOwners) as its accepts on the host say: `-s CIDR -o BRIDGE`
 * under its comment, in either family. Its accepts that the new Bridge does
 * not share go with the others, or they would stay for good.
 */
export function orphanForwardSources(saved: SavedTables, bridge: string, comment: string): string[] {
  const sources: string[] = [];
  for (const table of ["filter", "6filter"])
    for (const line of saved.rules.get(table) ?? []) {
      const m = /^-A FORWARD -s (\S+) -o (\S+) -m comment --comment "?([^" ]+)"? -j ACCEPT$/.exec(line.trim());
      if (m && m[2] === bridge && m[3] === comment) sources.push(m[1]);
    }
  return sources;
}

function ownersIn(saved: SavedTables): Owner[] {
  return [...parseOwners([...saved.rules.values()].flat().join("\n")).values()];
}

export interface AddPlan {
  /** The comment every rule of the new owner carries, claims included. */
  comment: string;
  /**
   * Sysctls to switch to 1, each with the value a failed create puts back, and whether this owner writes
   * the record (none exists: it is the one switching it on; sysctl.ts switchOnStep).
   */
  switchOn: Array<{ key: SysctlKey; was: string; record: boolean }>;
  /** Table claims of "0" no record holds yet (a table this owner brings, or an older owner did): recorded now. */
  recordTables: string[];
}

/**
 * What a new owner adds, given the host's `iptables-save` and the current
 * values of `sysctls`. A claim another owner already holds is inherited, so
 * the value recorded is the one before the first owner, not the 1 it set.
 */
export function planAdd(
  kind: string,
  id: string,
  saved: SavedTables,
  current: Record<string, string>,
  rules: Rule[],
  sysctls: SysctlKey[],
  recorded: Record<string, string> = {},
): AddPlan {
  const owners = ownersIn(saved);
  const inherited = (key: string) => owners.find((o) => o.claims[key] !== undefined)?.claims[key];
  const claims: Record<string, string> = {};
  // A switch's original is its record's (an owner switched it on: its rules may be flushed, comments can be
  // forged); without one, a switch that is not 1 is this owner's to switch on from what it is now; only a
  // switch found on, unrecorded, takes an older owner's claim (one made before records existed).
  for (const key of sysctls)
    claims[key] = recorded[key] ?? (current[key] !== "1" ? (current[key] ?? "0") : (inherited(key) ?? "1"));
  // A table's too: a record says this package brought it, whatever the owners the host shows.
  for (const table of new Set(rules.map(tableKey)))
    claims[TABLE_CLAIM[table]] =
      recorded[TABLE_CLAIM[table]] ?? inherited(TABLE_CLAIM[table]) ?? (saved.tables.has(table) ? "1" : "0");
  const tableClaims = new Set<string>(Object.values(TABLE_CLAIM));
  return {
    recordTables: Object.keys(claims).filter(
      (k) => tableClaims.has(k) && claims[k] === "0" && recorded[k] === undefined,
    ),
    comment: ownerComment(kind, id, claims),
    switchOn: sysctls
      .filter((key) => current[key] !== "1")
      .map((key) => ({ key, was: current[key] ?? "0", record: recorded[key] === undefined })),
  };
}

/**
 * The comment of an owner whose rules now reach tables its claims do not name
 * (an update adding its first IPv6 rule: a Bridge's IPv6 forwardFrom), with
 * those tables' claims added as planAdd would record them; else `comment`
 * itself. Without the claim, its last delete could not tell a table it made.
 */
export function widenClaims(comment: string, id: string, saved: SavedTables, rules: Rule[]): string {
  const ours = parseOwners(`--comment ${comment}`).get(id);
  if (!ours) return comment;
  const owners = ownersIn(saved).filter((o) => o.id !== id);
  const claims = { ...ours.claims };
  for (const table of new Set(rules.map(tableKey))) {
    const key = TABLE_CLAIM[table];
    if (claims[key] !== undefined) continue;
    claims[key] = owners.find((o) => o.claims[key] !== undefined)?.claims[key] ?? (saved.tables.has(table) ? "1" : "0");
  }
  return ownerComment(ours.kind, id, claims);
}

/**
 * The comment of an owner whose rules no longer reach some tables its claims
 * name (an update removing its last IPv6 rule: a Bridge's IPv6 forwardFrom
 * dropped), without those tables' claims, and the claims taken out, for their
 * release (planRelease) as at a delete: widenClaims's mirror. Else `comment`
 * itself and nothing released.
 */
export function narrowClaims(
  comment: string,
  id: string,
  rules: Rule[],
): { comment: string; released: Record<string, string> } {
  const ours = parseOwners(`--comment ${comment}`).get(id);
  if (!ours) return { comment, released: {} };
  const reached = new Set([...new Set(rules.map(tableKey))].map((t) => TABLE_CLAIM[t]));
  const tableClaims = new Set(Object.values(TABLE_CLAIM));
  const released = Object.fromEntries(
    Object.entries(ours.claims).filter(([key]) => tableClaims.has(key) && !reached.has(key)),
  );
  if (Object.keys(released).length === 0) return { comment, released };
  const kept = Object.fromEntries(Object.entries(ours.claims).filter(([key]) => !(key in released)));
  return { comment: ownerComment(ours.kind, id, kept), released };
}

export interface ReleasePlan {
  /** Sysctls no other owner claims, each back to the value recorded before the first owner. */
  restore: Array<{ key: SysctlKey; value: string }>;
  /** Tables the first owner brought into existence, claimed by no other owner and holding nothing again. */
  drop: Table[];
  /** Claims another owner still holds (claim key -> those owners' ids): left as the host has them. */
  kept: Record<string, string[]>;
}

/** A table holding no rule and no policy but ACCEPT: dropping it loses nothing anyone put there. */
function untouched(saved: SavedTables, table: Table): boolean {
  return (
    (saved.rules.get(table) ?? []).length === 0 &&
    Object.values(saved.policies.get(table) ?? {}).every((p) => p === "ACCEPT")
  );
}

/**
 * What a leaving owner puts back, given the host's `iptables-save` after its
 * own rules were removed. Its claims are read from `comment` as recorded in
 * state at create, not from the host, so the originals survive drift: rules
 * deleted or comments rewritten behind the program's back. A comment that
 * does not name owner `id` claims nothing.
 */
export function planRelease(remaining: SavedTables, comment: string, id: string): ReleasePlan {
  const ours = parseOwners(`--comment ${comment}`).get(id);
  return ours ? planReleaseOf(remaining, ours.claims, id) : { restore: [], drop: [], kept: {} };
}

/** planRelease of some claims of owner `id` (all of them at a delete; those narrowClaims took out at an update). */
export function planReleaseOf(remaining: SavedTables, claims: Record<string, string>, id: string): ReleasePlan {
  const plan: ReleasePlan = { restore: [], drop: [], kept: {} };
  const others = ownersIn(remaining).filter((o) => o.id !== id);
  const tableOf = (key: string) => (Object.keys(TABLE_CLAIM) as Table[]).find((t) => TABLE_CLAIM[t] === key);
  for (const [key, value] of Object.entries(claims)) {
    const holders = others.filter((o) => o.claims[key] !== undefined).map((o) => o.id);
    if (holders.length > 0) {
      plan.kept[key] = holders;
      continue;
    }
    if (key in SYSCTLS) plan.restore.push({ key: key as SysctlKey, value });
    const table = tableOf(key);
    if (table && value === "0" && untouched(remaining, table)) plan.drop.push(table);
  }
  return plan;
}

/** The host as it will be once the owner with `comment` has removed its rules (what its release is planned from). */
export function withoutOwner(saved: SavedTables, comment: string): SavedTables {
  const rules = new Map([...saved.rules].map(([table, lines]) => [table, lines.filter((l) => !l.includes(comment))]));
  return { ...saved, rules };
}
