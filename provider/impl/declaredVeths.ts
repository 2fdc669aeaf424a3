import type { Connection } from "../connection";
import { announce } from "../kernel/link";
import { at } from "../kernel/namespace";
import { bestEffort, script } from "../kernel/script";
import type { Remote } from "../transport";
import { hopPath } from "../transport/knownKeys";
import { progress } from "../transport/progress";
import { runScript } from "./executor";

/**
 * The veths the program declares in this engine operation, as the VethPairs'
 * checks saw them, and the veths Namespace deletes of this operation took
 * along. The provider host process serves one operation. When a Namespace's
 * delete takes veths with it, this tells the user of those a VethPair of the
 * program still wants (one that names the namespace by a plain string, so the
 * engine does not know it needs the namespace), whichever comes first:
 *
 * - the VethPair's check, then the delete: the engine checks every resource
 *   the program declares before it deletes the ones it no longer does (the
 *   namespace removed from the program); the delete tells;
 * - the delete, then the VethPair's check: a Namespace replaced delete-first
 *   is deleted as soon as the engine has checked it, before it checks the
 *   resources the program registers after it; the check tells.
 *
 * On `pulumi destroy` nothing is checked, and a VethPair removed from the
 * program with its namespace is not checked either: the veth going with the
 * namespace is then what the user asked for, and not worth a word.
 */
const declared = new Set<string>();

/** The veths deleted with their namespace and not declared (yet): what the check that declares one tells. */
const taken = new Map<string, () => string | undefined>();

const keyOf = (host: string, namespace: string | undefined, name: string) =>
  JSON.stringify([host, namespace ?? null, name]);

/** The host as the chain of hops that reaches it: one address behind two jump hosts is two hosts. */
function hostOf(connection: unknown): string | undefined {
  try {
    return hopPath(connection as Connection);
  } catch {
    // Not a connection yet (check reports it): nothing to note.
    return undefined;
  }
}

/** Notes the ends of a VethPair the program declares on the host of `connection`; tells of one already taken along. */
export function declareVeths(connection: unknown, ends: Array<{ name: string; namespace?: string }>): void {
  const host = hostOf(connection);
  if (host === undefined) return;
  for (const end of ends) {
    const key = keyOf(host, end.namespace, end.name);
    declared.add(key);
    const tell = taken.get(key);
    if (!tell) continue;
    taken.delete(key);
    const told = tell();
    if (told) progress(told);
  }
}

/**
 * Called by a Namespace delete with the veths it took along: tells now of
 * those a VethPair already declares (`tell` gets which veths to name, and
 * returns undefined for none), and of any other when a VethPair's check
 * declares it later in this operation.
 */
export function tookAlong(
  connection: Connection,
  namespace: string,
  veths: string[],
  tell: (wanted: (veth: string) => boolean) => string | undefined,
): void {
  const host = hostOf(connection);
  if (host === undefined) return;
  const wanted = (veth: string) => declared.has(keyOf(host, namespace, veth));
  const told = tell(wanted);
  if (told) progress(told);
  for (const veth of veths) if (!wanted(veth)) taken.set(keyOf(host, namespace, veth), () => tell((v) => v === veth));
}

/**
 * The addresses (without prefix) each end the program declares holds, by host:
 * for the delete of a VethPair whose address another declared end now holds
 * (a namespace renamed in an IsolatedNetwork: the new one is made, with the
 * same address, before the old one goes). Neighbours then still hold the
 * deleted end's MAC for the address, for ~20 s; the VethPair's delete, or the
 * Namespace's that takes the cable along, has the new holder announce itself.
 */
const holders = new Map<string, Array<{ namespace?: string; name: string; addresses: string[] }>>();

export function declareAddresses(
  connection: unknown,
  ends: Array<{ name: string; namespace?: string; addresses?: unknown }>,
): void {
  const host = hostOf(connection);
  if (host === undefined) return;
  const list = holders.get(host) ?? [];
  holders.set(host, list);
  for (const end of ends) {
    const addresses = (Array.isArray(end.addresses) ? end.addresses : [])
      .filter((a): a is string => typeof a === "string")
      .map((a) => a.split("/")[0]);
    if (addresses.length > 0) list.push({ namespace: end.namespace, name: end.name, addresses });
  }
}

/**
 * Has each declared end on the host of `connection` that holds one of
 * `addresses` (the addresses of ends just deleted), other than those `gone`
 * names, announce itself (kernel/link announce). Best effort: such an end may
 * not exist (yet).
 */
export async function announceNewHolders(
  remote: Remote,
  connection: unknown,
  addresses: string[],
  gone: (end: { name: string; namespace?: string }) => boolean,
): Promise<void> {
  const host = hostOf(connection);
  if (host === undefined) return;
  const wanted = new Set(addresses.map((a) => a.split("/")[0]));
  const takers = (holders.get(host) ?? []).filter((h) => h.addresses.some((a) => wanted.has(a)) && !gone(h));
  if (takers.length === 0) return;
  await runScript(remote, script(takers.map((t) => bestEffort(announce(at(t.namespace), t.name))))).catch(
    () => undefined,
  );
}
