import type * as pulumi from "@pulumi/pulumi";
import { type Connection, endpoint } from "../connection";
import type { Rule } from "../kernel/iptables";
import type { SysctlKey } from "../kernel/sysctl";
import { boolean, interfaceName, ipv4Network, isUnknown, namespaceName, show } from "../validate";
import { type BaseOutputs, checkResult, diffConnection, plain, recordHostKeys, remoteFor, startCheck } from "./common";
import { createRuleSet, ruleSetResource } from "./ruleSet";

export interface MasqueradeRuleInputs {
  connection: Connection;
  source: string;
  outInterface?: string;
  excludeOutInterface?: string;
  namespace?: string;
  enableIpForward: boolean;
}

export interface MasqueradeRuleOutputs extends MasqueradeRuleInputs, BaseOutputs {
  ruleId: string;
  comment: string;
  /** The rules as `iptables -S` prints them. */
  rules: string[];
  /** Rules refresh found missing on the host; the next update puts them back. */
  missingRules: string[];
  /** False when refresh found forwarding switched off behind the program's back. */
  ipForwardOn: boolean;
}

export async function check(_olds: unknown, news: Record<string, unknown>): Promise<pulumi.dynamic.CheckResult> {
  const checker = startCheck(news);
  checker.field("source", news.source, ipv4Network, true);
  checker.field("outInterface", news.outInterface, interfaceName);
  checker.field("excludeOutInterface", news.excludeOutInterface, interfaceName);
  checker.field("namespace", news.namespace, namespaceName);
  checker.field("enableIpForward", news.enableIpForward, boolean);
  if (news.outInterface !== undefined && news.excludeOutInterface !== undefined)
    checker.fail(
      "excludeOutInterface",
      `${show(news.excludeOutInterface)} cannot be combined with outInterface ${show(news.outInterface)}: use one form`,
    );
  return checkResult(checker, { ...news, enableIpForward: news.enableIpForward ?? true });
}

/** The lesson's rule, plus FORWARD accepts so it also works where the FORWARD policy is DROP (Docker hosts). */
export function rulesOf(i: MasqueradeRuleInputs): Rule[] {
  const out = i.outInterface ? ["-o", i.outInterface] : i.excludeOutInterface ? ["!", "-o", i.excludeOutInterface] : [];
  return [
    { table: "nat", chain: "POSTROUTING", spec: ["-s", i.source, ...out, "-j", "MASQUERADE"] },
    { table: "filter", chain: "FORWARD", insert: true, spec: ["-s", i.source, "-j", "ACCEPT"] },
    {
      table: "filter",
      chain: "FORWARD",
      insert: true,
      spec: ["-d", i.source, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"],
    },
  ];
}

const sysctlsOf = (i: MasqueradeRuleInputs): SysctlKey[] => (i.enableIpForward ? ["ipfw"] : []);

export async function diff(
  _id: string,
  olds: MasqueradeRuleOutputs,
  news: MasqueradeRuleInputs,
): Promise<pulumi.dynamic.DiffResult> {
  const replaces: string[] = [];
  const conn = diffConnection(olds.connection, news.connection);
  if (conn.replace) replaces.push("connection");
  for (const key of ["source", "outInterface", "excludeOutInterface", "namespace", "enableIpForward"] as const)
    if (isUnknown(news[key]) || olds[key] !== news[key]) replaces.push(key);
  const drifted = (olds.missingRules ?? []).length > 0 || olds.ipForwardOn === false;
  return { changes: replaces.length > 0 || conn.update || drifted, replaces };
}

export async function create(inputs: MasqueradeRuleInputs): Promise<pulumi.dynamic.CreateResult> {
  const remote = await remoteFor(inputs);
  const state = await createRuleSet(remote, "masq", inputs.namespace, rulesOf(inputs), sysctlsOf(inputs));
  const outs: MasqueradeRuleOutputs = {
    ...inputs,
    ...state,
    missingRules: [],
    ipForwardOn: true,
    knownHostKeys: recordHostKeys(remote),
  };
  return { id: `masquerade/${state.ruleId}@${endpoint(inputs.connection)}`, outs: plain(outs) };
}

export const { read, update, remove } = ruleSetResource<MasqueradeRuleInputs, MasqueradeRuleOutputs>(
  rulesOf,
  sysctlsOf,
  "ipForwardOn",
);
