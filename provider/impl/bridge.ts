import { randomBytes } from "node:crypto";
import type * as pulumi from "@pulumi/pulumi";
import { endpoint } from "../connection";
import { lookup } from "../kernel/explain";
import { describeRule, isIpv6, type Rule, removeRuleCommand } from "../kernel/iptables";
import { ISOLATION_GROUP } from "../kernel/isolation";
import {
  addressChanges,
  announceBridge,
  applyChanges,
  deleteLink,
  LINK_READ_OPTIONS,
  type LinkState,
  parseLink,
  printLink,
  sameAddresses,
  setGroup,
  setMtu,
  setUp,
  showLink,
} from "../kernel/link";
import { clearMark, isOurLink, markIdOf, markUnlessRetained, refuseMarkedLink, setMark } from "../kernel/mark";
import { at } from "../kernel/namespace";
import { orphanBridgeOwners, orphanForwardSources, parseOwners } from "../kernel/ownership";
import { bestEffort, creation, type IpArgs, lookingUp, script, sequence } from "../kernel/script";
import { BRIDGE } from "../resourceSchemas";
import { CommandError, type Remote } from "../transport";
import { progress } from "../transport/progress";
import { ipNetwork } from "../validate";
import { addressCheck } from "./collisions";
import { fromSchema, plain, recordHostKeys, remoteFor } from "./common";
import { readAll, runScript } from "./executor";
import { lockedCommit } from "./lockedCommit";
import { advised } from "./opErrors";
import { deleteOwnedLink } from "./ownedLink";
import {
  createRuleSet,
  deleteRuleSet,
  observeRuleSet,
  type RuleSetState,
  repairRuleSet,
  replaceRules,
} from "./ruleSet";
import { settleIpv6 } from "./settle";
import type { InputsOf, OutputsOf, ProviderOf } from "./types";

export type BridgeInputs = InputsOf<typeof BRIDGE>;
export type BridgeOutputs = OutputsOf<typeof BRIDGE>;

/**
 * Where br_netfilter is loaded (Docker loads it), frames between two ports of
 * a bridge pass the iptables FORWARD chain, and a DROP policy there would cut
 * red off from blue. Like Docker for docker0, accept bridge-to-bridge traffic;
 * and new traffic into the bridge from each network of `forwardFrom`. None for
 * an adopted bridge that destroy leaves (retainOnDelete): delete never runs to
 * take them back, and the bridge stays as its owner had it.
 */
export function rulesOf(
  i: { name: string; forwardFrom?: string[]; addresses?: string[]; retainOnDelete?: boolean },
  adopted: boolean,
  ipv6Claimed = false,
): Rule[] {
  if (adopted && i.retainOnDelete) return [];
  const within = ["-i", i.name, "-o", i.name, "-j", "ACCEPT"];
  // br_netfilter passes IPv6 frames through ip6tables: a bridge with IPv6 gets the same accept there.
  // A bridge without IPv6 leaves the IPv6 tables alone, as before IPv6 came. `ipv6Claimed` (delete):
  // the rule set has held IPv6 rules (its comment claims an IPv6 table), whatever the addresses
  // observed now say (an address removed by hand and refreshed must not leave the IPv6 accept behind).
  const ipv6 = ipv6Claimed || [...(i.forwardFrom ?? []), ...(i.addresses ?? [])].some(isIpv6);
  return [
    { table: "filter", chain: "FORWARD", insert: true, spec: within },
    ...(ipv6 ? [{ table: "filter", chain: "FORWARD", insert: true, spec: within, family: 6 } as Rule] : []),
    ...(i.forwardFrom ?? []).map(
      (cidr): Rule => ({
        table: "filter",
        chain: "FORWARD",
        insert: true,
        spec: ["-s", cidr, "-o", i.name, "-j", "ACCEPT"],
        ...(isIpv6(cidr) ? { family: 6 as const } : {}),
      }),
    ),
  ];
}

export const { check, diff } = fromSchema(BRIDGE, {
  deleteBeforeReplace: true,
  drifted: (olds) => (olds.missingRules ?? []).length > 0,
});

/**
 * A random locally administered unicast MAC. Set explicitly at creation, it
 * keeps the bridge's MAC stable as ports come and go (otherwise the kernel
 * takes the lowest port MAC), as the CNI bridge plugin does.
 */
function stableMac(): string {
  const bytes = randomBytes(6);
  bytes[0] = (bytes[0] & 0xfc) | 0x02;
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(":");
}

function configureChanges(inputs: BridgeInputs, current: LinkState | undefined, changeMtu: boolean): IpArgs[] {
  const changes: IpArgs[] = [];
  if (changeMtu && inputs.mtu !== undefined) changes.push(setMtu(inputs.name, inputs.mtu));
  if (inputs.group !== undefined && inputs.group !== (current?.group ?? 0))
    changes.push(setGroup(inputs.name, inputs.group));
  changes.push(...addressChanges(inputs.name, current?.addresses ?? [], inputs.addresses));
  if (inputs.up !== (current?.up ?? false)) changes.push(setUp(inputs.name, inputs.up));
  return changes;
}

/**
 * Whether configuring the bridge changes what its neighbours must learn: an
 * address added, or the bridge coming up (with addresses). The announcement
 * itself is skipped on the host while the bridge has no port (no carrier):
 * a bridge just made has none, and the VethPair that attaches one announces.
 */
export function announcesAfter(inputs: BridgeInputs, current: LinkState): boolean {
  if (!inputs.up || inputs.addresses.length === 0) return false;
  return !current.up || inputs.addresses.some((a) => !current.addresses.includes(a));
}

/**
 * Configures an existing bridge as `inputs` say (after `first`, e.g. its mark)
 * in one locked commit that refuses first the addresses it adds which collide
 * with the host's (its own are not collisions); nothing to change sends nothing.
 */
async function configure(
  remote: Remote,
  inputs: BridgeInputs,
  current: LinkState,
  changeMtu: boolean,
  first: IpArgs[] = [],
): Promise<void> {
  const changes = [...first, ...configureChanges(inputs, current, changeMtu)];
  if (changes.length === 0) return;
  const added = inputs.addresses.filter((a) => !current.addresses.includes(a));
  const checks = addressCheck(remote, `Bridge ${inputs.name}`, inputs.name, added, inputs.namespace);
  const configuring = sequence(...applyChanges(at(inputs.namespace), changes));
  const committing = lookingUp(configuring, lookup("namespace", inputs.namespace, "namespace"));
  await lockedCommit(remote, inputs.namespace, [], () => ({ script: committing, result: undefined }), checks);
  // After the commit, outside the host lock (it may wait up to 1 s for the carrier); best effort:
  // unannounced, the neighbours still learn the new MAC, ~20 s later.
  if (announcesAfter(inputs, current))
    await runScript(remote, script([bestEffort(announceBridge(at(inputs.namespace), inputs.name))]));
  if (inputs.up) await settleIpv6(remote, inputs.name, inputs.addresses, inputs.namespace);
}

async function readBridge(
  remote: Remote,
  inputs: { name: string; namespace?: string },
): Promise<LinkState | undefined> {
  const [text] = await readAll(remote, [printLink(at(inputs.namespace), inputs.name)]);
  const state = parseLink(text, `bridge ${inputs.name}`);
  return state?.kind === "bridge" ? state : undefined;
}

function outputs(
  inputs: BridgeInputs,
  remote: Remote,
  state: LinkState,
  adopted: boolean,
  rules: RuleSetState,
  known?: Record<string, string>,
): BridgeOutputs {
  return {
    ...inputs,
    ...rules,
    missingRules: [],
    addresses: sameAddresses(inputs.addresses, state.addresses) ? inputs.addresses : state.addresses,
    up: state.up,
    ...(inputs.mtu !== undefined ? { mtu: state.mtu } : {}),
    // The group the host has, not the one asked for: an IsolatedNetwork's isolation rests on it, so refresh shows it changed by hand.
    ...(inputs.group !== undefined ? { group: state.group ?? 0 } : {}),
    mac: state.mac,
    ifindex: state.ifindex,
    adopted,
    knownHostKeys: recordHostKeys(remote, known),
  };
}

const idOf = (i: BridgeInputs) => `bridge/${i.namespace ?? ""}/${i.name}@${endpoint(i.connection)}`;
const where = (i: BridgeInputs) => (i.namespace ? `namespace ${JSON.stringify(i.namespace)}` : "the host namespace");

async function create(inputs: BridgeInputs): Promise<pulumi.dynamic.CreateResult> {
  const remote = await remoteFor(inputs);
  // The rule set's id names the owner mark too (kernel/mark): delete removes only the bridge carrying it.
  const ruleId = randomBytes(4).toString("hex");
  // A retained bridge carries no mark: destroy leaves it, and a mark would only refuse a later adopt.
  const mark = markUnlessRetained("bridge", ruleId, inputs.retainOnDelete);
  const marking = mark ? [setMark(inputs.name, mark)] : [];
  if (inputs.adopt) {
    const current = await readBridge(remote, inputs);
    if (current) {
      refuseMarkedLink("bridge", inputs.name, inputs.namespace, remote.label, current.ifalias);
      // The Bridge whose mark the link carries lives (maybe in another stack): its rules stay; any other's are orphans.
      const before = markIdOf("bridge", current.ifalias);
      await configure(remote, inputs, current, current.mtu !== inputs.mtu, marking); // adopted, it is ours
      const after = await readBridge(remote, inputs);
      if (!after) throw new Error(`bridge ${inputs.name} vanished from ${where(inputs)} while it was adopted`);
      const live = before ? [ruleId, before] : [ruleId];
      const rules = await addRules(remote, inputs, true, ruleId, live);
      return { id: idOf(inputs), outs: plain(outputs(inputs, remote, after, true, rules)) };
    }
  }
  const ns = at(inputs.namespace);
  // The bridge is configured and read back by one `ip -batch`.
  const configureAndShow = [...marking, ...configureChanges(inputs, undefined, true), showLink(inputs.name)];
  const add = lookingUp(
    creation(
      ns.ip("link", "add", "name", inputs.name, "address", stableMac(), "type", "bridge"),
      [ns.ipBatch(configureAndShow, LINK_READ_OPTIONS)],
      [deleteLink(ns, inputs.name)],
    ),
    lookup("namespace", inputs.namespace, "namespace"),
  );
  const making = {
    what: `bridge ${JSON.stringify(inputs.name)}`,
    leftover:
      `remove it by hand (ip${inputs.namespace ? ` -n ${inputs.namespace}` : ""} link delete ${inputs.name})` +
      (inputs.group === ISOLATION_GROUP ? "" : " or set adopt: true on the Bridge to take it over"),
  };
  // The address check runs inside the commit that makes the bridge: two bridges at once cannot both take a network.
  const checks = addressCheck(remote, `Bridge ${inputs.name}`, inputs.name, inputs.addresses, inputs.namespace);
  let shown: string;
  try {
    const { outputs } = await lockedCommit(
      remote,
      inputs.namespace,
      [],
      () => ({ script: add, making, result: undefined }),
      checks,
    );
    shown = outputs[1];
  } catch (e) {
    if (e instanceof CommandError && e.stderr.includes("File exists") && !inputs.adopt)
      throw new Error(
        `interface ${JSON.stringify(inputs.name)} already exists in ${where(inputs)} on ${remote.label}; nothing was changed. ` +
          // An IsolatedNetwork's Bridge (the only one in the group) has no adopt: the network takes no existing bridge.
          (inputs.group === ISOLATION_GROUP
            ? "Choose another bridge name for the IsolatedNetwork, or remove the other interface first."
            : "Set adopt: true to take over an existing bridge, or choose another name."),
      );
    throw e;
  }
  const state = parseLink(shown, inputs.name);
  let rules: RuleSetState;
  try {
    if (!state) throw new Error(`bridge ${inputs.name} is not in ${where(inputs)} after it was created`);
    if (inputs.up) await settleIpv6(remote, inputs.name, inputs.addresses, inputs.namespace);
    // A rule left by an earlier bridge of this name (gone: this create has just made the link) goes now.
    rules = await addRules(remote, inputs, false, ruleId, [ruleId]);
  } catch (e) {
    // The first failure is the one to report (a rule set's may say what it left behind): a failed cleanup only adds to it.
    try {
      await runScript(remote, script([bestEffort(deleteLink(ns, inputs.name))]));
    } catch (u) {
      throw withFailedCleanup(
        e,
        `removing the bridge again failed: ${(u as Error).message}; it is on ${remote.label} without being recorded, ` +
          `remove it by hand: ip${inputs.namespace ? ` -n ${inputs.namespace}` : ""} link del ${inputs.name}`,
      );
    }
    throw e;
  }
  tellRetainedRules(remote, inputs, false, rules.comment);
  return { id: idOf(inputs), outs: plain(outputs(inputs, remote, state, false, rules)) };
}

/**
 * Adds the bridge's rules under a new owner comment of id `ruleId` (a rule left
 * by a gone bridge of this name, one whose id is not in `live`, goes in the
 * same commit). An adopted, retained bridge gets none: its state then holds no
 * comment, as state from before the bridge had rules.
 */
async function addRules(
  remote: Remote,
  inputs: BridgeInputs,
  adopted: boolean,
  ruleId: string,
  live: string[],
): Promise<RuleSetState> {
  const rules = rulesOf(inputs, adopted);
  if (rules.length === 0) return { ruleId, comment: "", rules: [] };
  return createRuleSet(remote, "bridge", inputs.namespace, rules, [], ruleId, [], (saved) =>
    orphanBridgeOwners(saved, inputs.name, live).map((comment) => {
      // Only networks that validate reach a command: the line is the host's, and anyone may have written it.
      const forwardFrom = orphanForwardSources(saved, inputs.name, comment).filter((c) => ipNetwork(c) === undefined);
      return { comment, rules: rulesOf({ name: inputs.name, forwardFrom }, false, true) };
    }),
  );
}

/**
 * A bridge this resource made and destroy will leave (retainOnDelete) keeps its
 * accepts, which it needs to work; says so, with the commands that remove them.
 */
function tellRetainedRules(remote: Remote, inputs: BridgeInputs, adopted: boolean, comment: string): void {
  if (!inputs.retainOnDelete || adopted || !comment) return;
  const removals = rulesOf(inputs, adopted).map((r) => removeRuleCommand(inputs.namespace, r, comment));
  // The filter table the accepts brought (its claim says it was not there before) stays on an nf_tables host once empty.
  const claims = [...parseOwners(`--comment ${comment}`).values()].map((o) => o.claims);
  const exec = inputs.namespace ? `ip netns exec ${inputs.namespace} ` : "";
  const brought = [
    ...(claims.some((c) => c.tfilter === "0") ? [`${exec}nft delete table ip filter`] : []),
    ...(claims.some((c) => c.t6filter === "0") ? [`${exec}nft delete table ip6 filter`] : []),
  ];
  const table = brought.length
    ? `; then, once the filter table holds nothing of anyone's, the table${brought.length > 1 ? "s" : ""} they brought: ${brought.join("; ")}`
    : "";
  progress(
    `retainOnDelete: destroy will leave bridge ${JSON.stringify(inputs.name)} in ${where(inputs)} on ${remote.label} ` +
      `with its FORWARD accept rules (the engine does not call delete for it); remove them by hand after destroy: ${removals.join("; ")}${table}`,
  );
}

/** Whether a rule set's owner comment claims an IPv6 table: it has held IPv6 rules. */
const claimsIpv6 = (comment: string) =>
  [...parseOwners(`--comment ${comment}`).values()].some((o) => Object.keys(o.claims).some((k) => k.startsWith("t6")));

/** `e` (kept as it is: its class, retryable, hostMayBeGone) with what went wrong while cleaning up after it. */
function withFailedCleanup(e: unknown, also: string): unknown {
  if (!(e instanceof Error)) return new Error(`${String(e)}\n${also}.`);
  e.message = `${e.message}\nAnd ${also}.`;
  return e;
}

async function read(id: string, props: BridgeOutputs): Promise<pulumi.dynamic.ReadResult> {
  const remote = await remoteFor(props);
  const state = await readBridge(remote, props);
  if (!state || !ours(state, props)) return {}; // a bridge under this name that is not ours: ours is gone
  const rules = rulesOf(props, props.adopted);
  const missing = rules.length ? (await observeRuleSet(remote, props.namespace, rules, props.comment, [])).missing : [];
  const outs = outputs(props, remote, state, props.adopted, props, props.knownHostKeys);
  return { id, props: plain({ ...outs, missingRules: missing }) };
}

async function update(_id: string, olds: BridgeOutputs, news: BridgeInputs): Promise<pulumi.dynamic.UpdateResult> {
  const remote = await remoteFor({ connection: news.connection, knownHostKeys: olds.knownHostKeys });
  const current: LinkState = {
    ifname: olds.name,
    ifindex: olds.ifindex,
    mac: olds.mac,
    mtu: olds.mtu ?? -1,
    up: olds.up,
    addresses: olds.addresses,
    group: olds.group ?? 0,
  };
  // retainOnDelete turned on takes the mark off (destroy will leave the bridge), turned off puts it back.
  const retainChanged = (olds.retainOnDelete ?? false) !== news.retainOnDelete;
  const mark = olds.ruleId ? markUnlessRetained("bridge", olds.ruleId, news.retainOnDelete) : undefined;
  const marking = retainChanged && olds.ruleId ? [mark ? setMark(news.name, mark) : clearMark(news.name)] : [];
  if (retainChanged && mark) {
    const now = await readBridge(remote, news);
    refuseMarkedLink("bridge", news.name, news.namespace, remote.label, now?.ifalias, "retainOnDelete");
  }
  await configure(remote, news, current, news.mtu !== olds.mtu, marking);
  const [oldRules, newRules] = [rulesOf(olds, olds.adopted), rulesOf(news, olds.adopted)];
  let ruleSet: RuleSetState;
  if (oldRules.length > 0 && newRules.length === 0) {
    // Adopted and now retained: its accepts go (and a table they brought), as its delete would take them.
    if (olds.comment) await deleteRuleSet(remote, news.namespace, oldRules, olds.comment, olds.ruleId);
    ruleSet = { ruleId: olds.ruleId, comment: "", rules: [] };
  } else if (oldRules.length === 0 && newRules.length > 0) {
    // Adopted and no longer retained: its accepts come, under a new comment (the table claims as the host has them now).
    ruleSet = await addRules(remote, news, olds.adopted, olds.ruleId, [olds.ruleId]);
  } else {
    // A changed forwardFrom: the new accepts go in before the old ones come out (missing ones come back too).
    // (State from before the bridge had rules has no comment to put them under: nothing to change there.)
    const changed = JSON.stringify(oldRules) !== JSON.stringify(newRules);
    // A first IPv6 rule widens the comment's claims (replaceRules): the rules are under the returned one from then on.
    let comment = olds.comment;
    if (olds.comment && changed)
      comment = await replaceRules(remote, news.namespace, oldRules, newRules, olds.comment, [], olds.ruleId);
    else if ((olds.missingRules ?? []).length) await repairRuleSet(remote, news.namespace, newRules, olds.comment, []);
    const rules = comment ? newRules.map((r) => describeRule(r, comment)) : olds.rules;
    // Only the rule set's own fields from olds: the rest is what news say (their forwardFrom, adopt, ...).
    ruleSet = { ruleId: olds.ruleId, comment, rules };
  }
  const state = await readBridge(remote, news);
  if (!state)
    throw new Error(`bridge ${news.name} is gone from ${where(news)} on ${remote.label}; run refresh, then up`);
  tellRetainedRules(remote, news, olds.adopted, ruleSet.comment);
  return { outs: plain(outputs(news, remote, state, olds.adopted, ruleSet, olds.knownHostKeys)) };
}

/** Whether the link under the bridge's name is the one this resource made or adopted (kernel/mark). */
function ours(found: LinkState, props: BridgeOutputs): boolean {
  // A retained bridge carries no mark: known by the ifindex and MAC recorded.
  const mark = props.ruleId ? markUnlessRetained("bridge", props.ruleId, props.retainOnDelete) : undefined;
  return isOurLink(found, { ...props, mark });
}

/**
 * Removes the rules (found by their owner comment, so ours only), then the
 * bridge if it is ours: its mark, or the ifindex and MAC recorded (state from
 * before marks). Another interface under the name is left, and the delete says so.
 */
async function remove(_id: string, props: BridgeOutputs): Promise<void> {
  const remote = await remoteFor(props);
  if (props.comment)
    await deleteRuleSet(
      remote,
      props.namespace,
      rulesOf(props, props.adopted, claimsIpv6(props.comment)),
      props.comment,
      props.ruleId,
    );
  await deleteOwnedLink(remote, "bridge", props, (found) => ours(found, props));
}

// Each failure says what to do for its operation, once (opErrors.ts); the shim calls these by name.
const { create: c, read: r, update: u, remove: d } = advised({ create, read, update, remove });

export { c as create, d as remove, r as read, u as update };
export const provider: ProviderOf<typeof BRIDGE> = { check, diff, create: c, read: r, update: u, delete: d };
