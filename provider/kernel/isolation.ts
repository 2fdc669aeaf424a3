import * as ipaddr from "ipaddr.js";
import { isIpv6, type Rule } from "./iptables";

/**
 * Keeping IsolatedNetworks apart, as Docker keeps its bridge networks apart
 * (its DOCKER-ISOLATION chains). Every IsolatedNetwork's bridge carries one
 * interface group, ISOLATION_GROUP; each network drops forwarded traffic
 * that comes in from a bridge of that group (another network's, whichever
 * stack made it and whenever) and goes out to its own bridge. So a network
 * needs no knowledge of the others, and one made later is kept apart too.
 *
 * The forward rules sit in the mangle table's FORWARD chain, which runs before
 * the filter table: the FORWARD accepts a MasqueradeRule or PortForward inserts
 * at the top of the filter table (later ones above earlier ones) cannot pre-empt
 * them. The group alone is not trusted (see isolationRules): a bridge that lost
 * it forwards nothing new, and sources are checked against the routes.
 * Exempt: replies (RELATED,ESTABLISHED: a network that allows another still
 * gets its answers back), connections to a port forward (DNAT: a published
 * port is published to every network, as Docker's are), and sources in
 * `allowFrom`. The host itself (INPUT/OUTPUT) and traffic from or to other
 * interfaces (the uplink: outbound NAT and the LAN's port forwards) never match
 * the forward rules; only forged sources are dropped on their way to the host too.
 */

/** The interface group of every IsolatedNetwork bridge ("NS" in ASCII; the kernel's default group is 0). */
export const ISOLATION_GROUP = 0x4e53;

/** A CIDR (IPv4 or IPv6) as the address range `-m iprange` takes. */
function range(cidr: string): string {
  const family = isIpv6(cidr) ? ipaddr.IPv6 : ipaddr.IPv4;
  const start = family.networkAddressFromCIDR(cidr).toString();
  const end = family.broadcastAddressFromCIDR(cidr).toString();
  return `${start}-${end}`;
}

const GROUP = `0x${ISOLATION_GROUP.toString(16)}`;
/** Replies, and connections to a port forward (published to every network), are never dropped. */
const NEW_ONLY = ["-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT"];

/**
 * The rules isolating the network on `bridge`:
 *
 * - in: new traffic from a bridge of the group to this one is dropped unless
 *   its source is in `allowFrom` (each CIDR a negated iprange match of this
 *   same rule, so no ordering between rules matters);
 * - out, failing closed: while this bridge is not in the group (its group
 *   changed by hand: every other network's "in" rule would miss it), it
 *   forwards nothing new at all, until refresh and up put the group back;
 * - no forged sources: a packet from this bridge whose source the host would
 *   not route back over this bridge is dropped (reverse-path check, mangle
 *   PREROUTING), so a namespace cannot borrow an address another network's
 *   `allowFrom` lets in. Per bridge by name: it holds before the bridge exists,
 *   and leaves the host's `rp_filter` sysctls alone.
 */
export function isolationRules(bridge: string, allowFrom: string[], bridgeAddresses: string[] = []): Rule[] {
  const v4 = familyRules(
    bridge,
    allowFrom.filter((c) => !isIpv6(c)),
    {},
  );
  // A network with IPv6 (an IPv6 bridge address or allowFrom) is kept apart over IPv6 too; one without leaves ip6tables alone.
  if (![...allowFrom, ...bridgeAddresses].some(isIpv6)) return v4;
  return [...v4, ...familyRules(bridge, allowFrom.filter(isIpv6), { family: 6 })];
}

function familyRules(bridge: string, allowFrom: string[], family: { family?: 6 }): Rule[] {
  const allowed = allowFrom.flatMap((cidr) => ["-m", "iprange", "!", "--src-range", range(cidr)]);
  const forward = (spec: string[]): Rule => ({ table: "mangle", chain: "FORWARD", spec, ...family });
  return [
    forward([
      "!",
      "-i",
      bridge,
      "-o",
      bridge,
      "-m",
      "devgroup",
      "--src-group",
      GROUP,
      ...NEW_ONLY,
      ...allowed,
      "-j",
      "DROP",
    ]),
    forward(["-i", bridge, "!", "-o", bridge, "-m", "devgroup", "!", "--src-group", GROUP, ...NEW_ONLY, "-j", "DROP"]),
    {
      table: "mangle",
      chain: "PREROUTING",
      spec: ["-i", bridge, "-m", "rpfilter", "--invert", "-j", "DROP"],
      ...family,
    },
  ];
}
