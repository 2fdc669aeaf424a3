import type * as pulumi from "@pulumi/pulumi";
import { endpoint } from "../connection";
import { allOrNothing, type IpArgs, ip, ipBatch, readSections, runSteps, runUndoable, SECTION } from "../kernel/exec";
import {
  addressOps,
  deleteLinkScript,
  type LinkState,
  masterOp,
  mtuOp,
  parseLink,
  sameAddresses,
  showLinkOp,
  showLinkScript,
  upOp,
} from "../kernel/link";
import { type InterfaceEnd, VETH_PAIR, type VethEndOutput } from "../resourceSchemas";
import { CommandError, type Remote } from "../transport";
import { isUnknown } from "../validate";
import { fromSchema, type InputsOf, type OutputsOf, type ProviderOf, plain, recordHostKeys, remoteFor } from "./common";

export type VethPairInputs = InputsOf<typeof VETH_PAIR>;
export type VethPairOutputs = OutputsOf<typeof VETH_PAIR>;

const where = (end: InterfaceEnd) =>
  end.namespace ? `namespace ${JSON.stringify(end.namespace)}` : "the host namespace";

export const { check, diff } = fromSchema(VETH_PAIR, {
  alsoCheck: (checker, news) => {
    const a = news.a as InterfaceEnd;
    const b = news.b as InterfaceEnd;
    if (a && b && !isUnknown(a.name) && a.name === b.name && a.namespace === b.namespace)
      checker.fail(
        "b.name",
        `${JSON.stringify(b.name)} is also a's name in ${where(a)}; the two ends need different names`,
      );
  },
  deleteBeforeReplace: true,
});

/** Creates the pair from the side of an end in the host namespace, so no name is ever taken twice in one place. */
function createStep(a: InterfaceEnd, b: InterfaceEnd): { step: string; first: InterfaceEnd } {
  if (!a.namespace && b.namespace)
    return {
      step: ip(undefined, "link", "add", "name", a.name, "type", "veth", "peer", "name", b.name, "netns", b.namespace),
      first: a,
    };
  if (a.namespace && !b.namespace)
    return {
      step: ip(undefined, "link", "add", "name", b.name, "type", "veth", "peer", "name", a.name, "netns", a.namespace),
      first: b,
    };
  const peer = b.namespace && b.namespace !== a.namespace ? ["netns", b.namespace] : [];
  return {
    step: ip(a.namespace, "link", "add", "name", a.name, "type", "veth", "peer", "name", b.name, ...peer),
    first: a,
  };
}

function configureOps(end: InterfaceEnd, current: LinkState | undefined, pairMtu: number | undefined): IpArgs[] {
  const ops: IpArgs[] = [];
  if (pairMtu !== undefined && current?.mtu !== pairMtu) ops.push(mtuOp(end.name, pairMtu));
  if (end.bridge !== current?.master) ops.push(masterOp(end.name, end.bridge));
  ops.push(...addressOps(end.name, current?.addresses ?? [], end.addresses));
  if (end.up !== (current?.up ?? false)) ops.push(upOp(end.name, end.up));
  return ops;
}

/** One end's changes as one step (a single `ip -batch` in the end's namespace); none when nothing changes. */
function configureSteps(end: InterfaceEnd, current: LinkState | undefined, pairMtu: number | undefined): string[] {
  const ops = configureOps(end, current, pairMtu);
  return ops.length ? [ipBatch(end.namespace, ops)] : [];
}

async function readEnds(
  remote: Remote,
  a: InterfaceEnd,
  b: InterfaceEnd,
): Promise<[LinkState | undefined, LinkState | undefined]> {
  const [ta, tb] = await readSections(remote, [
    showLinkScript(a.namespace, a.name),
    showLinkScript(b.namespace, b.name),
  ]);
  return [parseLink(ta, `veth end ${a.name}`), parseLink(tb, `veth end ${b.name}`)];
}

function observed(end: InterfaceEnd, state: LinkState): VethEndOutput {
  return {
    ...end,
    bridge: state.master,
    up: state.up,
    addresses: sameAddresses(end.addresses, state.addresses) ? end.addresses : state.addresses,
    mac: state.mac,
    ifindex: state.ifindex,
  };
}

function outputs(
  inputs: VethPairInputs,
  remote: Remote,
  a: LinkState,
  b: LinkState,
  adopted: boolean,
  known?: Record<string, string>,
): VethPairOutputs {
  return {
    ...inputs,
    a: observed(inputs.a, a),
    b: observed(inputs.b, b),
    ...(inputs.mtu !== undefined ? { mtu: a.mtu } : {}),
    adopted,
    knownHostKeys: recordHostKeys(remote, known),
  };
}

function idOf(inputs: VethPairInputs): string {
  const end = (e: InterfaceEnd) => `${e.namespace ?? ""}/${e.name}`;
  return `veth/${end(inputs.a)}~${end(inputs.b)}@${endpoint(inputs.connection)}`;
}

export async function create(inputs: VethPairInputs): Promise<pulumi.dynamic.CreateResult> {
  const remote = await remoteFor(inputs);
  const { a, b } = inputs;
  if (inputs.adopt) {
    const [sa, sb] = await readEnds(remote, a, b);
    if (sa && sb) {
      await runSteps(remote, [...configureSteps(a, sa, inputs.mtu), ...configureSteps(b, sb, inputs.mtu)]);
      const [na, nb] = await readEnds(remote, a, b);
      return { id: idOf(inputs), outs: plain(outputs(inputs, remote, mustExist(na, a), mustExist(nb, b), true)) };
    }
  }
  const { step, first } = createStep(a, b);
  // Each end is configured and read back by one `ip -batch` in its namespace.
  const configureAndShow = (end: InterfaceEnd) =>
    ipBatch(end.namespace, [...configureOps(end, undefined, inputs.mtu), showLinkOp(end.name)], ["-d", "-j"]);
  const configure = [configureAndShow(a), `echo ${SECTION}`, configureAndShow(b)];
  const script = `${step} || exit $?\n${allOrNothing(configure, deleteLinkScript(first.namespace, first.name))}`;
  let stdout: string;
  try {
    const undo = `${deleteLinkScript(a.namespace, a.name)}; ${deleteLinkScript(b.namespace, b.name)}`;
    stdout = (
      await runUndoable(
        remote,
        script,
        () => remote.run(undo),
        `veth pair ${JSON.stringify(a.name)}~${JSON.stringify(b.name)}`,
      )
    ).stdout;
  } catch (e) {
    if (e instanceof CommandError && !inputs.adopt) {
      const [sa, sb] = await readEnds(remote, a, b);
      const taken = sa ? a : sb ? b : undefined;
      if (taken && e.stderr.includes("File exists"))
        throw new Error(
          `interface ${JSON.stringify(taken.name)} already exists in ${where(taken)} on ${remote.label}; nothing was changed. ` +
            "Set adopt: true to take over an existing pair, or choose other names.",
        );
    }
    throw e;
  }
  const [ta = "", tb = ""] = stdout.split(`${SECTION}\n`);
  const sa = mustExist(parseLink(ta, a.name), a);
  const sb = mustExist(parseLink(tb, b.name), b);
  return { id: idOf(inputs), outs: plain(outputs(inputs, remote, sa, sb, false)) };
}

function mustExist(state: LinkState | undefined, end: InterfaceEnd): LinkState {
  if (!state) throw new Error(`veth end ${JSON.stringify(end.name)} is not in ${where(end)} after it was set up`);
  return state;
}

export async function read(id: string, props: VethPairOutputs): Promise<pulumi.dynamic.ReadResult> {
  const remote = await remoteFor(props);
  const [sa, sb] = await readEnds(remote, props.a, props.b);
  if (!sa || !sb) return {};
  return {
    id,
    props: plain({
      ...props,
      a: observed(props.a, sa),
      b: observed(props.b, sb),
      ...(props.mtu !== undefined ? { mtu: sa.mtu } : {}),
    }),
  };
}

export async function update(
  _id: string,
  olds: VethPairOutputs,
  news: VethPairInputs,
): Promise<pulumi.dynamic.UpdateResult> {
  const remote = await remoteFor({ connection: news.connection, knownHostKeys: olds.knownHostKeys });
  const asState = (o: VethEndOutput, m: number | undefined): LinkState => ({
    ifname: o.name,
    ifindex: o.ifindex,
    mac: o.mac,
    mtu: m ?? -1,
    up: o.up,
    master: o.bridge,
    addresses: o.addresses,
  });
  const pairMtu = news.mtu !== olds.mtu ? news.mtu : undefined;
  await runSteps(remote, [
    ...configureSteps(news.a, asState(olds.a, olds.mtu), pairMtu),
    ...configureSteps(news.b, asState(olds.b, olds.mtu), pairMtu),
  ]);
  const [sa, sb] = await readEnds(remote, news.a, news.b);
  return {
    outs: plain(outputs(news, remote, mustExist(sa, news.a), mustExist(sb, news.b), olds.adopted, olds.knownHostKeys)),
  };
}

export async function remove(_id: string, props: VethPairOutputs): Promise<void> {
  const remote = await remoteFor(props);
  // Deleting one end deletes its peer; the second line covers an end whose peer's namespace was already gone.
  await remote.run(
    `${deleteLinkScript(props.a.namespace, props.a.name)}\n${deleteLinkScript(props.b.namespace, props.b.name)}`,
  );
}

export const provider: ProviderOf<typeof VETH_PAIR> = { check, diff, create, read, update, delete: remove };
