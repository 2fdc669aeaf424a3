import {
  ADDRESS_READS,
  ADDRESS_WATCH,
  addressCollisions,
  FORWARD_WATCH,
  foreignDevice,
  forwardCollisions,
  LINK_WATCH,
  otherIsolations,
} from "../kernel/collisions";
import { saveScript } from "../kernel/iptables";
import { ISOLATION_GROUP } from "../kernel/isolation";
import { LINK_READ_OPTIONS, parseLinks } from "../kernel/link";
import { at } from "../kernel/namespace";
import type { Remote } from "../transport";
import type { HostCheck } from "./lockedCommit";

/**
 * The collision checks of create and update. Each is a HostCheck: it runs
 * inside the locked commit that makes the change (./lockedCommit), on the
 * same read the commit is planned from, and refuses naming both sides, so a
 * refused commit changes nothing and two commits at once cannot both pass.
 */

/** Refuses `addresses` on `device` that another interface has or whose prefix overlaps another's or a route's. */
export function addressCheck(
  remote: Remote,
  what: string,
  device: string,
  addresses: string[],
  namespace?: string,
): HostCheck[] {
  if (addresses.length === 0) return [];
  const ns = at(namespace);
  return [
    {
      reads: ADDRESS_READS.map((args) => ns.ifExists(ns.ip(...args))),
      watch: ADDRESS_WATCH,
      refuse([addrText, routeText, route6Text]) {
        const problems = addressCollisions(device, addresses, addrText, routeText, route6Text);
        if (problems.length)
          throw new Error(
            `${what}: ${problems.join("; ")} (on ${remote.label}${namespace ? `, namespace ${namespace}` : ""}). ` +
              "Nothing was changed. Choose addresses the host does not use, or remove the other network first.",
          );
      },
    },
  ];
}

/** What changes when an IPv6 DNAT rule comes or goes (FORWARD_WATCH's IPv6 counterpart). */
const FORWARD_WATCH_IPV6 = "ip6tables-save 2>/dev/null | grep -e '^[*]' -e '^-A'";

/**
 * Refuses host ports that a DNAT or REDIRECT rule on the host already takes.
 * `ipv6`: forwards to an IPv6 address, judged against the IPv6 tables only
 * (an IPv4 forward of the same port is the other half of a dual-stack one).
 */
export function forwardCheck(
  remote: Remote,
  what: string,
  forwards: Array<{ protocol: string; hostPort: number; inInterface?: string; to?: string }>,
  namespace?: string,
  ownNetworks: string[] = [],
  ipv6 = false,
): HostCheck[] {
  if (forwards.length === 0) return [];
  const ns = at(namespace);
  return [
    {
      // The whole dump: it lists only tables that exist, where `-t nat` could bring one into existence.
      reads: [
        ipv6 ? ns.ifExists(ns.exec("ip6tables-save")) : saveScript(namespace),
        ns.ifExists(ns.ip(...LINK_READ_OPTIONS, "addr", "show")),
      ],
      watch: `${ipv6 ? FORWARD_WATCH_IPV6 : FORWARD_WATCH}; ${ADDRESS_WATCH}`,
      refuse([saveText, addrText]) {
        const locals = parseLinks(addrText, "addresses").flatMap((l) => l.addresses);
        const problems = forwards.flatMap((f) =>
          forwardCollisions(f.protocol, f.hostPort, f.inInterface, saveText, ownNetworks, locals, f.to).map(
            (rule) =>
              `${f.protocol} port ${f.hostPort}${f.to ? ` (to ${f.to})` : ""} is already forwarded by the host's rule ${rule}`,
          ),
        );
        if (problems.length)
          throw new Error(
            `${what}: ${problems.join("; ")} (on ${remote.label}). The first matching rule wins, so a second forward ` +
              "would never match. Nothing was changed. Choose another hostPort, or remove the other forward first.",
          );
      },
    },
  ];
}

/**
 * Refuses an isolation for a bridge name whose interface already exists: not
 * in the isolation group, it is someone else's (kernel/collisions
 * foreignDevice), and the isolation's rules would cut it off; in the group, it
 * is another IsolatedNetwork's bridge (another stack's, or one whose state is
 * lost), whose rules would then hold together with this network's. `ownComment`
 * (an update: the network's own bridge) checks only that no other network's
 * isolation rules name the bridge (otherIsolations), as after a firewall
 * reload another stack may have slipped in. Rules of an isolation whose bridge
 * is gone do not block a create: a network being replaced in the same `up`
 * (two networks swapping bridge names) deletes them right after.
 */
export function bridgeNameCheck(remote: Remote, what: string, device: string, ownComment?: string): HostCheck[] {
  return [
    {
      reads: [at(undefined).ip(...LINK_READ_OPTIONS, "addr", "show"), saveScript(undefined)],
      watch: `${LINK_WATCH}; ${FORWARD_WATCH}`,
      refuse([addrText, saveText]) {
        // On update the bridge is the network's own: its group, changed by hand, is its Bridge's to put back.
        const problem = ownComment ? undefined : foreignDevice(device, addrText, ISOLATION_GROUP);
        if (problem)
          throw new Error(
            `${what}: ${problem} (on ${remote.label}); its isolation would cut that interface off. ` +
              "Nothing was changed. Choose another bridge name for the IsolatedNetwork, or remove the other interface first.",
          );
        const exists = parseLinks(addrText, "addresses").some((l) => l.ifname === device);
        const others = otherIsolations(device, saveText).filter((c) => !ownComment?.startsWith(c));
        if (ownComment ? others.length === 0 : !exists) return;
        const rules = others.length
          ? `its isolation rules: ${others.map((c) => `iptables-save -t mangle | grep -- ${c}`).join("; ")}`
          : "its isolation rules are not on the host (a firewall reload?)";
        throw new Error(
          `${what}: bridge ${device} is already another IsolatedNetwork's (${rules}) (on ${remote.label}); ` +
            "two networks cannot share a bridge. Nothing was changed. Choose another bridge name, or destroy " +
            "the other network first; if its stack is gone (removed without destroy), remove what it left: " +
            `ip link delete ${device}, and each rule listed (iptables -t mangle -D <rule as listed>).`,
        );
      },
    },
  ];
}
