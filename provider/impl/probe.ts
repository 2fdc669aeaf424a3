import type * as pulumi from "@pulumi/pulumi";
import { endpoint } from "../connection";
import { type ProbeResult, type ProbeSpec, parseProbe, probeCommand } from "../kernel/probe";
import { sequence } from "../kernel/script";
import { PROBE } from "../resourceSchemas";
import type { Remote } from "../transport";
import { fromSchema, plain, recordHostKeys, remoteFor } from "./common";
import { runScript } from "./executor";
import type { InputsOf, OutputsOf, ProviderOf } from "./types";

/**
 * A reachability check kept in the stack: create and update run it and fail
 * the `up` when it does not see what `expect` says; refresh runs it again and
 * records what it saw, so the engine reports the change, and the next `up`
 * checks again (drifted). Nothing is made on the host: delete does nothing.
 */

export type ProbeInputs = InputsOf<typeof PROBE>;
export type ProbeOutputs = OutputsOf<typeof PROBE>;

const expectsReachable = (i: { expect?: string }) => (i.expect ?? "reachable") === "reachable";

export const { check, diff } = fromSchema(PROBE, {
  // Refresh saw something else than expected: the next up runs the check again (and fails if it still does).
  drifted: (olds) => typeof olds.reachable === "boolean" && olds.reachable !== expectsReachable(olds),
});

const source = (i: ProbeInputs, remote: Remote) =>
  i.namespace ? `namespace ${JSON.stringify(i.namespace)} on ${remote.label}` : `the host ${remote.label}`;
const targetOf = (i: ProbeInputs) =>
  i.port === undefined ? `${i.target} (ICMP echo)` : `${i.target} port ${i.port} (TCP)`;

async function runCheck(remote: Remote, i: ProbeInputs): Promise<ProbeResult> {
  const spec: ProbeSpec = { namespace: i.namespace, target: i.target, port: i.port, timeoutMs: i.timeoutMs };
  const [text] = await runScript(remote, sequence(probeCommand(spec)));
  return parseProbe(text, spec);
}

/** Runs the check; throws when it did not see what `expect` says. */
async function expectOutcome(remote: Remote, i: ProbeInputs): Promise<ProbeResult> {
  const result = await runCheck(remote, i);
  if (result.reachable !== expectsReachable(i)) {
    const wanted = expectsReachable(i) ? "reachable" : "unreachable";
    const fix = expectsReachable(i)
      ? 'check the path (links up, addresses, routes, firewall rules) or set expect: "unreachable" if that is intended'
      : 'something answers that should not: check the isolation (routes, firewall rules) or set expect: "reachable"';
    throw new Error(
      `probe from ${source(i, remote)} to ${targetOf(i)}: expected ${wanted}, but saw: ${result.seen}. Fix: ${fix}`,
    );
  }
  return result;
}

function outputs(i: ProbeInputs, remote: Remote, r: ProbeResult, known?: Record<string, string>): ProbeOutputs {
  return {
    ...i,
    reachable: r.reachable,
    ...(r.rttMs !== undefined ? { rttMs: r.rttMs } : {}),
    seen: r.seen,
    knownHostKeys: recordHostKeys(remote, known),
  };
}

const idOf = (i: ProbeInputs) =>
  `probe/${i.namespace ?? ""}/${i.target}/${i.port === undefined ? "icmp" : `tcp-${i.port}`}@${endpoint(i.connection)}`;

export async function create(inputs: ProbeInputs): Promise<pulumi.dynamic.CreateResult> {
  const remote = await remoteFor(inputs);
  const result = await expectOutcome(remote, inputs);
  return { id: idOf(inputs), outs: plain(outputs(inputs, remote, result)) };
}

export async function read(id: string, props: ProbeOutputs): Promise<pulumi.dynamic.ReadResult> {
  const remote = await remoteFor(props);
  const result = await runCheck(remote, props);
  // The round trip varies at every check: kept from the last one while reachability holds, so a refresh
  // reports a change only when what the probe is about changed.
  const rttMs = result.reachable === props.reachable && props.rttMs !== undefined ? props.rttMs : result.rttMs;
  const seen = result.reachable === props.reachable ? props.seen : result.seen;
  const kept = { ...result, rttMs, seen };
  return { id, props: plain(outputs(props, remote, kept, props.knownHostKeys)) };
}

export async function update(_id: string, olds: ProbeOutputs, news: ProbeInputs): Promise<pulumi.dynamic.UpdateResult> {
  const remote = await remoteFor({ connection: news.connection, knownHostKeys: olds.knownHostKeys });
  const result = await expectOutcome(remote, news);
  return { outs: plain(outputs(news, remote, result, olds.knownHostKeys)) };
}

/** A probe leaves nothing on the host: deleting it only drops it from the stack (no connection). */
export async function remove(_id: string, _props: ProbeOutputs): Promise<void> {}

export const provider: ProviderOf<typeof PROBE> = { check, diff, create, read, update, delete: remove };
