import type * as pulumi from "@pulumi/pulumi";
import { endpoint } from "../connection";
import { isIpv6, type Rule } from "../kernel/iptables";
import type { SysctlKey } from "../kernel/sysctl";
import { MASQUERADE_RULE } from "../resourceSchemas";
import { show } from "../validate";
import { fromSchema, plain, recordHostKeys, remoteFor } from "./common";
import { forNew } from "./opErrors";
import { createRuleSet, ruleSetResource } from "./ruleSet";
import type { InputsOf, OutputsOf, ProviderOf } from "./types";

export type MasqueradeRuleInputs = InputsOf<typeof MASQUERADE_RULE>;
export type MasqueradeRuleOutputs = OutputsOf<typeof MASQUERADE_RULE>;

export const { check, diff } = fromSchema(MASQUERADE_RULE, {
  alsoCheck: (checker, news) => {
    if (news.outInterface !== undefined && news.excludeOutInterface !== undefined)
      checker.fail(
        "excludeOutInterface",
        `${show(news.excludeOutInterface)} cannot be combined with outInterface ${show(news.outInterface)}: use one form`,
      );
    // One rule is of one family: an IPv4 source never goes to an IPv6 destination.
    const [source, except] = [news.source, news.excludeDestination];
    if (typeof source === "string" && typeof except === "string" && isIpv6(source) !== isIpv6(except))
      checker.fail(
        "excludeDestination",
        `${show(except)} is ${isIpv6(except) ? "IPv6" : "IPv4"} but source ${show(source)} is ${isIpv6(source) ? "IPv6" : "IPv4"}: ` +
          "use a network of the source's family (for both families, make one MasqueradeRule per family)",
      );
  },
  drifted: (olds) => (olds.missingRules ?? []).length > 0 || olds.ipForwardOn === false,
});

/**
 * The lesson's rule, plus FORWARD accepts so it also works where the FORWARD
 * policy is DROP (Docker hosts): new traffic from the network, replies to it.
 * With `inInterface` both name the network's interface, so a source address
 * is trusted only where the network really is.
 */
export function rulesOf(i: MasqueradeRuleInputs): Rule[] {
  const out = i.outInterface ? ["-o", i.outInterface] : i.excludeOutInterface ? ["!", "-o", i.excludeOutInterface] : [];
  const exceptTo = i.excludeDestination ? ["!", "-d", i.excludeDestination] : [];
  const fromNetwork = i.inInterface ? ["-i", i.inInterface] : [];
  const toNetwork = i.inInterface ? ["-o", i.inInterface] : [];
  // An IPv6 source: the same rules in ip6tables (an IPv4 one's rules carry no family, as before IPv6 came).
  const family = isIpv6(i.source) ? { family: 6 as const } : {};
  return [
    { table: "nat", chain: "POSTROUTING", spec: ["-s", i.source, ...out, ...exceptTo, "-j", "MASQUERADE"], ...family },
    {
      table: "filter",
      chain: "FORWARD",
      insert: true,
      spec: [...fromNetwork, "-s", i.source, "-j", "ACCEPT"],
      ...family,
    },
    {
      table: "filter",
      chain: "FORWARD",
      insert: true,
      spec: [...toNetwork, "-d", i.source, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"],
      ...family,
    },
  ];
}

/**
 * The forwarding switch of the source's family. IPv6's (all.forwarding) also
 * makes the host ignore router advertisements while it is 1 (kernel/sysctl):
 * the README says so where enableIpForward is documented.
 */
const sysctlsOf = (i: MasqueradeRuleInputs): SysctlKey[] =>
  i.enableIpForward ? [isIpv6(i.source) ? "ip6fw" : "ipfw"] : [];

async function createRules(inputs: MasqueradeRuleInputs): Promise<pulumi.dynamic.CreateResult> {
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

export const create = forNew(createRules);
export const { read, update, remove } = ruleSetResource<MasqueradeRuleInputs, MasqueradeRuleOutputs>(
  rulesOf,
  sysctlsOf,
  "ipForwardOn",
);

export const provider: ProviderOf<typeof MASQUERADE_RULE> = { check, diff, create, read, update, delete: remove };
