import type * as pulumi from "@pulumi/pulumi";
import { type Connection, endpoint } from "../connection";
import { runUndoable } from "../kernel/exec";
import {
  addNamespaceScript,
  deleteNamespace,
  deleteNamespaceScript,
  readNamespace,
  setLoopbackScript,
} from "../kernel/netns";
import { CommandError } from "../transport";
import { boolean, namespaceName } from "../validate";
import { type BaseOutputs, checkResult, diffConnection, plain, recordHostKeys, remoteFor, startCheck } from "./common";

export interface NamespaceInputs {
  connection: Connection;
  name: string;
  loopbackUp: boolean;
  adopt: boolean;
}

export interface NamespaceOutputs extends NamespaceInputs, BaseOutputs {
  /** True when the namespace existed before this resource took it over. */
  adopted: boolean;
}

function idOf(inputs: NamespaceInputs): string {
  return `netns/${inputs.name}@${endpoint(inputs.connection)}`;
}

export async function check(_olds: unknown, news: Record<string, unknown>): Promise<pulumi.dynamic.CheckResult> {
  const checker = startCheck(news);
  checker.field("name", news.name, namespaceName, true);
  checker.field("loopbackUp", news.loopbackUp, boolean);
  checker.field("adopt", news.adopt, boolean);
  return checkResult(checker, { ...news, loopbackUp: news.loopbackUp ?? true, adopt: news.adopt ?? false });
}

export async function diff(
  _id: string,
  olds: NamespaceOutputs,
  news: NamespaceInputs,
): Promise<pulumi.dynamic.DiffResult> {
  const replaces: string[] = [];
  const conn = diffConnection(olds.connection, news.connection);
  if (conn.replace) replaces.push("connection");
  if (olds.name !== news.name) replaces.push("name");
  const update = conn.update || olds.loopbackUp !== news.loopbackUp || olds.adopt !== news.adopt;
  return {
    changes: replaces.length > 0 || update,
    replaces,
    // A name is unique on its host: the old namespace must go before the new one can exist.
    deleteBeforeReplace: true,
  };
}

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
