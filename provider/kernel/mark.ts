import type { Namespace } from "./namespace";
import type { IpArgs } from "./script";

/**
 * The owner mark: what this package writes on what it makes (or adopts), so
 * that a delete from stale state removes only what is provably its own. A link
 * carries it as its alias (`ip link set dev X alias ...`, `ifalias` in
 * `ip -j link`); a namespace, which has no alias, on its `lo`. The id is
 * random per resource and kept in its state.
 */
const MARK_PREFIX = "pulumi-netns:";

export function markOf(kind: string, id: string): string {
  if (!/^[a-z]+$/.test(kind) || !/^[0-9a-f]+$/.test(id)) throw new Error(`not a mark: ${kind}/${id}`);
  return `${MARK_PREFIX}${kind}/${id}`;
}

/** The id of a link's `kind` mark (its alias), if it carries one. */
export function markIdOf(kind: string, ifalias: string | undefined): string | undefined {
  const prefix = `${MARK_PREFIX}${kind}/`;
  const id = ifalias?.startsWith(prefix) ? ifalias.slice(prefix.length) : undefined;
  return id !== undefined && /^[0-9a-f]+$/.test(id) ? id : undefined;
}

/**
 * Refuses to adopt an object that already carries an owner mark: another
 * resource (of this stack or another) manages it, and two owners would each
 * delete it, or one would take the other's rules for orphans. `what` names the
 * object, `clear` is the command that removes the mark (for an owner whose
 * stack is gone).
 */
export function refuseMarkedAdoption(
  what: string,
  host: string,
  alias: string | undefined,
  clear: string,
  taking: "adopt" | "retainOnDelete" = "adopt",
): void {
  if (!alias?.startsWith(MARK_PREFIX)) return;
  const why =
    taking === "adopt"
      ? "adopt takes only what no resource manages"
      : // A retained object carries no mark; one carrying a mark was adopted meanwhile by another resource.
        "retainOnDelete turned off would make this resource its owner again beside that one (it was adopted while retained)";
  throw new Error(
    `${taking}: ${what} on ${host} already belongs to another pulumi-netns resource (its mark ${JSON.stringify(alias)}, ` +
      `maybe another stack's); nothing was changed. ${why}. If that resource's ` +
      `stack is gone (removed without destroy), clear the mark first: ${clear}`,
  );
}

/** refuseMarkedAdoption for link `name` (a bridge, vxlan or veth end) in `namespace` (absent: the host's own). */
export function refuseMarkedLink(
  what: string,
  name: string,
  namespace: string | undefined,
  host: string,
  alias?: string,
  taking: "adopt" | "retainOnDelete" = "adopt",
) {
  const ip = `ip${namespace ? ` -n ${namespace}` : ""}`;
  refuseMarkedAdoption(`${what} ${name}`, host, alias, `${ip} link set dev ${name} alias ""`, taking);
}

/** The change that writes `mark` as the alias of link `dev`. */
export const setMark = (dev: string, mark: string): IpArgs => ["link", "set", "dev", dev, "alias", mark];

/**
 * The change that takes the mark off link `dev` again (an empty alias is none):
 * an object turned `retainOnDelete` is left on the host by destroy, where a
 * mark would only refuse a later adoption of it.
 */
export const clearMark = (dev: string): IpArgs => ["link", "set", "dev", dev, "alias", ""];

/**
 * The mark to write on an object at create (random `id`), or on one whose
 * retainOnDelete is turned off; none for a retained object (see clearMark).
 */
export const markUnlessRetained = (kind: string, id: string, retained: boolean | undefined): string | undefined =>
  retained ? undefined : markOf(kind, id);

/**
 * The owner mark of a route: its protocol number (`ip route add ... proto N`),
 * which the kernel keeps and never interprets above 4 (RTPROT_STATIC), and
 * which `ip route show/del ... proto N` select on. 113 is in no
 * iproute2 rt_protos (0-4 kernel, 8-18, 42, 99, 186-192) nor used by a routing
 * daemon we know of (FRR 186-198, Calico 80, BIRD 12, NetworkManager and
 * systemd-networkd 3/4/9/16). A host whose rt_protos names 113 shows the name;
 * the selectors still take the number. It marks the kind, not the resource:
 * a route is already known by its destination, gateway, device, metric and table.
 */
export const ROUTE_PROTOCOL = 113;

/** Writes the mark on a namespace's loopback (undefined: takes it off). */
export const markNamespace = (ns: Namespace, mark: string | undefined): string =>
  ns.ip(...(mark === undefined ? clearMark("lo") : setMark("lo", mark)));

/**
 * Whether a link found under our name is the one we made: it carries our mark,
 * or (state from before marks, or a mark someone cleared) it has the ifindex
 * and MAC recorded at create.
 */
export function isOurLink(
  found: { ifalias?: string; ifindex: number; mac: string },
  recorded: { mark?: string; ifindex?: number; mac?: string },
): boolean {
  if (recorded.mark !== undefined && found.ifalias === recorded.mark) return true;
  // Another resource's mark: that resource owns the link now (it adopted it while it carried none), whatever
  // the ifindex and MAC say.
  if (found.ifalias?.startsWith(MARK_PREFIX)) return false;
  return recorded.ifindex === found.ifindex && recorded.mac !== undefined && recorded.mac === found.mac;
}

/** The line the provider writes when a delete leaves an object that is not its own. */
export function notOursWarning(what: string, host: string, why: string): string {
  return (
    `${what} on ${host} is not the one this stack made (${why}); it was left in place and ` +
    "dropped from the stack's state. If it is yours to remove, delete it by hand."
  );
}
