import type * as pulumi from "@pulumi/pulumi";
import { endpoint } from "../connection";
import { deleteRuleScript, describeRule } from "../kernel/iptables";
import { isolationRules } from "../kernel/isolation";
import { sequence } from "../kernel/script";
import { NETWORK_ISOLATION } from "../resourceSchemas";
import { refuseAddressCollisions, refuseForwardCollisions } from "./collisions";
import { fromSchema, plain, recordHostKeys, remoteFor } from "./common";
import { runScript } from "./executor";
import { createRuleSet, repairRuleSet, ruleSetResource } from "./ruleSet";
import type { InputsOf, OutputsOf, ProviderOf } from "./types";

export type NetworkIsolationInputs = InputsOf<typeof NETWORK_ISOLATION>;
export type NetworkIsolationOutputs = OutputsOf<typeof NETWORK_ISOLATION>;

export const { check, diff } = fromSchema(NETWORK_ISOLATION, {
  // A renamed bridge: the new isolation's collision check would find the gateway address still on the old bridge.
  deleteBeforeReplace: true,
  drifted: (olds) => (olds.missingRules ?? []).length > 0,
});

const rulesOf = (i: NetworkIsolationInputs) => isolationRules(i.bridge, i.allowFrom);

/**
 * IsolatedNetwork's first resource: the collision checks read the host and
 * refuse before anything of the network exists, then the isolation rule goes in.
 */
export async function create(inputs: NetworkIsolationInputs): Promise<pulumi.dynamic.CreateResult> {
  const remote = await remoteFor(inputs);
  const what = `IsolatedNetwork on bridge ${inputs.bridge}`;
  await refuseAddressCollisions(remote, what, inputs.bridge, inputs.bridgeAddresses);
  await refuseForwardCollisions(
    remote,
    what,
    inputs.hostPorts.map((key) => {
      const [protocol, port] = key.split("/");
      return { protocol, hostPort: Number(port) };
    }),
    undefined,
    // A stack made before this check already has its forwards: those into its own subnet are not collisions.
    inputs.bridgeAddresses,
  );
  const state = await createRuleSet(remote, "isol", undefined, rulesOf(inputs), []);
  const outs: NetworkIsolationOutputs = {
    ...inputs,
    ...state,
    missingRules: [],
    knownHostKeys: recordHostKeys(remote),
  };
  return { id: `isolation/${inputs.bridge}/${state.ruleId}@${endpoint(inputs.connection)}`, outs: plain(outs) };
}

const shared = ruleSetResource<NetworkIsolationInputs, NetworkIsolationOutputs>(rulesOf, () => [], "isolationOn");
export const { read, remove } = shared;

/** A rule's identity on the host, owner comment aside. */
const ruleKey = (r: { table: string; chain: string; spec: string[] }) => `${r.table} ${r.chain} ${r.spec.join(" ")}`;

/** A new allowFrom: the new rules go in under the same owner comment before the old ones go. */
export async function update(
  _id: string,
  olds: NetworkIsolationOutputs,
  news: NetworkIsolationInputs,
): Promise<pulumi.dynamic.UpdateResult> {
  const remote = await remoteFor({ connection: news.connection, knownHostKeys: olds.knownHostKeys });
  const newRules = rulesOf(news);
  await repairRuleSet(remote, undefined, newRules, olds.comment, []);
  const kept = new Set(newRules.map(ruleKey));
  const gone = rulesOf(olds).filter((r) => !kept.has(ruleKey(r)));
  if (gone.length) await runScript(remote, sequence(...gone.map((r) => deleteRuleScript(undefined, r, olds.comment))));
  const outs = {
    ...olds,
    ...news,
    rules: rulesOf(news).map((r) => describeRule(r, olds.comment)),
    missingRules: [],
    knownHostKeys: recordHostKeys(remote, olds.knownHostKeys),
  };
  return { outs: plain(outs) };
}

export const provider: ProviderOf<typeof NETWORK_ISOLATION> = { check, diff, create, read, update, delete: remove };
