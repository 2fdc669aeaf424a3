import type * as pulumi from "@pulumi/pulumi";
import { endpoint } from "../connection";
import { describeRule } from "../kernel/iptables";
import { isolationRules } from "../kernel/isolation";
import { NETWORK_ISOLATION } from "../resourceSchemas";
import type { Remote } from "../transport";
import { addressCheck, bridgeNameCheck, forwardCheck } from "./collisions";
import { fromSchema, plain, recordHostKeys, remoteFor } from "./common";
import type { HostCheck } from "./lockedCommit";
import { forNew, onStoredUpdate } from "./opErrors";
import { createRuleSet, replaceRules, ruleSetResource } from "./ruleSet";
import type { InputsOf, OutputsOf, ProviderOf } from "./types";

export type NetworkIsolationInputs = InputsOf<typeof NETWORK_ISOLATION>;
export type NetworkIsolationOutputs = OutputsOf<typeof NETWORK_ISOLATION>;

export const { check, diff } = fromSchema(NETWORK_ISOLATION, {
  // A renamed bridge: the new isolation's collision check would find the gateway address still on the old bridge.
  deleteBeforeReplace: true,
  // Rules missing on the host, or a stack made before the isolation had its present rules: up adds them.
  drifted: (olds) =>
    (olds.missingRules ?? []).length > 0 ||
    JSON.stringify(olds.rules ?? []) !== JSON.stringify(rulesOf(olds).map((r) => describeRule(r, olds.comment))),
});

const rulesOf = (i: Pick<NetworkIsolationInputs, "bridge" | "allowFrom" | "bridgeAddresses">) =>
  isolationRules(i.bridge, i.allowFrom, i.bridgeAddresses);

type Isolation = Pick<NetworkIsolationInputs, "bridge" | "bridgeAddresses" | "hostPorts">;

/**
 * The collision checks of the network's addresses and host ports. A forward
 * into the network's own subnet (old or new) is its own: a stack made before
 * this check already has its forwards.
 */
function checksOf(remote: Remote, i: Isolation, ownNetworks: string[]): HostCheck[] {
  const what = `IsolatedNetwork on bridge ${i.bridge}`;
  const forwards = i.hostPorts.map((key) => {
    const [protocol, port] = key.split("/");
    return { protocol, hostPort: Number(port) };
  });
  return [
    ...addressCheck(remote, what, i.bridge, i.bridgeAddresses),
    ...forwardCheck(remote, what, forwards, undefined, ownNetworks),
  ];
}

/**
 * IsolatedNetwork's first resource: the collision checks read the host and
 * refuse before anything of the network exists, inside the locked commit
 * that puts the isolation rule in.
 */
async function create(inputs: NetworkIsolationInputs): Promise<pulumi.dynamic.CreateResult> {
  const remote = await remoteFor(inputs);
  const what = `IsolatedNetwork on bridge ${inputs.bridge}`;
  const checks = [...bridgeNameCheck(remote, what, inputs.bridge), ...checksOf(remote, inputs, inputs.bridgeAddresses)];
  const state = await createRuleSet(remote, "isol", undefined, rulesOf(inputs), [], undefined, checks);
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

/**
 * A new allowFrom, bridge address or host port, in one locked commit: what is
 * new is checked for collisions (the network's own old addresses and ports
 * are not), then the new rule goes in under the same owner comment before the
 * old one goes.
 */
async function update(
  _id: string,
  olds: NetworkIsolationOutputs,
  news: NetworkIsolationInputs,
): Promise<pulumi.dynamic.UpdateResult> {
  const remote = await remoteFor({ connection: news.connection, knownHostKeys: olds.knownHostKeys });
  const added = {
    bridge: news.bridge,
    bridgeAddresses: news.bridgeAddresses.filter((a) => !olds.bridgeAddresses.includes(a)),
    hostPorts: news.hostPorts.filter((p) => !olds.hostPorts.includes(p)),
  };
  // Another network's rules for this bridge (slipped in while ours were flushed): refused, not merged with ours.
  const checks = [
    ...bridgeNameCheck(remote, `IsolatedNetwork on bridge ${news.bridge}`, news.bridge, olds.comment),
    ...checksOf(remote, added, [...olds.bridgeAddresses, ...news.bridgeAddresses]),
  ];
  // A first IPv6 rule widens the comment's claims (replaceRules): the rules are under the returned one from then on.
  const comment = await replaceRules(
    remote,
    undefined,
    rulesOf(olds),
    rulesOf(news),
    olds.comment,
    checks,
    olds.ruleId,
  );
  const outs = {
    ...olds,
    ...news,
    comment,
    rules: rulesOf(news).map((r) => describeRule(r, comment)),
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
