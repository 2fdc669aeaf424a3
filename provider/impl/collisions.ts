import { addressCollisions, forwardCollisions } from "../kernel/collisions";
import { saveScript } from "../kernel/iptables";
import { at } from "../kernel/namespace";
import type { Remote } from "../transport";
import { readAll } from "./executor";

/**
 * The checks that run at create, before anything is made: they read the host
 * and refuse, naming both sides, so a refused create changes nothing.
 */

/** Refuses addresses on `device` that another interface has or whose prefix overlaps another's. */
export async function refuseAddressCollisions(
  remote: Remote,
  what: string,
  device: string,
  addresses: string[],
  namespace?: string,
): Promise<void> {
  if (addresses.length === 0) return;
  const ns = at(namespace);
  const [addrText, routeText] = await readAll(remote, [
    ns.ifExists(ns.ip("-j", "addr", "show")),
    ns.ifExists(ns.ip("-j", "route", "show")),
  ]);
  const problems = addressCollisions(device, addresses, addrText, routeText);
  if (problems.length)
    throw new Error(
      `${what}: ${problems.join("; ")} (on ${remote.label}${namespace ? `, namespace ${namespace}` : ""}). ` +
        "Nothing was changed. Choose addresses the host does not use, or remove the other network first.",
    );
}

/** Refuses host ports (`protocol/port` keys) that a DNAT rule on the host already takes. */
export async function refuseForwardCollisions(
  remote: Remote,
  what: string,
  forwards: Array<{ protocol: string; hostPort: number; inInterface?: string; to?: string }>,
  namespace?: string,
  ownNetworks: string[] = [],
): Promise<void> {
  if (forwards.length === 0) return;
  // The whole dump: it lists only tables that exist, where `-t nat` could bring one into existence.
  const [natText] = await readAll(remote, [saveScript(namespace)]);
  const problems = forwards.flatMap((f) =>
    forwardCollisions(f.protocol, f.hostPort, f.inInterface, natText, ownNetworks).map(
      (rule) =>
        `${f.protocol} port ${f.hostPort}${f.to ? ` (to ${f.to})` : ""} is already forwarded by the host's rule ${rule}`,
    ),
  );
  if (problems.length)
    throw new Error(
      `${what}: ${problems.join("; ")} (on ${remote.label}). The first matching rule wins, so a second forward ` +
        "would never match. Nothing was changed. Choose another hostPort, or remove the other forward first.",
    );
}
