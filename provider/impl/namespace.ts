import type * as pulumi from "@pulumi/pulumi";
import { endpoint } from "../connection";
import { at } from "../kernel/namespace";
import {
  addNamespace,
  deleteIfIdle,
  type NamespaceState,
  parseDeletion,
  parseNamespace,
  readNamespace,
  setLoopback,
  unlinkAndDelete,
  waitForPeers,
} from "../kernel/netns";
import { sequence } from "../kernel/script";
import { NAMESPACE } from "../resourceSchemas";
import { CommandError, type Remote } from "../transport";
import { fromSchema, plain, recordHostKeys, remoteFor } from "./common";
import { readAll, runScript } from "./executor";
import { forNew, onStored, onStoredUpdate } from "./opErrors";
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
  let adopted = false;
  if (inputs.adopt) {
    const state = await observe(remote, inputs.name);
    adopted = state.exists;
    if (state.exists && inputs.loopbackUp && !state.loopbackUp) await setLoopbackOf(remote, inputs.name, true);
  }
  if (!adopted) {
    try {
      await runScript(remote, addNamespace(inputs.name, inputs.loopbackUp), {
        what: `namespace ${JSON.stringify(inputs.name)}`,
        leftover: `remove it by hand (ip netns delete ${inputs.name}) or set adopt: true on the Namespace to take it over`,
      });
    } catch (e) {
      if (e instanceof CommandError && (await observe(remote, inputs.name)).exists && !inputs.adopt)
        throw new Error(
          `namespace ${JSON.stringify(inputs.name)} already exists on ${remote.label}; nothing was changed. ` +
            "Set adopt: true to take it over, or choose another name.",
        );
      throw e;
    }
  }
  const outs: NamespaceOutputs = { ...inputs, adopted, knownHostKeys: recordHostKeys(remote) };
  return { id: idOf(inputs), outs: plain(outs) };
}

async function read(id: string, props: NamespaceOutputs): Promise<pulumi.dynamic.ReadResult> {
  const remote = await remoteFor(props);
  const state = await observe(remote, props.name);
  if (!state.exists) return {};
  return { id, props: plain({ ...props, loopbackUp: state.loopbackUp }) };
}

async function update(
  _id: string,
  olds: NamespaceOutputs,
  news: NamespaceInputs,
): Promise<pulumi.dynamic.UpdateResult> {
  const remote = await remoteFor({ connection: news.connection, knownHostKeys: olds.knownHostKeys });
  if (olds.loopbackUp !== news.loopbackUp) await setLoopbackOf(remote, news.name, news.loopbackUp);
  const outs: NamespaceOutputs = {
    ...news,
    adopted: olds.adopted,
    knownHostKeys: recordHostKeys(remote, olds.knownHostKeys),
  };
  return { outs: plain(outs) };
}

async function remove(_id: string, props: NamespaceOutputs): Promise<void> {
  const remote = await remoteFor(props);
  await deleteNamespaceWithPeers(remote, props.name);
}

async function observe(remote: Remote, name: string): Promise<NamespaceState> {
  return parseNamespace(await readAll(remote, readNamespace(name)), name);
}

async function setLoopbackOf(remote: Remote, name: string, up: boolean): Promise<void> {
  await runScript(remote, sequence(at(name).ip(...setLoopback(up))));
}

/**
 * Deletes a namespace (one already gone is not an error) and returns once the
 * veth peers of its interfaces are gone from the other namespaces too. In a
 * namespace a process still runs in, which outlives `ip netns del` with its
 * links, the veths are deleted one by one first.
 */
export async function deleteNamespaceWithPeers(remote: Remote, name: string): Promise<void> {
  const deletion = parseDeletion(await runScript(remote, deleteIfIdle(name)), name);
  if (!deletion.existed) return;
  await runScript(remote, deletion.deleted ? waitForPeers(deletion) : unlinkAndDelete(name, deletion));
}

// Each failure says what to do for its operation, once (opErrors.ts).
const createOp = forNew(create);
const readOp = onStored(read);
const updateOp = onStoredUpdate(update);
const removeOp = onStored(remove);

export { createOp as create, readOp as read, removeOp as remove, updateOp as update };

export const provider: ProviderOf<typeof NAMESPACE> = {
  check,
  diff,
  create: createOp,
  read: readOp,
  update: updateOp,
  delete: removeOp,
};
