import * as ipaddr from "ipaddr.js";
import { parseIpJson } from "./json";

/**
 * Collisions with what a host already has, found before anything is made
 * (pure: parses `ip -j addr`, `ip -j route` and the whole `iptables-save`).
 * Each problem names both sides: ours and the host's.
 */

interface AddrJson {
  ifname: string;
  addr_info?: Array<{ family: string; local: string; prefixlen: number }>;
}
interface RouteJson {
  dst: string;
  dev?: string;
  gateway?: string;
  protocol?: string;
  type?: string;
}

const network = (cidr: string): [ipaddr.IPv4, number] => {
  const [a, len] = ipaddr.IPv4.parseCIDR(cidr);
  return [ipaddr.IPv4.parse(ipaddr.IPv4.networkAddressFromCIDR(`${a}/${len}`).toString()), len];
};

/** Two IPv4 prefixes overlap when the shorter one contains the other's network address. */
export function overlaps(a: string, b: string): boolean {
  const [na, la] = network(a);
  const [nb, lb] = network(b);
  return la <= lb ? nb.match(na, la) : na.match(nb, lb);
}

const prefixOf = (cidr: string) => {
  const [n, len] = network(cidr);
  return `${n}/${len}`;
};

/**
 * Problems with putting `addresses` (CIDR form) on interface `device`: an
 * address another interface already has, or a prefix overlapping another
 * interface's address or a connected route (one with no gateway) through
 * another interface, which the new route would shadow or be shadowed by.
 * The device itself (an adopted one) is not another interface.
 */
export function addressCollisions(device: string, addresses: string[], addrText: string, routeText: string): string[] {
  const problems: string[] = [];
  const others = parseIpJson<AddrJson>(addrText, "addresses")
    .filter((l) => l.ifname !== device)
    .flatMap((l) =>
      (l.addr_info ?? [])
        .filter((a) => a.family === "inet")
        .map((a) => ({ ifname: l.ifname, cidr: `${a.local}/${a.prefixlen}`, local: a.local })),
    );
  const routes = parseIpJson<RouteJson>(routeText, "routes").filter(
    (r) => r.dev && r.dev !== device && !r.gateway && r.dst !== "default" && (r.type ?? "unicast") === "unicast",
  );
  for (const mine of addresses) {
    const [local] = mine.split("/");
    const same = others.find((o) => o.local === local);
    if (same) {
      problems.push(
        `address ${mine} for ${device} is already on interface ${same.ifname} (${same.cidr}); two interfaces cannot share it`,
      );
      continue;
    }
    const onAddress = others.find((o) => overlaps(mine, o.cidr));
    const onRoute = routes.find((r) => overlaps(mine, r.dst.includes("/") ? r.dst : `${r.dst}/32`));
    const clash = onAddress
      ? `interface ${onAddress.ifname}'s ${prefixOf(onAddress.cidr)} (address ${onAddress.cidr})`
      : onRoute
        ? `the route to ${onRoute.dst} on interface ${onRoute.dev}`
        : undefined;
    if (clash)
      problems.push(
        `${device}'s ${mine} (network ${prefixOf(mine)}) overlaps ${clash}; ` +
          "the routes would shadow each other and cut one network off",
      );
  }
  return problems;
}

/**
 * Problems with forwarding `protocol` port `hostPort` (arriving on `inInterface`,
 * absent: any): a DNAT rule of any nat chain but POSTROUTING (ours, Docker's,
 * anyone's) already takes that port. A rule matching first would make ours
 * never match. Each names the rule as iptables-save prints it and its owner comment.
 * A rule forwarding into `ownNetworks` is the network's own (made before it
 * had this check): a network overlapping ours on another bridge is refused anyway.
 */
export function forwardCollisions(
  protocol: string,
  hostPort: number,
  inInterface: string | undefined,
  natSaveText: string,
  ownNetworks: string[] = [],
): string[] {
  const problems: string[] = [];
  const owners = new Set<string>();
  let table = "";
  for (const line of natSaveText.split("\n")) {
    if (line.startsWith("*")) table = line.slice(1).trim();
    if (table !== "nat" || !line.startsWith("-A ") || line.startsWith("-A POSTROUTING ")) continue;
    const words = line.split(/\s+/);
    if (!words.includes("DNAT")) continue;
    const after = (flag: string) => {
      const i = words.indexOf(flag);
      return i < 0 || words[i - 1] === "!" ? undefined : words[i + 1];
    };
    if (after("-p") !== protocol) continue;
    const dport = after("--dport") ?? after("--dports");
    if (!dport || !portIn(hostPort, dport)) continue;
    const theirIn = after("-i");
    if (inInterface && theirIn && theirIn !== inInterface) continue;
    const to = after("--to-destination")?.split(":")[0];
    if (to && ipaddr.IPv4.isValid(to) && ownNetworks.some((n) => overlaps(`${to}/32`, n))) continue;
    const owner = line.match(/--comment "?([^"\s]+)"?/)?.[1];
    // One rule per owner is enough to name it (a PortForward has one in PREROUTING and one in OUTPUT).
    if (owner && owners.has(owner)) continue;
    if (owner) owners.add(owner);
    problems.push(`${line.trim()} (owner: ${owner ?? "no owner comment: not made by pulumi-netns"})`);
  }
  return problems;
}

/** A port in an iptables port spec: "8080", "8000:8100" or "80,8080". */
function portIn(port: number, spec: string): boolean {
  return spec.split(",").some((part) => {
    const [lo, hi] = part.split(":").map(Number);
    return hi === undefined ? port === lo : port >= lo && port <= (hi || 65535);
  });
}
