import * as ipaddr from "ipaddr.js";
import { overlaps, prefixOf } from "./cidr";
import { parseSave } from "./iptables";
import { LINK_READ_OPTIONS, parseLinks } from "./link";
import { OWNER_PREFIX, parseOwners } from "./ownership";
import { parseRoutes, type RouteOver } from "./route";

/**
 * Collisions with what a host already has (pure: parses `ip -j addr`,
 * `ip -j route show table all` and the whole `iptables-save`). Each problem
 * names both sides: ours and the host's. impl/collisions runs these checks
 * inside the host-locked commit that makes the object (impl/lockedCommit).
 */

/** The reads the address check judges, in the namespace it runs in. */
export const ADDRESS_READS = [
  [...LINK_READ_OPTIONS, "addr", "show"],
  ["-4", "-j", "route", "show", "table", "all"],
  // Plain `route show table all` lists IPv4 routes only.
  ["-6", "-j", "route", "show", "table", "all"],
] as const;

/**
 * Shell text printing what the address check judges, minus what changes by
 * itself (address lifetimes count down): part of the host lock's digest, so a
 * commit planned from one read never runs after another changed it.
 */
export const ADDRESS_WATCH =
  "ip -o addr show 2>/dev/null | awk '{print $2, $4}'; ip -4 route show table all 2>/dev/null; " +
  "ip -6 route show table all 2>/dev/null | grep -v ' expires '";

/** What changes when an interface comes, goes or changes group (the foreign-bridge check reads this). */
export const LINK_WATCH =
  "ip -o link show 2>/dev/null | awk '{for (i = 1; i <= NF; i++) if ($i == \"group\") print $2, $(i + 1)}'";

/**
 * An interface already named `device` that is not in the isolation group:
 * someone else's (a PodNetwork's, a hand-made one). An isolation for that
 * name would drop what it forwards (its fail-closed rule matches by name),
 * and the network's Bridge create would fail on the name anyway.
 */
export function foreignDevice(device: string, addrText: string, isolationGroup: number): string | undefined {
  const link = parseLinks(addrText, "addresses").find((l) => l.ifname === device);
  if (!link || link.group === isolationGroup) return undefined;
  return `interface ${device} already exists and is not an isolated network's bridge (group ${link.group ?? "default"}${link.kind ? `, kind ${link.kind}` : ""})`;
}

/**
 * The owner comments of other IsolatedNetworks' isolation rules for bridge
 * `device` (any rule of kind `isol` naming it as `-i` or `-o`): an isolated
 * bridge of that name is another network's (another stack's), and a second
 * set of rules for it would override the first's (its `allowFrom` among them).
 * Called by a create, before its own rules exist: every such rule is another's.
 */
export function otherIsolations(device: string, saveText: string): string[] {
  const comments = new Set<string>();
  for (const [, lines] of parseSave(saveText).rules)
    for (const line of lines) {
      const words = line.trim().split(/\s+/);
      const names = words.some((w, i) => (w === "-i" || w === "-o") && words[i + 1] === device);
      if (!names) continue;
      for (const owner of parseOwners(line).values())
        if (owner.kind === "isol") comments.add(`${OWNER_PREFIX}${owner.kind}/${owner.id}/`);
    }
  return [...comments];
}

/** The same for the forward check: every rule (rule lines carry no counters). */
export const FORWARD_WATCH = "iptables-save 2>/dev/null | grep -e '^[*]' -e '^-A'";

/**
 * Route types that send a prefix somewhere (or nowhere, on purpose): a network
 * of ours overlapping one would shadow it or be shadowed. Not: the local
 * table's entries for addresses (local, broadcast, ...: the address check
 * sees the addresses themselves) and `throw` (it routes nothing, it sends
 * the lookup on to the next table).
 */
const ROUTING_TYPES = new Set(["unicast", "blackhole", "unreachable", "prohibit"]);

function describeClashingRoute(r: RouteOver): string {
  const type = r.type && r.type !== "unicast" ? `${r.type} ` : "";
  const via = r.gateway ? ` via ${r.gateway}` : "";
  const dev = r.dev ? ` on interface ${r.dev}` : "";
  const table = r.table && r.table !== "main" ? ` (table ${r.table})` : "";
  return `the ${type}route to ${r.dst}${via}${dev}${table}`;
}

/**
 * Problems with putting `addresses` (CIDR form) on interface `device`: an
 * address another interface already has, or a prefix overlapping another
 * interface's address or any route (of any table, with or without a gateway,
 * blackholes too) not over the device itself, which the new route would
 * shadow or be shadowed by. The default route is no collision. The device
 * itself (an adopted one, or ours on update) is not another interface.
 */
export function addressCollisions(
  device: string,
  addresses: string[],
  addrText: string,
  routeText: string,
  route6Text = "",
): string[] {
  const problems: string[] = [];
  const others = parseLinks(addrText, "addresses")
    .filter((l) => l.ifname !== device)
    .flatMap((l) => l.addresses.map((cidr) => ({ ifname: l.ifname, cidr, local: cidr.split("/")[0] })));
  const routes = [
    ...parseRoutes(routeText, "routes"),
    ...(route6Text.trim() ? parseRoutes(route6Text, "routes") : []),
  ].filter(
    (r) =>
      r.dev !== device &&
      // Not "default" (of either family).
      ipaddr.isValid(r.dst.split("/")[0]) &&
      ROUTING_TYPES.has(r.type ?? "unicast"),
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
    const onRoute = routes.find((r) => overlaps(mine, r.dst));
    const clash = onAddress
      ? `interface ${onAddress.ifname}'s ${prefixOf(onAddress.cidr)} (address ${onAddress.cidr})`
      : onRoute
        ? describeClashingRoute(onRoute)
        : undefined;
    if (clash)
      problems.push(
        `${device}'s ${mine} (network ${prefixOf(mine)}) overlaps ${clash}; ` +
          "the routes would shadow each other and cut one network off",
      );
  }
  return problems;
}

/** The resource kind behind each owner comment's kind, for messages. */
const OWNER_KINDS: Record<string, string> = {
  pfwd: "PortForward",
  masq: "MasqueradeRule",
  bridge: "Bridge",
  isol: "IsolatedNetwork (its NetworkIsolation)",
};

/** A rule's words, and each flag's value with whether it is negated (`! -p tcp`). */
function matchesOf(words: string[]): Map<string, { value: string; negated: boolean }> {
  const found = new Map<string, { value: string; negated: boolean }>();
  words.forEach((w, i) => {
    if (w.startsWith("-") && i + 1 < words.length && !found.has(w))
      found.set(w, { value: words[i + 1], negated: words[i - 1] === "!" });
  });
  return found;
}

/** The rule as iptables-save prints it, without its comment: the owner is named once, apart. */
const withoutComment = (line: string) => line.replace(/ -m comment --comment ("[^"]*"|\S+)/, "");

/**
 * Problems with forwarding `protocol` port `hostPort` (arriving on
 * `inInterface`, absent: any) for the host's own addresses (`locals`, CIDR
 * form): a DNAT or REDIRECT rule of any nat chain but POSTROUTING/INPUT (ours,
 * Docker's, anyone's) that takes some of that traffic. Whichever rule matches
 * first wins, so ours would never match (or theirs would stop). Each names the
 * rule without its comment, then its owner once: which resource kind and how
 * to find it. A DNAT into `ownNetworks` is the network's own (made before it
 * had this check): a network overlapping ours on another bridge is refused anyway.
 *
 * A rule collides when it can match one packet ours matches: a negated match
 * (`! --dport 8080`) matches every value but its own, so it collides for
 * every port but 8080; a rule without -p or --dport matches every protocol
 * or port. Its -s only narrows whom it takes from, so it still collides.
 */
export function forwardCollisions(
  protocol: string,
  hostPort: number,
  inInterface: string | undefined,
  saveText: string,
  ownNetworks: string[] = [],
  locals: string[] = [],
  /** The forward's own destination (`addr:port`, `[addr6]:port`): a PortForward's twin to it is no collision. */
  destination?: string,
): string[] {
  const problems: string[] = [];
  const named = new Set<string>();
  for (const line of parseSave(saveText).rules.get("nat") ?? []) {
    const words = line.trim().split(/\s+/);
    const chain = words[1];
    if (chain === "POSTROUTING" || chain === "INPUT") continue;
    const m = matchesOf(words);
    const target = m.get("-j")?.value;
    if (target !== "DNAT" && target !== "REDIRECT") continue;
    if (!takes(m, protocol, hostPort, inInterface, locals)) continue;
    const to = m.get("--to-destination")?.value.split(/[:-]/)[0];
    if (target === "DNAT" && to && ipaddr.IPv4.isValid(to) && ownNetworks.some((n) => overlaps(to, n))) continue;
    const owner = [...parseOwners(line).values()][0];
    // Another PortForward to the same destination (a namespace renamed in an IsolatedNetwork: its forward is
    // made before the old one goes): whichever matches first, the packet goes the same way.
    if (target === "DNAT" && owner?.kind === "pfwd" && m.get("--to-destination")?.value === destination && destination)
      continue;
    // One rule per owner is enough to name it (a PortForward has one in PREROUTING and one in OUTPUT).
    if (owner && named.has(owner.id)) continue;
    if (owner) named.add(owner.id);
    const tag = owner && `${OWNER_PREFIX}${owner.kind}/${owner.id}/`;
    problems.push(
      `${withoutComment(line.trim())} (${
        owner
          ? `made by a pulumi-netns ${OWNER_KINDS[owner.kind] ?? owner.kind} (find it with: iptables-save | grep -- ${tag})`
          : `not made by pulumi-netns: no owner comment (find it with: iptables-save -t nat | grep -- " ${chain} ")`
      })`,
    );
  }
  return problems;
}

type Matches = ReturnType<typeof matchesOf>;

/** Whether a nat rule with matches `m` can take a `protocol` packet to `hostPort` arriving on `inInterface` for a local address. */
function takes(m: Matches, protocol: string, hostPort: number, inInterface: string | undefined, locals: string[]) {
  const matches = (flag: string, test: (value: string) => boolean) => {
    const f = m.get(flag);
    return !f || test(f.value) !== f.negated;
  };
  if (!matches("-p", (p) => p === protocol || p === "all")) return false;
  const dport = m.has("--dport") ? "--dport" : "--dports";
  if (!matches(dport, (spec) => portIn(hostPort, spec))) return false;
  // Ours takes what arrives on `inInterface` (any, absent): theirs must take some of it.
  const theirIn = m.get("-i");
  if (theirIn && inInterface && (theirIn.value === inInterface) === theirIn.negated) return false;
  // Ours takes traffic for the host's own addresses only (addrtype LOCAL).
  const dstType = m.get("--dst-type");
  if (dstType && dstType.value.split(",").includes("LOCAL") === dstType.negated) return false;
  const dst = m.get("-d");
  // A negated -d matches almost every address, the host's among them: taken as colliding.
  if (dst && !dst.negated && !isLocal(dst.value, locals)) return false;
  return true;
}

/** Whether `cidr` holds one of the host's addresses (127.0.0.0/8 is local whatever lo says). */
function isLocal(cidr: string, locals: string[]): boolean {
  return [...locals.map((l) => l.split("/")[0]), "127.0.0.0/8"].some((l) => overlaps(cidr, l));
}

/** A port in an iptables port spec: "8080", "8000:8100" or "80,8080". */
function portIn(port: number, spec: string): boolean {
  return spec.split(",").some((part) => {
    const [lo, hi] = part.split(":").map(Number);
    return hi === undefined ? port === lo : port >= lo && port <= (hi || 65535);
  });
}
