import { randomBytes } from "node:crypto";
import type * as pulumi from "@pulumi/pulumi";
import { type Connection, endpoint } from "../connection";
import { SECTION, allOrNothing, ip, readSections } from "../kernel/exec";
import {
  type LinkState,
  addressSteps,
  deleteLinkScript,
  parseLink,
  sameAddresses,
  setMtuStep,
  setUpStep,
  showLinkScript,
} from "../kernel/link";
import { CommandError, type Remote } from "../transport";
import { boolean, interfaceName, isUnknown, mtu, namespaceName } from "../validate";
import { type BaseOutputs, checkResult, diffConnection, recordHostKeys, remoteFor, startCheck } from "./common";
import { checkAddresses } from "./ends";

export interface BridgeInputs {
  connection: Connection;
  name: string;
  namespace?: string;
  addresses: string[];
  mtu?: number;
  up: boolean;
  adopt: boolean;
}

export interface BridgeOutputs extends BridgeInputs, BaseOutputs {
  mac: string;
  ifindex: number;
  adopted: boolean;
}

export async function check(_olds: unknown, news: Record<string, unknown>): Promise<pulumi.dynamic.CheckResult> {
  const checker = startCheck(news);
  checker.field("name", news.name, interfaceName, true);
  checker.field("namespace", news.namespace, namespaceName);
  checkAddresses(checker, "addresses", news.addresses);
  checker.field("mtu", news.mtu, mtu);
  checker.field("up", news.up, boolean);
  checker.field("adopt", news.adopt, boolean);
  return checkResult(checker, { ...news, addresses: news.addresses ?? [], up: news.up ?? true, adopt: news.adopt ?? false });
}

export async function diff(_id: string, olds: BridgeOutputs, news: BridgeInputs): Promise<pulumi.dynamic.DiffResult> {
  const replaces: string[] = [];
  const conn = diffConnection(olds.connection, news.connection);
  if (conn.replace) replaces.push("connection");
  if (isUnknown(news.name) || olds.name !== news.name) replaces.push("name");
  if (olds.namespace !== news.namespace) replaces.push("namespace");
  const update =
    conn.update || olds.up !== news.up || olds.mtu !== news.mtu || olds.adopt !== news.adopt || !sameAddresses(olds.addresses, news.addresses);
  return { changes: replaces.length > 0 || update, replaces, deleteBeforeReplace: true };
}

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

function configureSteps(inputs: BridgeInputs, current: LinkState | undefined, setMtu: boolean): string[] {
  const steps: string[] = [];
  if (setMtu && inputs.mtu !== undefined) steps.push(setMtuStep(inputs.namespace, inputs.name, inputs.mtu));
  steps.push(...addressSteps(inputs.namespace, inputs.name, current?.addresses ?? [], inputs.addresses));
  if (inputs.up !== (current?.up ?? false)) steps.push(setUpStep(inputs.namespace, inputs.name, inputs.up));
  return steps;
}

async function readBridge(remote: Remote, inputs: { name: string; namespace?: string }): Promise<LinkState | undefined> {
  const [text] = await readSections(remote, [showLinkScript(inputs.namespace, inputs.name)]);
  const state = parseLink(text, `bridge ${inputs.name}`);
  return state?.kind === "bridge" ? state : undefined;
}

function outputs(inputs: BridgeInputs, remote: Remote, state: LinkState, adopted: boolean, known?: Record<string, string>): BridgeOutputs {
  return {
    ...inputs,
    addresses: sameAddresses(inputs.addresses, state.addresses) ? inputs.addresses : state.addresses,
    up: state.up,
    ...(inputs.mtu !== undefined ? { mtu: state.mtu } : {}),
    mac: state.mac,
    ifindex: state.ifindex,
    adopted,
    knownHostKeys: recordHostKeys(remote, known),
  };
}

const idOf = (i: BridgeInputs) => `bridge/${i.namespace ?? ""}/${i.name}@${endpoint(i.connection)}`;
const where = (i: BridgeInputs) => (i.namespace ? `namespace ${JSON.stringify(i.namespace)}` : "the host namespace");

export async function create(inputs: BridgeInputs): Promise<pulumi.dynamic.CreateResult> {
  const remote = await remoteFor(inputs);
  if (inputs.adopt) {
    const current = await readBridge(remote, inputs);
    if (current) {
      const steps = configureSteps(inputs, current, current.mtu !== inputs.mtu);
      if (steps.length) await remote.run(steps.join(" && "));
      const after = await readBridge(remote, inputs);
      if (!after) throw new Error(`bridge ${inputs.name} vanished from ${where(inputs)} while it was adopted`);
      return { id: idOf(inputs), outs: outputs(inputs, remote, after, true) };
    }
  }
  const add = ip(inputs.namespace, "link", "add", inputs.name, "address", stableMac(), "type", "bridge");
  const script = `${add} || exit $?\n${allOrNothing(configureSteps(inputs, undefined, true), deleteLinkScript(inputs.namespace, inputs.name))} || exit $?\necho ${SECTION}\n${showLinkScript(inputs.namespace, inputs.name)}`;
  let stdout: string;
  try {
    stdout = (await remote.run(script)).stdout;
  } catch (e) {
    if (e instanceof CommandError && e.stderr.includes("File exists") && !inputs.adopt)
      throw new Error(
        `interface ${JSON.stringify(inputs.name)} already exists in ${where(inputs)} on ${remote.label}; nothing was changed. ` +
          "Set adopt: true to take over an existing bridge, or choose another name.",
      );
    throw e;
  }
  const state = parseLink(stdout.split(`${SECTION}\n`)[1] ?? "", inputs.name);
  if (!state) throw new Error(`bridge ${inputs.name} is not in ${where(inputs)} after it was created`);
  return { id: idOf(inputs), outs: outputs(inputs, remote, state, false) };
}

export async function read(id: string, props: BridgeOutputs): Promise<pulumi.dynamic.ReadResult> {
  const remote = await remoteFor(props);
  const state = await readBridge(remote, props);
  if (!state) return {};
  return { id, props: { ...outputs(props, remote, state, props.adopted, props.knownHostKeys) } };
}

export async function update(_id: string, olds: BridgeOutputs, news: BridgeInputs): Promise<pulumi.dynamic.UpdateResult> {
  const remote = await remoteFor({ connection: news.connection, knownHostKeys: olds.knownHostKeys });
  const current: LinkState = {
    ifname: olds.name,
    ifindex: olds.ifindex,
    mac: olds.mac,
    mtu: olds.mtu ?? -1,
    up: olds.up,
    addresses: olds.addresses,
  };
  const steps = configureSteps(news, current, news.mtu !== olds.mtu);
  if (steps.length) await remote.run(steps.join(" && "));
  const state = await readBridge(remote, news);
  if (!state) throw new Error(`bridge ${news.name} is gone from ${where(news)} on ${remote.label}; run refresh, then up`);
  return { outs: outputs(news, remote, state, olds.adopted, olds.knownHostKeys) };
}

export async function remove(_id: string, props: BridgeOutputs): Promise<void> {
  const remote = await remoteFor(props);
  await remote.run(deleteLinkScript(props.namespace, props.name));
}
