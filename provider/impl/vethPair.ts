import { randomBytes } from "node:crypto";
import type * as pulumi from "@pulumi/pulumi";
import { endpoint } from "../connection";
import { type Lookup, lookup } from "../kernel/explain";
import {
  addressChanges,
  announce,
  announceBridge,
  applyChanges,
  deleteLink,
  LINK_READ_OPTIONS,
  type LinkState,
  parseLink,
  printLink,
  sameAddresses,
  setMaster,
  setMtu,
  setUp,
  showLink,
} from "../kernel/link";
import { clearMark, isOurLink, markUnlessRetained, notOursWarning, refuseMarkedLink, setMark } from "../kernel/mark";
import { at } from "../kernel/namespace";
import {
  describeRoute,
  missingRoutes,
  parseRoutesOver,
  printRoutesOver,
  type RouteOver,
  readdRoute,
} from "../kernel/route";
import { bestEffort, creation, type IpArgs, lookingUp, script, sequence, step } from "../kernel/script";
import { type InterfaceEnd, VETH_PAIR, type VethEndOutput } from "../resourceSchemas";
import { CommandError, type Remote } from "../transport";
import { progress } from "../transport/progress";
import { isIpv6, isUnknown } from "../validate";
import { fromSchema, plain, recordHostKeys, remoteFor } from "./common";
import { announceNewHolders, declareAddresses, declareVeths } from "./declaredVeths";
import { readAll, runScript } from "./executor";
import { advised } from "./opErrors";
import { settleBridge, settleIpv6 } from "./settle";
import type { InputsOf, OutputsOf, ProviderOf } from "./types";

export type VethPairInputs = InputsOf<typeof VETH_PAIR>;
export type VethPairOutputs = OutputsOf<typeof VETH_PAIR>;

const where = (end: InterfaceEnd) =>
  end.namespace ? `namespace ${JSON.stringify(end.namespace)}` : "the host namespace";

export const { check, diff } = fromSchema(VETH_PAIR, {
  alsoCheck: (checker, news) => {
    // Compared only when both are known: in preview an end (or its namespace) may still be unknown.
    const known = (end: unknown): end is InterfaceEnd =>
      typeof end === "object" && end !== null && typeof (end as InterfaceEnd).name === "string";
    const [a, b] = [news.a, news.b];
    if (!known(a) || !known(b) || isUnknown(a.name) || isUnknown(a.namespace) || isUnknown(b.namespace)) return;
    // For a Namespace delete later in this operation: whether a veth it takes along is still wanted.
    declareVeths(news.connection, [a, b]);
    declareAddresses(news.connection, [a, b]);
    if (a.name === b.name && (a.namespace ?? undefined) === (b.namespace ?? undefined))
      checker.fail(
        "b.name",
        `${JSON.stringify(b.name)} is also a's name in ${where(a)}; the two ends need different names`,
      );
  },
  deleteBeforeReplace: true,
});

/** What a pair's commands look up on the host, to tell their failures in its fields' terms. */
function lookups(a: InterfaceEnd, b: InterfaceEnd): Lookup[] {
  return [
    ...lookup("a.namespace", a.namespace, "namespace"),
    ...lookup("b.namespace", b.namespace, "namespace"),
    ...lookup("a.bridge", a.bridge, "bridge", a.namespace),
    ...lookup("b.bridge", b.bridge, "bridge", b.namespace),
  ];
}

/** Makes the pair from the side of an end in the host namespace, so no name is ever taken twice in one place. */
function makePair(a: InterfaceEnd, b: InterfaceEnd): string {
  const add = (near: InterfaceEnd, far: InterfaceEnd, peer: IpArgs) =>
    at(near.namespace).ip("link", "add", "name", near.name, "type", "veth", "peer", "name", far.name, ...peer);
  if (!a.namespace && b.namespace) return add(a, b, ["netns", b.namespace]);
  if (a.namespace && !b.namespace) return add(b, a, ["netns", a.namespace]);
  return add(a, b, b.namespace && b.namespace !== a.namespace ? ["netns", b.namespace] : []);
}

function configureChanges(end: InterfaceEnd, current: LinkState | undefined, pairMtu: number | undefined): IpArgs[] {
  const changes: IpArgs[] = [];
  if (pairMtu !== undefined && current?.mtu !== pairMtu) changes.push(setMtu(end.name, pairMtu));
  if (end.bridge !== current?.master) changes.push(setMaster(end.name, end.bridge));
  changes.push(...addressChanges(end.name, current?.addresses ?? [], end.addresses));
  if (end.up !== (current?.up ?? false)) changes.push(setUp(end.name, end.up));
  return changes;
}

/**
 * The ends that have something to announce: up, with addresses, and with a
 * carrier to send on (a veth has one only while both ends are up).
 */
function announcing([a, b]: InterfaceEnd[]): string[] {
  if (!a.up || !b.up) return [];
  return [a, b].filter((end) => end.addresses.length > 0).map((end) => announce(at(end.namespace), end.name));
}

/**
 * The bridges to announce after the ends are configured: that of each end that
 * joins it, or comes up in it, and is up. A re-created bridge (new MAC: its
 * ports were detached when it went) has no carrier until a port is back, so
 * its own create cannot announce it; the VethPair that puts a port back does,
 * or the namespaces on it keep its old MAC for the gateway for ~20 s.
 */
export function bridgesToAnnounce(ends: InterfaceEnd[], current: Array<LinkState | undefined>): string[] {
  return ends
    .filter((end, i) => end.bridge && end.up && (end.bridge !== current[i]?.master || !current[i]?.up))
    .map((end) => announceBridge(at(end.namespace), end.bridge as string));
}

/** Whether an update changes what the neighbours of an end must learn: its addresses, or its link coming up. */
function movesAddresses(olds: VethEndOutput[], news: InterfaceEnd[]): boolean {
  return olds.some((o, i) => !sameAddresses(o.addresses, news[i].addresses) || (!o.up && news[i].up));
}

/** Both ends' changes, one `ip -batch` per end that changes. */
async function configure(
  remote: Remote,
  [a, b]: InterfaceEnd[],
  [sa, sb]: Array<LinkState | undefined>,
  pairMtu: number | undefined,
  announceAfter = false,
  restore: string[] = [],
): Promise<void> {
  const changes = script([
    ...applyChanges(at(a.namespace), configureChanges(a, sa, pairMtu)).map(step),
    ...applyChanges(at(b.namespace), configureChanges(b, sb, pairMtu)).map(step),
    // Best effort: a route still there fails with "File exists", one whose gateway is out of reach is told after.
    ...restore.map(bestEffort),
    // Best effort: without it the neighbours still learn the new MAC, only ~20 s later.
    ...(announceAfter ? announcing([a, b]).map(bestEffort) : []),
    // Best effort too, and after the ends' own: the bridge has its carrier once a port is in it and up.
    ...bridgesToAnnounce([a, b], [sa, sb]).map(bestEffort),
  ]);
  await runScript(remote, lookingUp(changes, lookups(a, b)));
  await settleEnds(remote, [a, b]);
}

/**
 * Waits for the IPv6 addresses of the ends that are up to be usable (./settle): the pair is up only when
 * both are. With IPv6 on the pair, also for those of a bridge an end joins: a bridge gets its carrier,
 * and so starts duplicate address detection of its own addresses, only once a port is in it, and while
 * the gateway's address is tentative the host cannot use it (measured: a host ping right after `up`
 * left from another address and was lost).
 */
async function settleEnds(remote: Remote, ends: InterfaceEnd[]): Promise<void> {
  if (!ends.every((end) => end.up)) return;
  for (const end of ends) await settleIpv6(remote, end.name, end.addresses, end.namespace);
  if (!ends.some((end) => end.addresses.some(isIpv6))) return;
  for (const end of ends) if (end.bridge) await settleBridge(remote, end.bridge, end.namespace);
}

async function readEnds(
  remote: Remote,
  a: InterfaceEnd,
  b: InterfaceEnd,
): Promise<[LinkState | undefined, LinkState | undefined]> {
  const [ta, tb] = await readAll(remote, [printLink(at(a.namespace), a.name), printLink(at(b.namespace), b.name)]);
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

/** What state keeps of who owns the pair: adopted or made, and its mark (which state from before marks lacks). */
type Ownership = Pick<VethPairOutputs, "adopted" | "mark">;

function outputs(
  inputs: VethPairInputs,
  remote: Remote,
  a: LinkState,
  b: LinkState,
  own: Ownership,
  known?: Record<string, string>,
): VethPairOutputs {
  return {
    ...inputs,
    a: observed(inputs.a, a),
    b: observed(inputs.b, b),
    ...(inputs.mtu !== undefined ? { mtu: a.mtu } : {}),
    adopted: own.adopted,
    mark: own.mark,
    knownHostKeys: recordHostKeys(remote, known),
  };
}

/**
 * Whether a link found under an end's name is that end of the pair this
 * resource made or adopted: it carries the pair's mark, or the ifindex and MAC
 * recorded (kernel/mark). State from before marks has no mark: its end is
 * known by the recorded ifindex and MAC; a state that recorded neither is
 * taken as ours, as it was before marks.
 */
function ours(found: LinkState, end: VethEndOutput, own: Ownership): boolean {
  if (own.mark === undefined && (end.ifindex === undefined || end.mac === undefined)) return true;
  return isOurLink(found, { mark: own.mark, ifindex: end.ifindex, mac: end.mac });
}

function idOf(inputs: VethPairInputs): string {
  const end = (e: InterfaceEnd) => `${e.namespace ?? ""}/${e.name}`;
  return `veth/${end(inputs.a)}~${end(inputs.b)}@${endpoint(inputs.connection)}`;
}

async function create(inputs: VethPairInputs): Promise<pulumi.dynamic.CreateResult> {
  const remote = await remoteFor(inputs);
  const { a, b } = inputs;
  // Both ends carry the pair's mark: a delete from stale state removes only a pair carrying it.
  // A retained pair carries none: destroy leaves it, and a mark would only refuse a later adopt.
  const mark = markUnlessRetained("veth", randomBytes(4).toString("hex"), inputs.retainOnDelete);
  if (inputs.adopt) {
    const [sa, sb] = await readEnds(remote, a, b);
    if (sa && sb) {
      for (const [end, seen] of [
        [a, sa],
        [b, sb],
      ] as const)
        refuseMarkedLink("veth", end.name, end.namespace, remote.label, seen.ifalias);
      // Adopted, it is ours: marked, so that its delete knows it.
      if (mark)
        await runScript(remote, sequence(...[a, b].map((end) => at(end.namespace).ip(...setMark(end.name, mark)))));
      await configure(remote, [a, b], [sa, sb], inputs.mtu, true);
      const [na, nb] = await readEnds(remote, a, b);
      const own = { adopted: true, mark };
      return { id: idOf(inputs), outs: plain(outputs(inputs, remote, mustExist(na, a), mustExist(nb, b), own)) };
    }
  }
  // Each end is marked, configured and read back by one `ip -batch` in its namespace.
  const configureAndShow = (end: InterfaceEnd) =>
    at(end.namespace).ipBatch(
      [...(mark ? [setMark(end.name, mark)] : []), ...configureChanges(end, undefined, inputs.mtu), showLink(end.name)],
      LINK_READ_OPTIONS,
    );
  const made = creation(
    makePair(a, b),
    [configureAndShow(a), configureAndShow(b)],
    [deleteLink(at(a.namespace), a.name), deleteLink(at(b.namespace), b.name)],
  );
  // A re-created end has a new MAC that its neighbours' caches do not know yet.
  const make = lookingUp({ ...made, steps: [...made.steps, ...announcing([a, b]).map(bestEffort)] }, lookups(a, b));
  let ta: string;
  let tb: string;
  try {
    [, ta, tb] = await runScript(remote, make, {
      what: `veth pair ${JSON.stringify(a.name)}~${JSON.stringify(b.name)}`,
      leftover: `remove it by hand (ip${a.namespace ? ` -n ${a.namespace}` : ""} link delete ${a.name}) or set adopt: true on the VethPair to take it over`,
    });
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
  const sa = mustExist(parseLink(ta, a.name), a);
  const sb = mustExist(parseLink(tb, b.name), b);
  try {
    await settleEnds(remote, [a, b]);
  } catch (e) {
    // Not recorded: the pair goes again, as after any failed create (the first failure is the one to report).
    await runScript(remote, script([bestEffort(deleteLink(at(a.namespace), a.name))])).catch(() => undefined);
    throw e;
  }
  return { id: idOf(inputs), outs: plain(outputs(inputs, remote, sa, sb, { adopted: false, mark })) };
}

function mustExist(state: LinkState | undefined, end: InterfaceEnd): LinkState {
  if (!state) throw new Error(`veth end ${JSON.stringify(end.name)} is not in ${where(end)} after it was set up`);
  return state;
}

async function read(id: string, props: VethPairOutputs): Promise<pulumi.dynamic.ReadResult> {
  const remote = await remoteFor(props);
  const [sa, sb] = await readEnds(remote, props.a, props.b);
  // A pair under our names that is not ours (someone made it after ours went): ours is gone.
  if (!sa || !sb || !ours(sa, props.a, props) || !ours(sb, props.b, props)) return {};
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

/** The MTU `ip link add ... type veth` gives both ends (measured on 6.18). */
const VETH_DEFAULT_MTU = 1500;

async function update(_id: string, olds: VethPairOutputs, news: VethPairInputs): Promise<pulumi.dynamic.UpdateResult> {
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
  // mtu removed: back to what a pair made without it has (the kernel's veth default), not left as it was.
  const pairMtu = news.mtu !== olds.mtu ? (news.mtu ?? VETH_DEFAULT_MTU) : undefined;
  const announceAfter = movesAddresses([olds.a, olds.b], [news.a, news.b]);
  // The kernel removes a gateway route whose gateway leaves the device's connected subnets, even for a
  // moment (the old address goes before the new one comes): the routes over an end whose addresses
  // change are read first and put back after, so that the Routes declared over it stay true.
  const ends = [news.a, news.b];
  const readdressed = ends.filter((end, i) => !sameAddresses([olds.a, olds.b][i].addresses, end.addresses));
  const before = readdressed.length
    ? (
        await readAll(
          remote,
          readdressed.map((e) => printRoutesOver(e.namespace, e.name)),
        )
      ).map(parseRoutesOver)
    : [];
  const restore = readdressed.flatMap((end, i) =>
    before[i].map((r) => at(end.namespace).ip(...readdRoute(r, end.name, end.addresses))),
  );
  // A new MTU makes a named namespace's cached route exceptions stale (path MTUs learned under the old
  // one, and ICMP redirects: a PodNetwork leaving mode vxlan left its pods redirected past their gateway,
  // unreachable for up to 5 minutes, until `ip route flush cache`). The host's own cache is left alone.
  if (pairMtu !== undefined)
    for (const ns of new Set([news.a.namespace, news.b.namespace].filter((n) => n !== undefined)))
      restore.push(at(ns).ip("route", "flush", "cache"), at(ns).ip("-6", "route", "flush", "cache"));
  await configure(
    remote,
    [news.a, news.b],
    [asState(olds.a, olds.mtu), asState(olds.b, olds.mtu)],
    pairMtu,
    announceAfter,
    restore,
  );
  // retainOnDelete turned on takes the mark off both ends (destroy will leave the pair), turned off puts one on.
  let mark = olds.mark;
  if ((olds.retainOnDelete ?? false) !== news.retainOnDelete && !news.retainOnDelete)
    for (const [end, found] of zip(ends, await readEnds(remote, news.a, news.b)))
      refuseMarkedLink("veth", end.name, end.namespace, remote.label, found?.ifalias, "retainOnDelete");
  if ((olds.retainOnDelete ?? false) !== news.retainOnDelete) {
    mark = markUnlessRetained("veth", randomBytes(4).toString("hex"), news.retainOnDelete);
    const change = (end: InterfaceEnd) => (mark ? setMark(end.name, mark) : clearMark(end.name));
    await runScript(remote, sequence(...ends.map((end) => at(end.namespace).ip(...change(end)))));
  }
  const [sa, sb] = await readEnds(remote, news.a, news.b);
  if (readdressed.length) await tellRoutesLost(remote, readdressed, before);
  const own = { adopted: olds.adopted, mark };
  return {
    outs: plain(outputs(news, remote, mustExist(sa, news.a), mustExist(sb, news.b), own, olds.knownHostKeys)),
  };
}

/** Names the routes over re-addressed ends that could not be put back (their gateway is out of reach now). */
async function tellRoutesLost(remote: Remote, ends: InterfaceEnd[], before: RouteOver[][]): Promise<void> {
  const after = (
    await readAll(
      remote,
      ends.map((e) => printRoutesOver(e.namespace, e.name)),
    )
  ).map(parseRoutesOver);
  const lost = ends.flatMap((end, i) =>
    missingRoutes(before[i], after[i]).map(
      (r) => `${describeRoute(r)} over ${JSON.stringify(end.name)} in ${where(end)}`,
    ),
  );
  if (lost.length > 0)
    progress(
      `veth pair on ${remote.label}: with the new addresses the kernel removed these routes, whose gateway is no longer in a connected subnet: ` +
        `${lost.join("; ")}. A Route still in the program for one of them is gone from the host while its state says it exists: ` +
        "change its via (or the addresses), or run `pulumi refresh`, then `pulumi up`.",
    );
}

/**
 * Deletes the ends that are ours (see `ours`); an end under our name that is
 * not (ours was deleted behind the program's back, someone made another) is
 * left with its routes, and the delete says so.
 */
async function remove(_id: string, props: VethPairOutputs): Promise<void> {
  const remote = await remoteFor(props);
  const { a, b } = props;
  const found = await readEnds(remote, a, b);
  const mine: VethEndOutput[] = [];
  for (const [i, end] of [a, b].entries()) {
    const link = found[i];
    if (!link) continue;
    if (ours(link, end, props)) {
      mine.push(end);
      continue;
    }
    const why =
      `ifindex ${link.ifindex}, MAC ${link.mac}, alias ${JSON.stringify(link.ifalias ?? "")}; ` +
      `ours was ifindex ${end.ifindex}, MAC ${end.mac}${props.mark ? `, alias ${JSON.stringify(props.mark)}` : ""}`;
    progress(notOursWarning(`veth end ${JSON.stringify(end.name)} in ${where(end)}`, remote.label, why));
  }
  if (mine.length === 0) return;
  // Deleting one end deletes its peer; the second line covers an end whose peer's namespace was already gone.
  // The routes over the ends, read first, go with them: a Route still declared for one is told.
  const printed = await runScript(
    remote,
    sequence(
      ...mine.map((end) => printRoutesOver(end.namespace, end.name)),
      ...mine.map((end) => deleteLink(at(end.namespace), end.name)),
    ),
  );
  // An address of the ends another declared end now holds: that one announces itself, or neighbours would
  // keep the deleted end's MAC for it (~20 s). Best effort: it may not exist (yet).
  const same = (x: { name: string; namespace?: string }, y: { name: string; namespace?: string }) =>
    x.name === y.name && (x.namespace ?? undefined) === (y.namespace ?? undefined);
  await announceNewHolders(
    remote,
    props.connection,
    mine.flatMap((end) => end.addresses ?? []),
    (end) => same(end, a) || same(end, b),
  );
  const gone = mine.flatMap((end, i) => parseRoutesOver(printed[i]).map((r) => `${describeRoute(r)} in ${where(end)}`));
  if (gone.length > 0)
    progress(
      `veth pair ${JSON.stringify(a.name)}~${JSON.stringify(b.name)} on ${remote.label}: the kernel removed the routes over it with it: ` +
        `${gone.join("; ")}. A Route still in the program for one of them is gone from the host while its state says it exists: ` +
        "give the Route replaceWith: [this VethPair] so that a replace re-creates it in the same up, or run `pulumi refresh`, then `pulumi up`.",
    );
}

// Each failure says what to do for its operation, once (opErrors.ts); the shim calls these by name.
const { create: c, read: r, update: u, remove: d } = advised({ create, read, update, remove });

export { c as create, d as remove, r as read, u as update };
export const provider: ProviderOf<typeof VETH_PAIR> = { check, diff, create: c, read: r, update: u, delete: d };

/** Pairs of the items at the same index. */
function zip<A, B>(a: A[], b: B[]): Array<[A, B]> {
  return a.map((x, i) => [x, b[i]]);
}
