import { randomBytes } from "node:crypto";
import type * as pulumi from "@pulumi/pulumi";
import { endpoint } from "../connection";
import { markNamespace, markUnlessRetained, notOursWarning, refuseMarkedAdoption } from "../kernel/mark";
import { at } from "../kernel/namespace";
import {
  addNamespace,
  type Deletion,
  deleteIfIdle,
  type NamespaceState,
  parseDeletion,
  parseNamespace,
  readNamespace,
  setLoopback,
  takenAlong,
  unlinkAndDelete,
  waitForPeers,
} from "../kernel/netns";
import { sequence } from "../kernel/script";
import { NAMESPACE } from "../resourceSchemas";
import { CommandError, type Remote } from "../transport";
import { progress } from "../transport/progress";
import { fromSchema, plain, recordHostKeys, remoteFor } from "./common";
import { announceNewHolders, tookAlong } from "./declaredVeths";
import { readAll, runScript } from "./executor";
import { advised } from "./opErrors";
import type { InputsOf, OutputsOf, ProviderOf } from "./types";

export type NamespaceInputs = InputsOf<typeof NAMESPACE>;
export type NamespaceOutputs = OutputsOf<typeof NAMESPACE>;

function idOf(inputs: NamespaceInputs): string {
  return `netns/${inputs.name}@${endpoint(inputs.connection)}`;
}

// A name is unique on its host: the old namespace must go before the new one can exist.
export const { check, diff } = fromSchema(NAMESPACE, { deleteBeforeReplace: true });

async function create(inputs: NamespaceInputs): Promise<pulumi.dynamic.CreateResult> {
  const remote = await remoteFor(inputs);
  // A retained namespace carries no mark: destroy leaves it, and a mark would only refuse a later adopt.
  const mark = markUnlessRetained("netns", randomBytes(4).toString("hex"), inputs.retainOnDelete);
  let adopted = false;
  if (inputs.adopt) {
    const state = await observe(remote, inputs.name);
    adopted = state.exists;
    // Adopted, it is ours: marked, so that its delete knows it.
    if (state.exists) {
      refuseMarkedAdoption(
        `namespace ${inputs.name}`,
        remote.label,
        state.mark,
        `ip -n ${inputs.name} link set dev lo alias ""`,
      );
      const loopback = inputs.loopbackUp && !state.loopbackUp ? [at(inputs.name).ip(...setLoopback(true))] : [];
      const marking = mark ? [markNamespace(at(inputs.name), mark)] : [];
      if (marking.length + loopback.length > 0) await runScript(remote, sequence(...marking, ...loopback));
    }
  }
  if (!adopted) {
    try {
      await runScript(remote, addNamespace(inputs.name, inputs.loopbackUp, mark), {
        what: `namespace ${JSON.stringify(inputs.name)}`,
        leftover: `remove it by hand (ip netns delete ${inputs.name}) or set adopt: true on the Namespace to take it over`,
      });
    } catch (e) {
      if (e instanceof CommandError && (await observe(remote, inputs.name)).exists && !inputs.adopt)
        throw new Error(
          `namespace ${JSON.stringify(inputs.name)} already exists on ${remote.label}; nothing was changed. ` +
            "Set adopt: true on the Namespace to take it over, or choose another name " +
            // The components make their Namespaces without adopt: the user's fix is in their own fields.
            `(an IsolatedNetwork's namespaces[].name or a PodNetwork's pods[].name, which do not adopt: rename it, or remove the existing one: ip netns delete ${inputs.name}).`,
        );
      throw e;
    }
  }
  const outs: NamespaceOutputs = { ...inputs, adopted, mark, knownHostKeys: recordHostKeys(remote) };
  return { id: idOf(inputs), outs: plain(outs) };
}

async function read(id: string, props: NamespaceOutputs): Promise<pulumi.dynamic.ReadResult> {
  const remote = await remoteFor(props);
  const state = await observe(remote, props.name);
  if (!state.exists || !ours(state, props)) return {}; // a namespace under this name that is not ours: ours is gone
  return { id, props: plain({ ...props, loopbackUp: state.loopbackUp }) };
}

/** Whether the namespace under our name is the one this resource made or adopted; state from before marks has none to tell. */
function ours(found: NamespaceState, props: NamespaceOutputs): boolean {
  return props.mark === undefined || found.mark === props.mark;
}

async function update(
  _id: string,
  olds: NamespaceOutputs,
  news: NamespaceInputs,
): Promise<pulumi.dynamic.UpdateResult> {
  const remote = await remoteFor({ connection: news.connection, knownHostKeys: olds.knownHostKeys });
  if (olds.loopbackUp !== news.loopbackUp) await setLoopbackOf(remote, news.name, news.loopbackUp);
  // retainOnDelete turned on takes the mark off (destroy will leave the namespace), turned off puts one on.
  let mark = olds.mark;
  if ((olds.retainOnDelete ?? false) !== news.retainOnDelete) {
    mark = markUnlessRetained("netns", randomBytes(4).toString("hex"), news.retainOnDelete);
    await runScript(remote, sequence(markNamespace(at(news.name), mark)));
  }
  const outs: NamespaceOutputs = {
    ...news,
    adopted: olds.adopted,
    mark,
    knownHostKeys: recordHostKeys(remote, olds.knownHostKeys),
  };
  return { outs: plain(outs) };
}

/**
 * Deletes the namespace if it is the one this resource made or adopted: its
 * `lo` carries the mark in state. Another namespace under the name (ours was
 * deleted behind the program's back, someone made a new one) is left, and the
 * delete says so. State from before marks has none: deleted as before.
 */
async function remove(_id: string, props: NamespaceOutputs): Promise<void> {
  const remote = await remoteFor(props);
  if (props.mark !== undefined) {
    const found = await observe(remote, props.name);
    if (!found.exists) return;
    if (!ours(found, props)) {
      const why = found.mark ? `its loopback's mark is ${JSON.stringify(found.mark)}` : "its loopback carries no mark";
      progress(notOursWarning(`namespace ${JSON.stringify(props.name)}`, remote.label, `${why}, not ${props.mark}`));
      return;
    }
  }
  // Said after the fact, and only of a veth a VethPair still in the program declares (its check ran in this
  // operation, before or after this delete: declaredVeths): a VethPair removed with the namespace, or a
  // destroy, takes it along as asked.
  const deletion = await deleteNamespaceWithPeers(remote, props.name);
  // An address of this namespace another declared end now holds (a namespace renamed in an IsolatedNetwork,
  // whose cable goes with the namespace: no VethPair delete runs): that end announces itself, or neighbours
  // keep this namespace's MAC for it. Best effort.
  await announceNewHolders(remote, props.connection, deletion.addresses, (end) => end.namespace === props.name);
  if (deletion.existed)
    tookAlong(
      props.connection,
      props.name,
      deletion.veths.map((v) => v.ifname),
      (wanted) => takenAlong(deletion, props.name, remote.label, wanted),
    );
}

async function observe(remote: Remote, name: string): Promise<NamespaceState> {
  return parseNamespace(await readAll(remote, readNamespace(name)), name);
}

async function setLoopbackOf(remote: Remote, name: string, up: boolean): Promise<void> {
  await runScript(remote, sequence(at(name).ip(...setLoopback(up))));
}

/**
 * Deletes a namespace (one already gone is not an error) and returns once the
 * veth peers of its interfaces are gone from the other namespaces too; returns
 * what it found (its veths). In a
 * namespace a process still runs in, which outlives `ip netns del` with its
 * links, the veths are deleted one by one first.
 */
export async function deleteNamespaceWithPeers(remote: Remote, name: string): Promise<Deletion> {
  const deletion = parseDeletion(await runScript(remote, deleteIfIdle(name)), name);
  if (!deletion.existed) return deletion;
  await runScript(remote, deletion.deleted ? waitForPeers(deletion) : unlinkAndDelete(name, deletion));
  return deletion;
}

// Each failure says what to do for its operation, once (opErrors.ts); the shim calls these by name.
const { create: c, read: r, update: u, remove: d } = advised({ create, read, update, remove });

export { c as create, d as remove, r as read, u as update };
export const provider: ProviderOf<typeof NAMESPACE> = { check, diff, create: c, read: r, update: u, delete: d };
