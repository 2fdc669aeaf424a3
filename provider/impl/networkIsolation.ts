import type * as pulumi from "@pulumi/pulumi";
import { endpoint } from "../connection";
import { deleteRuleScript, describeRule } from "../kernel/iptables";
import { isolationRule } from "../kernel/isolation";
import { sequence } from "../kernel/script";
import { NETWORK_ISOLATION } from "../resourceSchemas";
import { refuseAddressCollisions, refuseForwardCollisions } from "./collisions";
import { fromSchema, plain, recordHostKeys, remoteFor } from "./common";
import { runScript } from "./executor";
import { forNew, onStoredUpdate } from "./opErrors";
import { createRuleSet, repairRuleSet, ruleSetResource } from "./ruleSet";
import type { InputsOf, OutputsOf, ProviderOf } from "./types";

export type NetworkIsolationInputs = InputsOf<typeof NETWORK_ISOLATION>;
export type NetworkIsolationOutputs = OutputsOf<typeof NETWORK_ISOLATION>;

export const { check, diff } = fromSchema(NETWORK_ISOLATION, {
  drifted: (olds) => (olds.missingRules ?? []).length > 0,
});

const rulesOf = (i: NetworkIsolationInputs) => [isolationRule(i.bridge, i.allowFrom)];

/**
 * IsolatedNetwork's first resource: the collision checks read the host and
 * refuse before anything of the network exists, then the isolation rule goes in.
 */
async function create(inputs: NetworkIsolationInputs): Promise<pulumi.dynamic.CreateResult> {
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

const shared = ruleSetResource<NetworkIsolationInputs, NetworkIsolationOutputs>(rulesOf, () => []);
export const { read, remove } = shared;

/** A new allowFrom: the new rule goes in under the same owner comment before the old one goes. */
async function update(
  _id: string,
  olds: NetworkIsolationOutputs,
  news: NetworkIsolationInputs,
): Promise<pulumi.dynamic.UpdateResult> {
  const remote = await remoteFor({ connection: news.connection, knownHostKeys: olds.knownHostKeys });
  const [oldRule] = rulesOf(olds);
  const [newRule] = rulesOf(news);
  await repairRuleSet(remote, undefined, [newRule], olds.comment, []);
  if (oldRule.spec.join(" ") !== newRule.spec.join(" "))
    await runScript(remote, sequence(deleteRuleScript(undefined, oldRule, olds.comment)));
  const outs = {
    ...olds,
    ...news,
    rules: rulesOf(news).map((r) => describeRule(r, olds.comment)),
    missingRules: [],
    knownHostKeys: recordHostKeys(remote, olds.knownHostKeys),
  };
  return { outs: plain(outs) };
}

// create and update say what to do for their operation, once (opErrors.ts), as read and remove do (ruleSet.ts).
const advisedCreate = forNew(create);
const advisedUpdate = onStoredUpdate(update);

export { advisedCreate as create, advisedUpdate as update };
export const provider: ProviderOf<typeof NETWORK_ISOLATION> = {
  check,
  diff,
  create: advisedCreate,
  read,
  update: advisedUpdate,
  delete: remove,
};
