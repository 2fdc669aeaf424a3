import type * as pulumi from "@pulumi/pulumi";
import { endpoint } from "../connection";
import { runUndoable } from "../kernel/exec";
import {
  addNamespaceScript,
  deleteNamespace,
  deleteNamespaceScript,
  readNamespace,
  setLoopbackScript,
} from "../kernel/netns";
import { NAMESPACE } from "../resourceSchemas";
import { CommandError } from "../transport";
import { fromSchema, type InputsOf, type OutputsOf, type ProviderOf, plain, recordHostKeys, remoteFor } from "./common";

export type NamespaceInputs = InputsOf<typeof NAMESPACE>;
export type NamespaceOutputs = OutputsOf<typeof NAMESPACE>;

function idOf(inputs: NamespaceInputs): string {
  return `netns/${inputs.name}@${endpoint(inputs.connection)}`;
}

// A name is unique on its host: the old namespace must go before the new one can exist.
export const { check, diff } = fromSchema(NAMESPACE, { deleteBeforeReplace: true });

export async function create(inputs: NamespaceInputs): Promise<pulumi.dynamic.CreateResult> {
  const remote = await remoteFor(inputs);
  let adopted = false;
  if (inputs.adopt) {
    const state = await readNamespace(remote, inputs.name);
    adopted = state.exists;
    if (state.exists && inputs.loopbackUp && !state.loopbackUp) await remote.run(setLoopbackScript(inputs.name, true));
  }
  if (!adopted) {
    try {
      await runUndoable(
        remote,
        addNamespaceScript(inputs.name, inputs.loopbackUp),
        () => remote.run(deleteNamespaceScript(inputs.name)),
        `namespace ${JSON.stringify(inputs.name)}`,
      );
    } catch (e) {
      if (e instanceof CommandError && (await readNamespace(remote, inputs.name)).exists && !inputs.adopt)
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

export async function read(id: string, props: NamespaceOutputs): Promise<pulumi.dynamic.ReadResult> {
  const remote = await remoteFor(props);
  const state = await readNamespace(remote, props.name);
  if (!state.exists) return {};
  return { id, props: plain({ ...props, loopbackUp: state.loopbackUp }) };
}

export async function update(
  _id: string,
  olds: NamespaceOutputs,
  news: NamespaceInputs,
): Promise<pulumi.dynamic.UpdateResult> {
  const remote = await remoteFor({ connection: news.connection, knownHostKeys: olds.knownHostKeys });
  if (olds.loopbackUp !== news.loopbackUp) await remote.run(setLoopbackScript(news.name, news.loopbackUp));
  const outs: NamespaceOutputs = {
    ...news,
    adopted: olds.adopted,
    knownHostKeys: recordHostKeys(remote, olds.knownHostKeys),
  };
  return { outs: plain(outs) };
}

export async function remove(_id: string, props: NamespaceOutputs): Promise<void> {
  const remote = await remoteFor(props);
  await deleteNamespace(remote, props.name);
}

export const provider: ProviderOf<typeof NAMESPACE> = { check, diff, create, read, update, delete: remove };
