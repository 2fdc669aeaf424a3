import type * as pulumi from "@pulumi/pulumi";
import { endpoint } from "../connection";
import {
  couldNotCheck,
  type Observation,
  type ProbeResult,
  type ProbeSpec,
  parseProbe,
  probeCommand,
} from "../kernel/probe";
import { sequence } from "../kernel/script";
import { PROBE } from "../resourceSchemas";
import type { Remote } from "../transport";
import { progress } from "../transport/progress";
import { fromSchema, plain, recordHostKeys, remoteFor } from "./common";
import { runScript } from "./executor";
import { advised } from "./opErrors";
import type { InputsOf, OutputsOf, ProviderOf } from "./types";

/**
 * A reachability check kept in the stack: create and update run it and fail
 * the `up` when it does not see what `expect` says, or could not run at all;
 * refresh runs it again and records what it saw (or that it could not check),
 * says a change of reachability in a line of its own (the engine's "updated"
 * alone does not say what changed), and the next up checks again (drifted).
 * Nothing is made on the host: delete does nothing.
 */

export type ProbeInputs = InputsOf<typeof PROBE>;
export type ProbeOutputs = OutputsOf<typeof PROBE>;

const expectsReachable = (i: { expect?: string }) => (i.expect ?? "reachable") === "reachable";

export const { check, diff } = fromSchema(PROBE, {
  // Refresh saw something else than expected, or could not check: the next up runs the check again (and fails if it still does).
  drifted: (olds) =>
    olds.couldNotCheck !== undefined ||
    (typeof olds.reachable === "boolean" && olds.reachable !== expectsReachable(olds)),
});

const source = (i: ProbeInputs, remote: Remote) =>
  i.namespace ? `namespace ${JSON.stringify(i.namespace)} on ${remote.label}` : `the host ${remote.label}`;
const targetOf = (i: ProbeInputs) =>
  i.port === undefined ? `${i.target} (ICMP echo)` : `${i.target} port ${i.port} (TCP)`;
const reachability = (reachable: boolean) => (reachable ? "reachable" : "unreachable");

async function runCheck(remote: Remote, i: ProbeInputs): Promise<ProbeResult> {
  const spec: ProbeSpec = { namespace: i.namespace, target: i.target, port: i.port, timeoutMs: i.timeoutMs };
  const [text] = await runScript(remote, sequence(probeCommand(spec)));
  return parseProbe(text, spec);
}

/** Runs the check; throws when it could not run, or did not see what `expect` says. */
async function expectOutcome(remote: Remote, i: ProbeInputs): Promise<Observation> {
  const result = await runCheck(remote, i);
  if (couldNotCheck(result))
    throw new Error(
      `probe from ${source(i, remote)} to ${targetOf(i)}: could not check, so neither reachable nor unreachable ` +
        `was seen: ${result.couldNotCheck}. Fix: ${result.fix}`,
    );
  if (result.reachable !== expectsReachable(i)) {
    const wanted = reachability(expectsReachable(i));
    const fix = expectsReachable(i)
      ? 'check the path (links up, addresses, routes, firewall rules) or set expect: "unreachable" if that is intended'
      : 'something answers that should not: check the isolation (routes, firewall rules) or set expect: "reachable"';
    throw new Error(
      `probe from ${source(i, remote)} to ${targetOf(i)}: expected ${wanted}, but saw: ${result.seen}. Fix: ${fix}`,
    );
  }
  return result;
}

function outputs(i: ProbeInputs, remote: Remote, r: Observation, known?: Record<string, string>): ProbeOutputs {
  return {
    ...i,
    reachable: r.reachable,
    // Set explicitly: `i` may be the stored outputs, whose round trip is from when the target still answered.
    rttMs: r.reachable ? r.rttMs : undefined,
    seen: r.seen,
    couldNotCheck: undefined,
    knownHostKeys: recordHostKeys(remote, known),
  } as ProbeOutputs;
}

const idOf = (i: ProbeInputs) =>
  `probe/${i.namespace ?? ""}/${i.target}/${i.port === undefined ? "icmp" : `tcp-${i.port}`}@${endpoint(i.connection)}`;

/** The probe as a refresh line names it: "probe red -> 10.0.0.2 (ICMP echo)". */
const named = (i: ProbeInputs) => `probe ${i.namespace ?? "(host)"} -> ${targetOf(i)}`;

async function create(inputs: ProbeInputs): Promise<pulumi.dynamic.CreateResult> {
  const remote = await remoteFor(inputs);
  const result = await expectOutcome(remote, inputs);
  return { id: idOf(inputs), outs: plain(outputs(inputs, remote, result)) };
}

async function read(id: string, props: ProbeOutputs): Promise<pulumi.dynamic.ReadResult> {
  const remote = await remoteFor(props);
  const result = await runCheck(remote, props);
  if (couldNotCheck(result)) {
    // Nothing was seen: what the state knew stays, marked, and the next up checks again.
    progress(`${named(props)}: could not check at this refresh: ${result.couldNotCheck}. Fix: ${result.fix}`);
    const outs = { ...props, couldNotCheck: `${result.couldNotCheck}. Fix: ${result.fix}` };
    return { id, props: plain(outs) };
  }
  const changed = result.reachable !== props.reachable;
  if (changed)
    progress(
      `${named(props)}: was ${reachability(!result.reachable)}, now ${reachability(result.reachable)} (${result.seen})`,
    );
  // The round trip varies at every check: kept from the last one while reachability holds, so a refresh
  // reports a change only when what the probe is about changed.
  const rttMs = !changed && props.rttMs !== undefined ? props.rttMs : result.rttMs;
  const seen = changed ? result.seen : props.seen;
  const kept = { ...result, rttMs, seen };
  return { id, props: plain(outputs(props, remote, kept, props.knownHostKeys)) };
}

async function update(_id: string, olds: ProbeOutputs, news: ProbeInputs): Promise<pulumi.dynamic.UpdateResult> {
  const remote = await remoteFor({ connection: news.connection, knownHostKeys: olds.knownHostKeys });
  const result = await expectOutcome(remote, news);
  return { outs: plain(outputs(news, remote, result, olds.knownHostKeys)) };
}

/** A probe leaves nothing on the host: deleting it only drops it from the stack (no connection). */
async function remove(_id: string, _props: ProbeOutputs): Promise<void> {}

// Each failure says what to do for its operation, once (opErrors.ts); the shim calls these by name.
const { create: c, read: r, update: u, remove: d } = advised({ create, read, update, remove });

export { c as create, d as remove, r as read, u as update };
export const provider: ProviderOf<typeof PROBE> = { check, diff, create: c, read: r, update: u, delete: d };
