import { randomBytes } from "node:crypto";
import { lookup } from "../kernel/explain";
import {
  addRuleStep,
  checkRulesScript,
  deleteRuleScript,
  describeRule,
  dropEmptyTableScript,
  hasIpv6,
  parseSave,
  type Rule,
  type SavedTables,
  saveScript,
  tableKey,
} from "../kernel/iptables";
import { at, isPresent } from "../kernel/namespace";
import {
  narrowClaims,
  parseOwners,
  planAdd,
  planReleaseOf,
  type ReleasePlan,
  widenClaims,
  withoutOwner,
} from "../kernel/ownership";
import { allOrNothing, lookingUp, sequence } from "../kernel/script";
import {
  type ChainOf,
  dropChainStep,
  forgetRecordStep,
  parseRecords,
  parseSysctls,
  putBackStep,
  readSysctlsScript,
  recordChainStep,
  recordTableStep,
  SYSCTLS,
  type SysctlKey,
  switchOnStep,
  writeSysctlStep,
} from "../kernel/sysctl";
import type { Remote } from "../transport";
import { plain, recordHostKeys, remoteFor } from "./common";
import { readAll } from "./executor";
import { type HostCheck, lockedCommit, type Plan } from "./lockedCommit";
import { onStored, onStoredUpdate } from "./opErrors";
import type { BaseOutputs } from "./types";

/**
 * What MasqueradeRule, PortForward and Bridge share: a set of owner-tagged
 * iptables rules plus sysctls that must be 1 while any owner needs them. This
 * file does the I/O; kernel/ownership plans which claims an owner records and
 * what the last owner to go puts back.
 */
export interface RuleSetState {
  ruleId: string;
  comment: string;
  rules: string[];
}

export async function createRuleSet(
  remote: Remote,
  kind: string,
  ns: string | undefined,
  rules: Rule[],
  sysctls: SysctlKey[],
  ruleId = randomBytes(4).toString("hex"),
  checks: HostCheck[] = [],
  /**
   * Rule sets this one replaces, each its comment and its rules besides this set's own shapes (they go in the same
   * commit, after its claims inherited theirs).
   */
  orphansOf: (saved: SavedTables) => Array<{ comment: string; rules: Rule[] }> = () => [],
): Promise<RuleSetState> {
  const comment = await commitGuarded(
    remote,
    ns,
    [saveScript(ns, hasIpv6(rules)), readSysctlsScript(at(ns), sysctls)],
    ([saveText, sysctlText]) => {
      const saved = parseSave(saveText);
      const { comment, switchOn, recordTables } = planAdd(
        kind,
        ruleId,
        saved,
        parseSysctls(sysctlText),
        rules,
        sysctls,
        parseRecords(sysctlText),
      );
      // Tables this set brings into being: a failed create drops them again once empty.
      const brought = [...new Set(rules.map(tableKey))].filter((t) => !saved.tables.has(t));
      const steps = [
        ...chainsOf(rules).map((c) => recordChainStep(at(ns), c)),
        ...rules.map((r) => addRuleStep(ns, r, comment)),
        ...switchOn.map(({ key, record, was }) => switchOnStep(at(ns), key, record, was)),
        ...recordTables.map((key) => recordTableStep(at(ns), key)),
        ...orphansOf(saved).flatMap((orphan) =>
          [...rules, ...orphan.rules].map((r) => deleteRuleScript(ns, r, orphan.comment)),
        ),
      ];
      const undo = [
        ...rules.map((r) => deleteRuleScript(ns, r, comment)),
        // Only the record this create wrote: one that was there is another owner's.
        ...switchOn.map(({ key, was, record }) =>
          record ? putBackStep(at(ns), key, was) : writeSysctlStep(at(ns), key, was),
        ),
        ...recordTables.map((key) => forgetRecordStep(at(ns), key)),
        ...chainsOf(rules).map((c) => dropChainStep(at(ns), c)),
        ...brought.map((table) => dropEmptyTableScript(ns, table)),
      ];
      // After a dropped connection, undo as a delete does: a sysctl goes back only if no other owner needs it.
      const making = {
        what: `the ${kind} rules ${comment}`,
        // Rules cannot be adopted: the next up adds its own under a new comment, so leftovers only duplicate them.
        leftover:
          `list them with ${(hasIpv6(rules) ? ["iptables-save", "ip6tables-save"] : ["iptables-save"])
            .map((save) => `${ns ? `ip netns exec ${ns} ` : ""}${save} | grep -- ${comment}`)
            .join(" and ")} and delete each by hand ` +
          `(iptables${hasIpv6(rules) ? " or ip6tables" : ""} -t <table> -D <rule as listed>); the next up adds the rules again under a new comment. ` +
          "Once no pulumi-netns rule is left on the host, also remove its records: rm /run/pulumi-netns.*.$(readlink /proc/self/ns/net | tr -dc 0-9)" +
          (ns ? ` (run in the namespace: ip netns exec ${ns} sh -c '...')` : ""),
        undo: (cleanup: Remote) => deleteRuleSet(cleanup, ns, rules, comment, ruleId),
      };
      return {
        script: lookingUp(allOrNothing(steps, undo), lookup("namespace", ns, "namespace")),
        making,
        result: comment,
      };
    },
    checks,
  );
  return { ruleId, comment, rules: rules.map((r) => describeRule(r, comment)) };
}

/** The base chains the rules go in, each once. */
function chainsOf(rules: Rule[]): ChainOf[] {
  const seen = new Map<string, ChainOf>();
  for (const r of rules)
    seen.set(`${r.family ?? 4} ${r.table} ${r.chain}`, { table: r.table, chain: r.chain, family: r.family });
  return [...seen.values()];
}

/** A lockedCommit that returns its plan's result. */
async function commitGuarded<T>(
  remote: Remote,
  ns: string | undefined,
  reads: string[],
  plan: (outputs: string[]) => Plan<T>,
  checks: HostCheck[] = [],
): Promise<T> {
  return (await lockedCommit(remote, ns, reads, plan, checks)).result;
}

export interface RuleSetObservation {
  namespaceGone: boolean;
  missing: string[];
  /** Sysctls this set needs that are not 1 on the host. */
  sysctlsOff: SysctlKey[];
}

export async function observeRuleSet(
  remote: Remote,
  ns: string | undefined,
  rules: Rule[],
  comment: string,
  sysctls: SysctlKey[],
): Promise<RuleSetObservation> {
  const [presence, codes, sysctlText] = await readAll(remote, [
    at(ns).printPresence(),
    checkRulesScript(ns, rules, comment),
    readSysctlsScript(at(ns), sysctls),
  ]);
  if (!isPresent(presence))
    return { namespaceGone: true, missing: rules.map((r) => describeRule(r, comment)), sysctlsOff: [] };
  const present = codes.trim().split("\n");
  const values = parseSysctls(sysctlText);
  return {
    namespaceGone: false,
    missing: rules.filter((_, i) => present[i] !== "0").map((r) => describeRule(r, comment)),
    sysctlsOff: sysctls.filter((k) => values[k] !== "1"),
  };
}

/**
 * Puts back missing rules and sysctls (after drift seen by refresh). The rules
 * get the comment recorded at create, so their claims still name the originals.
 */
export async function repairRuleSet(
  remote: Remote,
  ns: string | undefined,
  rules: Rule[],
  comment: string,
  sysctls: SysctlKey[],
  former: Rule[] = [],
): Promise<void> {
  const reads = [checkRulesScript(ns, rules, comment), readSysctlsScript(at(ns), sysctls)];
  await commitGuarded(remote, ns, reads, ([codes, sysctlText]) => {
    const present = codes.trim().split("\n");
    const values = parseSysctls(sysctlText);
    const recorded = parseRecords(sysctlText);
    const claims = [...parseOwners(`--comment ${comment}`).values()][0]?.claims ?? {};
    const steps = rules.filter((_, i) => present[i] !== "0").map((r) => addRuleStep(ns, r, comment));
    // What an older release made under this comment and this one does not: the new rules are in first.
    steps.push(...former.map((r) => deleteRuleScript(ns, r, comment)));
    // Switched on again; recorded again (from this owner's claim) if another owner's release took the record.
    for (const key of sysctls)
      if (values[key] !== "1")
        steps.push(switchOnStep(at(ns), key, recorded[key] === undefined, claims[key] ?? values[key] ?? "0"));
    return { script: lookingUp(sequence(...steps), lookup("namespace", ns, "namespace")), result: undefined };
  });
}

const sameRule = (a: Rule, b: Rule) =>
  a.family === b.family && a.table === b.table && a.chain === b.chain && a.spec.join(" ") === b.spec.join(" ");

/**
 * Takes the set from `oldRules` to `newRules` under the same owner comment,
 * in one locked commit after `checks`: the new rules that are missing go in
 * before the old ones that are no longer wanted come out. Returns the owner
 * comment from then on: the same, unless the new rules reach a table the old
 * ones did not (widenClaims) or no longer reach one they did (narrowClaims):
 * then every new rule goes in under the new comment before every old one comes
 * out, and the tables no longer reached are released as a delete would (the
 * chains and tables this owner brought, when empty and no other owner claims
 * them, and their records).
 */
export async function replaceRules(
  remote: Remote,
  ns: string | undefined,
  oldRules: Rule[],
  newRules: Rule[],
  comment: string,
  checks: HostCheck[] = [],
  ruleId?: string,
): Promise<string> {
  const oldTables = new Set(oldRules.map(tableKey));
  const newTables = new Set(newRules.map(tableKey));
  const widens = ruleId !== undefined && newRules.some((r) => !oldTables.has(tableKey(r)));
  const narrows = ruleId !== undefined && oldRules.some((r) => !newTables.has(tableKey(r)));
  // Only a set that gains or loses a table reads the tables: any other update is as it always was.
  const reads = [
    checkRulesScript(ns, newRules, comment),
    ...(widens || narrows ? [saveScript(ns, hasIpv6(newRules) || hasIpv6(oldRules))] : []),
  ];
  return await commitGuarded(
    remote,
    ns,
    reads,
    ([codes, saveText]) => {
      const present = codes.trim().split("\n");
      const saved = widens || narrows ? parseSave(saveText) : undefined;
      const widened = widens && saved ? widenClaims(comment, ruleId, saved, newRules) : comment;
      const { comment: next, released } =
        narrows && ruleId !== undefined ? narrowClaims(widened, ruleId, newRules) : { comment: widened, released: {} };
      // Planned as the host will be once the old rules are out (the new ones reach none of the released tables).
      const releaseSteps =
        saved && ruleId !== undefined && Object.keys(released).length
          ? releasing(
              ns,
              oldRules.filter((r) => !newTables.has(tableKey(r))),
              released,
              planReleaseOf(withoutOwner(saved, comment), released, ruleId),
            )
          : [];
      const steps =
        next === comment
          ? [
              ...newRules.filter((_, i) => present[i] !== "0").map((r) => addRuleStep(ns, r, comment)),
              ...oldRules
                .filter((o) => !newRules.some((n) => sameRule(o, n)))
                .map((r) => deleteRuleScript(ns, r, comment)),
            ]
          : [
              ...newRules.map((r) => addRuleStep(ns, r, next)),
              ...oldRules.map((r) => deleteRuleScript(ns, r, comment)),
              ...releaseSteps,
            ];
      return { script: lookingUp(sequence(...steps), lookup("namespace", ns, "namespace")), result: next };
    },
    checks,
  );
}

/**
 * Removes this set's rules (each by its exact text and this owner's comment,
 * so no other rule is touched), then runs the release plan for what is left.
 */
export async function deleteRuleSet(
  remote: Remote,
  ns: string | undefined,
  rules: Rule[],
  comment: string,
  ruleId: string,
): Promise<void> {
  const place = at(ns);
  const reads = [place.printPresence(), place.ifExists(saveScript(ns, hasIpv6(rules)))];
  await commitGuarded(remote, ns, reads, ([presence, saveText]) => {
    const removal = rules.map((r) => deleteRuleScript(ns, r, comment));
    if (!isPresent(presence)) return { script: sequence(...removal), result: undefined }; // the namespace is gone, and everything in it
    // Planned as the host will be once this owner's rules are gone: removed, restored and dropped in one locked commit.
    const claims = parseOwners(`--comment ${comment}`).get(ruleId)?.claims ?? {};
    const plan = planReleaseOf(withoutOwner(parseSave(saveText), comment), claims, ruleId);
    return { script: sequence(...removal, ...releasing(ns, rules, claims, plan)), result: undefined };
  });
}

/**
 * The steps that release `claims` once `rules` are out (a delete: all of an
 * owner's; an update: those of the tables it no longer reaches): sysctls put
 * back, the base chains the rules went in dropped where ours and empty, the
 * tables the plan drops, and the records of the table claims no other owner holds
 * (a sysctl's record goes with its put-back).
 */
function releasing(ns: string | undefined, rules: Rule[], claims: Record<string, string>, plan: ReleasePlan): string[] {
  const place = at(ns);
  return [
    ...plan.restore.map(({ key, value }) => putBackStep(place, key, value)),
    ...chainsOf(rules).map((c) => dropChainStep(place, c)),
    ...plan.drop.map((table) => dropEmptyTableScript(ns, table)),
    ...Object.keys(claims)
      .filter((key) => !(key in SYSCTLS) && plan.kept[key] === undefined)
      .map((key) => forgetRecordStep(place, key)),
  ];
}

/** What a resource made of one rule set stores (MasqueradeRule, PortForward). */
interface RuleResourceOutputs extends BaseOutputs {
  namespace?: string;
  ruleId: string;
  comment: string;
  missingRules: string[];
}

/**
 * read, update and delete of a resource that is one rule set plus the sysctls
 * it needs. `sysctlsFlag` names the output that is false when refresh found a
 * needed sysctl switched off (none: the resource needs no sysctl).
 */
export function ruleSetResource<
  I extends { connection: BaseOutputs["connection"]; namespace?: string },
  O extends I & RuleResourceOutputs,
>(
  rulesOf: (i: I) => Rule[],
  sysctlsOf: (i: I) => SysctlKey[],
  sysctlsFlag?: string,
  /** Rules older releases made under the same comment that this one does not: update and delete remove them. */
  formerRulesOf: (i: I) => Rule[] = () => [],
) {
  // A resource that needs no sysctl has no flag to keep.
  const flag = (on: boolean) => (sysctlsFlag === undefined ? {} : { [sysctlsFlag]: on });
  const ops = {
    async read(id: string, props: O): Promise<{ id?: string; props?: O }> {
      const remote = await remoteFor(props);
      const rules = rulesOf(props);
      const seen = await observeRuleSet(remote, props.namespace, rules, props.comment, sysctlsOf(props));
      // Every rule missing is drift (a firewall reload: iptables -F), not a delete: the state keeps the
      // comment whose claims hold the originals, and the next up puts the rules back under it.
      if (seen.namespaceGone) return {};
      return {
        id,
        props: plain({ ...props, missingRules: seen.missing, ...flag(seen.sysctlsOff.length === 0) }),
      };
    },

    async update(_id: string, olds: O, news: I): Promise<{ outs: O }> {
      const remote = await remoteFor({ connection: news.connection, knownHostKeys: olds.knownHostKeys });
      await repairRuleSet(remote, news.namespace, rulesOf(news), olds.comment, sysctlsOf(news), formerRulesOf(olds));
      const outs = {
        ...olds,
        ...news,
        rules: rulesOf(news).map((r) => describeRule(r, olds.comment)),
        missingRules: [],
        ...flag(true),
        knownHostKeys: recordHostKeys(remote, olds.knownHostKeys),
      } as O;
      return { outs: plain(outs) };
    },

    async remove(_id: string, props: O): Promise<void> {
      const remote = await remoteFor(props);
      const all = [...rulesOf(props), ...formerRulesOf(props)];
      await deleteRuleSet(remote, props.namespace, all, props.comment, props.ruleId);
    },
  };
  // Each failure says what to do for its operation, once (opErrors.ts).
  return { read: onStored(ops.read), update: onStoredUpdate(ops.update), remove: onStored(ops.remove) };
}
