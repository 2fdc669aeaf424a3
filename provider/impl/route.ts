import type * as pulumi from "@pulumi/pulumi";
import { endpoint } from "../connection";
import { type Lookup, lookup } from "../kernel/explain";
import { ROUTE_PROTOCOL } from "../kernel/mark";
import { at } from "../kernel/namespace";
import {
  addAndPrintRoute,
  addRoute,
  deleteRoute,
  isIpv6Route,
  kernelMetric,
  parseNotOurs,
  parseRoute,
  parseRoutes,
  printRoute,
  type RouteSpec,
  type RouteState,
  replaceRoute,
  repointRoute,
} from "../kernel/route";
import { allOrNothing, creation, lookingUp, sequence } from "../kernel/script";
import { gateway, ROUTE, routeDestination } from "../resourceSchemas";
import { CommandError, type Remote } from "../transport";
import { hopPath } from "../transport/knownKeys";
import { isIpv6, isUnknown, show } from "../validate";
import { fromSchema, plain, recordHostKeys, remoteFor } from "./common";
import { readAll, runScript } from "./executor";
import { advised } from "./opErrors";
import type { InputsOf, OutputsOf, ProviderOf } from "./types";

export type RouteInputs = InputsOf<typeof ROUTE>;
export type RouteOutputs = OutputsOf<typeof ROUTE>;

export const { check, diff } = fromSchema(ROUTE, {
  alsoCheck: (checker, news) => {
    if (news.via === undefined && news.device === undefined)
      checker.fail("via", `a route needs a gateway (via) or a device; got neither for ${show(news.destination)}`);
    const known = (v: unknown): v is string => typeof v === "string" && !isUnknown(v);
    // Only between two valid values: an invalid destination ("DEFAULT6") is its own field's error, of no family.
    const { destination, via } = news;
    if (
      known(destination) &&
      !routeDestination(destination) &&
      known(via) &&
      !gateway(via) &&
      isIpv6Route(destination) !== isIpv6(via)
    )
      checker.fail(
        "via",
        `${show(via)} is an ${isIpv6(via) ? "IPv6" : "IPv4"} gateway but destination ${show(destination)} is ` +
          `${isIpv6Route(destination) ? "IPv6" : "IPv4"}: give a gateway of the destination's family` +
          `${destination === "default" ? ' (the IPv6 default route is "default6")' : ""}`,
      );
    if (known(news.via) && isIpv6(news.via) && news.device === undefined && news.via.startsWith("fe80:"))
      checker.fail("device", `via ${show(news.via)} is a link-local gateway: give the device it is on`);
  },
  deleteBeforeReplace: true,
});

async function readRoute(remote: Remote, spec: RouteSpec): Promise<RouteState | undefined> {
  const [text] = await readAll(remote, [printRoute(spec)]);
  return parseRoute(text, spec);
}

function outputs(
  inputs: RouteInputs,
  remote: Remote,
  state: RouteState,
  protocol: number,
  known?: Record<string, string>,
): RouteOutputs {
  return {
    ...inputs,
    ...(inputs.via !== undefined ? { via: state.via } : {}),
    ...(inputs.device !== undefined ? { device: state.device } : {}),
    observedDevice: state.device,
    protocol,
    knownHostKeys: recordHostKeys(remote, known),
  };
}

/** The route as this package makes it: carrying its owner mark (kernel/mark). */
const marked = (i: RouteInputs): RouteSpec & { protocol: number } => ({ ...i, protocol: ROUTE_PROTOCOL });

/** What a route's commands look up on the host, to tell their failures in its fields' terms. */
const lookups = (i: RouteInputs): Lookup[] => [
  ...lookup("namespace", i.namespace, "namespace"),
  ...lookup("via", i.via, "gateway", i.namespace),
  ...lookup("device", i.device, "interface", i.namespace),
];

const idOf = (i: RouteInputs) =>
  `route/${i.namespace ?? ""}/${i.destination}/${i.metric ?? 0}@${endpoint(i.connection)}`;
const where = (i: RouteInputs) => (i.namespace ? `namespace ${JSON.stringify(i.namespace)}` : "the host namespace");

/**
 * Routes made in this engine operation (one provider host process serves one),
 * by their kernel identity: host, namespace, destination, metric. The main
 * table holds one route per identity, so when a Route is replaced create-first
 * (its VethPair replaced under it, `replaceWith`), the new route exists only
 * because the old one went with its device, and it is exactly what the old
 * resource's delete would remove. That delete leaves it to its successor.
 * On a move to another host the identities differ, and the old one goes.
 * A host is its hop path (transport/knownKeys), as for its host keys: the
 * same address behind two jump hosts may be two machines. Not the user: two
 * logins to one machine share its route table, and an old Route's delete
 * would remove the route its replacement just made.
 */
const madeThisOperation = new Set<string>();

export const identityOf = (r: Pick<RouteInputs, "connection" | "namespace" | "destination" | "metric">) =>
  JSON.stringify([hopPath(r.connection), r.namespace ?? null, r.destination, r.metric ?? 0]);

async function create(inputs: RouteInputs): Promise<pulumi.dynamic.CreateResult> {
  const remote = await remoteFor(inputs);
  const ours = marked(inputs);
  let shown: string;
  try {
    const add = lookingUp(creation(addAndPrintRoute(ours), [], [deleteRoute(ours)]), lookups(inputs));
    [shown] = await runScript(remote, add, {
      what: `the route to ${inputs.destination}`,
      // A Route cannot adopt: the next up would find the route there and stop.
      leftover: `remove it by hand (ip${inputs.namespace ? ` -n ${inputs.namespace}` : ""}${isIpv6Route(inputs.destination) ? " -6" : ""} route del ${inputs.destination === "default6" ? "default" : inputs.destination} metric ${kernelMetric(inputs)} proto ${ROUTE_PROTOCOL}) before the next up`,
    });
  } catch (e) {
    // Any route there (not only ours) refuses the add: looked for without the mark.
    if (e instanceof CommandError && (await readRoute(remote, inputs)))
      throw new Error(
        `a route to ${inputs.destination} with metric ${kernelMetric(inputs)} already exists in ${where(inputs)} on ${remote.label}; nothing was changed`,
      );
    throw e;
  }
  const state = parseRoute(shown, ours);
  if (!state) throw new Error(`the route to ${inputs.destination} is not in ${where(inputs)} after it was added`);
  madeThisOperation.add(identityOf(inputs));
  return { id: idOf(inputs), outs: plain(outputs(inputs, remote, state, ROUTE_PROTOCOL)) };
}

/**
 * Reads only a route carrying the mark recorded at create: one under our
 * destination and metric without it (ours was deleted behind the program's
 * back, someone added theirs) reads as ours gone. A route from before marks
 * (no `protocol` in state) is read as before, by destination and metric:
 * there is nothing to tell it from someone else's; its next via or device
 * change (`ip route replace ... proto N`) marks it.
 */
async function read(id: string, props: RouteOutputs): Promise<pulumi.dynamic.ReadResult> {
  const remote = await remoteFor(props);
  const state = await readRoute(remote, props);
  if (!state) return {};
  return { id, props: plain(outputs(props, remote, state, props.protocol, props.knownHostKeys)) };
}

async function update(_id: string, olds: RouteOutputs, news: RouteInputs): Promise<pulumi.dynamic.UpdateResult> {
  const remote = await remoteFor({ connection: news.connection, knownHostKeys: olds.knownHostKeys });
  const ours = marked(news);
  // A route from before marks stays as it was made until it is re-made here (then with the mark).
  let protocol = olds.protocol;
  if ((olds.metric ?? 0) !== (news.metric ?? 0)) {
    // The metric is part of the route's identity: add the new route, then remove the old one.
    const ns = at(news.namespace);
    const add = allOrNothing([ns.ip(...addRoute(ours)), deleteRoute(olds)], [deleteRoute(ours)]);
    await runScript(remote, lookingUp(add, lookups(news)));
    madeThisOperation.add(identityOf(news));
    protocol = ROUTE_PROTOCOL;
  } else if (olds.via !== news.via || olds.device !== news.device) {
    if (olds.protocol === undefined) {
      // A route from before marks: nothing tells it from someone else's, so it is re-made as before (now marked).
      await runScript(remote, lookingUp(sequence(at(news.namespace).ip(...replaceRoute(ours))), lookups(news)));
    } else {
      // Decided on the host: ours may be gone, and a route someone made since under our destination and metric is theirs.
      const [printed] = await runScript(remote, lookingUp(sequence(repointRoute(ours)), lookups(news)));
      const there = parseRoutes(printed, "ip route show");
      const theirs = parseNotOurs(printed, ROUTE_PROTOCOL)[0];
      if (theirs) {
        // Ours gone, refresh drops this Route from the state; ours still there beside theirs, only removing theirs helps.
        const oursGone = there.length === parseNotOurs(printed, ROUTE_PROTOCOL).length;
        throw new Error(
          `the route to ${news.destination} metric ${news.metric ?? 0} in ${where(news)} on ${remote.label} is not ours ` +
            `(proto ${theirs.protocol ?? "boot"}, ${theirs.gateway ? `via ${theirs.gateway}` : `dev ${theirs.dev}`}): ` +
            `nothing was changed; remove it${oursGone ? " or run refresh (ours is gone: refresh drops this Route from the state)" : " (ours is there too, under the same destination and metric)"}`,
        );
      }
    }
    protocol = ROUTE_PROTOCOL;
  }
  const state = await readRoute(remote, { ...news, protocol });
  if (!state) throw new Error(`the route to ${news.destination} is not in ${where(news)} after the update`);
  return { outs: plain(outputs(news, remote, state, protocol, olds.knownHostKeys)) };
}

/**
 * Deletes our route only (kernel/route deleteRoute): another one with the same
 * destination and metric stays, and so does one that a replacement made in
 * this operation (`madeThisOperation`).
 */
async function remove(_id: string, props: RouteOutputs): Promise<void> {
  if (madeThisOperation.has(identityOf(props))) return;
  const remote = await remoteFor(props);
  const [left] = await runScript(remote, sequence(deleteRoute(props)));
  if (parseRoute(left, props))
    throw new Error(
      `the route to ${props.destination} is still in ${where(props)} on ${remote.label} after ip route del`,
    );
}

// Each failure says what to do for its operation, once (opErrors.ts); the shim calls these by name.
const { create: c, read: r, update: u, remove: d } = advised({ create, read, update, remove });

export { c as create, d as remove, r as read, u as update };
export const provider: ProviderOf<typeof ROUTE> = { check, diff, create: c, read: r, update: u, delete: d };
