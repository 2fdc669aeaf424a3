import { type Connection, endpoint } from "../connection";

/**
 * The veths the program declares in this engine operation, as the VethPairs'
 * checks saw them. The provider host process serves one operation, and the
 * engine checks every resource the program declares before it deletes the
 * ones it no longer does: so when a Namespace's delete takes veths with it,
 * this says whether the program still wants one of them (a VethPair that
 * names the namespace by a plain string, so the engine does not know it needs
 * the namespace). On `pulumi destroy` nothing is checked, and a VethPair
 * removed from the program with its namespace is not checked either: the veth
 * going with the namespace is then what the user asked for, and not worth a word.
 */
const declared = new Set<string>();

const keyOf = (host: string, namespace: string | undefined, name: string) =>
  JSON.stringify([host, namespace ?? null, name]);

function hostOf(connection: unknown): string | undefined {
  try {
    return endpoint(connection as Connection);
  } catch {
    // Not a connection yet (check reports it): nothing to note.
    return undefined;
  }
}

/** Notes the ends of a VethPair the program declares on the host of `connection`. */
export function declareVeths(connection: unknown, ends: Array<{ name: string; namespace?: string }>): void {
  const host = hostOf(connection);
  if (host === undefined) return;
  for (const end of ends) declared.add(keyOf(host, end.namespace, end.name));
}

/** Whether a VethPair of the program declares veth `name` in `namespace` on the host of `connection`. */
export function stillDeclared(connection: Connection, namespace: string, name: string): boolean {
  const host = hostOf(connection);
  return host !== undefined && declared.has(keyOf(host, namespace, name));
}
