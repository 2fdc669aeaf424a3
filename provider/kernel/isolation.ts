import * as ipaddr from "ipaddr.js";
import type { Rule } from "./iptables";

/**
 * Keeping IsolatedNetworks apart, as Docker keeps its bridge networks apart
 * (its DOCKER-ISOLATION chains). Every IsolatedNetwork's bridge carries one
 * interface group, ISOLATION_GROUP; each network drops forwarded traffic
 * that comes in from a bridge of that group (another network's, whichever
 * stack made it and whenever) and goes out to its own bridge. So a network
 * needs no knowledge of the others, and one made later is kept apart too.
 *
 * The rule sits in the mangle table's FORWARD chain, which runs before the
 * filter table: the FORWARD accepts a MasqueradeRule or PortForward inserts at
 * the top of the filter table (later ones above earlier ones) cannot pre-empt it.
 * Exempt: replies (RELATED,ESTABLISHED: a network that allows another still
 * gets its answers back), connections to a port forward (DNAT: a published
 * port is published to every network, as Docker's are), and sources in
 * `allowFrom`. The host itself (INPUT/OUTPUT) and traffic from or to other
 * interfaces (the uplink: outbound NAT and the LAN's port forwards) never match.
 */

/** The interface group of every IsolatedNetwork bridge ("NS" in ASCII; the kernel's default group is 0). */
export const ISOLATION_GROUP = 0x4e53;

/** A CIDR as the address range `-m iprange` takes. */
function range(cidr: string): string {
  const [net, len] = ipaddr.IPv4.parseCIDR(cidr);
  const start = ipaddr.IPv4.networkAddressFromCIDR(`${net}/${len}`).toString();
  const end = ipaddr.IPv4.broadcastAddressFromCIDR(`${net}/${len}`).toString();
  return `${start}-${end}`;
}

/**
 * The one rule isolating the network on `bridge`. Each allowed CIDR is a
 * negated iprange match of this same rule, so no ordering between rules matters.
 */
export function isolationRule(bridge: string, allowFrom: string[]): Rule {
  return {
    table: "mangle",
    chain: "FORWARD",
    spec: [
      "!",
      "-i",
      bridge,
      "-o",
      bridge,
      "-m",
      "devgroup",
      "--src-group",
      `0x${ISOLATION_GROUP.toString(16)}`,
      "-m",
      "conntrack",
      "!",
      "--ctstate",
      "RELATED,ESTABLISHED,DNAT",
      ...allowFrom.flatMap((cidr) => ["-m", "iprange", "!", "--src-range", range(cidr)]),
      "-j",
      "DROP",
    ],
  };
}
