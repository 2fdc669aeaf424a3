import { batchLines } from "./namespace";

/**
 * Tells a failed step in the program's terms: which field, its value, and the
 * fix, with the tool's own words on one line after it so nothing is lost, and
 * without the shell text that ran. The patterns are what iproute2 6.1 printed
 * on a lab host (test/unit/fixtures/kernel-errors); anything else is left to
 * the executor's plain form.
 */

/** A value of a resource's field that the host looks up by name when a script runs. */
export interface Lookup {
  /** The field's path in the program: "namespace", "via", "a.bridge". */
  readonly field: string;
  readonly value: string;
  /** What the value names. */
  readonly kind: "namespace" | "interface" | "bridge" | "gateway";
  /** Where an interface, bridge or gateway is looked up: a named namespace; absent, the host's own. */
  readonly namespace?: string;
}

/** A lookup of `field` when its value is set; none when it is not. */
export function lookup(field: string, value: string | undefined, kind: Lookup["kind"], namespace?: string): Lookup[] {
  return value === undefined ? [] : [{ field, value, kind, ...(namespace ? { namespace } : {}) }];
}

/** What the executor knows about a step that failed. */
export interface FailedStep {
  /** The host, as the user named it (user@host:port). */
  host: string;
  /** The step's command, to find the line of an `ip -batch` that failed. */
  command: string;
  /** The step's own stderr. */
  stderr: string;
}

const where = (namespace: string | undefined) =>
  namespace ? `namespace ${JSON.stringify(namespace)}` : "the host namespace";

/** The first lookup of one of `kinds` with this value (a name the kernel quoted back). */
function find(lookups: readonly Lookup[], value: string, ...kinds: Array<Lookup["kind"]>): Lookup | undefined {
  return lookups.find((l) => kinds.includes(l.kind) && l.value === value);
}

/**
 * The namespace the failed command acts in (`ip -n NS`, as `Namespace.ip`
 * writes it): null for the host's own, undefined when it cannot be told.
 */
function actsIn(command: string): string | null | undefined {
  if (!/(^|[|;&(]\s*)ip /.test(command)) return undefined;
  const n = /(?:^|[|;&(]\s*)ip '?-n'? '?([^'\s]+)'?/.exec(command);
  return n ? n[1] : null;
}

/**
 * The lookups of an interface or bridge with this value that the failed
 * command can mean: those in the namespace it acts in, when several fields
 * hold the same name (a.bridge and b.bridge, each end in its own namespace).
 * Several remain only when the command cannot tell them apart.
 */
function findIn(
  lookups: readonly Lookup[],
  value: string,
  step: FailedStep,
  ...kinds: Array<Lookup["kind"]>
): Lookup[] {
  const all = lookups.filter((l) => kinds.includes(l.kind) && l.value === value);
  if (all.length < 2) return all;
  const ns = actsIn(failedLine(step)) ?? actsIn(step.command);
  if (ns === undefined) return all;
  const there = all.filter((l) => (l.namespace ?? null) === ns);
  return there.length ? there : all;
}

/** "a.bridge", or "a.bridge or b.bridge" when the failure cannot tell which. */
const fieldsOf = (ls: readonly Lookup[]) => ls.map((l) => l.field).join(" or ");
const placesOf = (ls: readonly Lookup[]) => [...new Set(ls.map((l) => where(l.namespace)))].join(" or ");

function missingNamespace(name: string, lookups: readonly Lookup[], host: string): string {
  const l = find(lookups, name, "namespace");
  const fix = l
    ? `declare it (a Namespace, and pass its name output as ${l.field} so that it is made first) or fix the name`
    : "declare it (a Namespace) or fix the name";
  return `${l ? `${l.field}: ` : ""}namespace ${JSON.stringify(name)} does not exist on ${host}: ${fix}`;
}

function missingInterface(name: string, lookups: readonly Lookup[], step: FailedStep): string | undefined {
  const ls = findIn(lookups, name, step, "bridge", "interface");
  if (!ls.length) return undefined;
  const l = ls[0];
  const what = l.kind === "bridge" ? "bridge" : "interface";
  const declare = l.kind === "bridge" ? "a Bridge" : "a VethPair end or a Bridge";
  const fields = fieldsOf(ls);
  return (
    `${fields}: ${what} ${JSON.stringify(name)} does not exist in ${placesOf(ls)} on ${step.host}: ` +
    `declare it (${declare} there, and pass its name output as ${fields} so that it is made first) or fix the name`
  );
}

/** The line of an `ip -batch` that failed (iproute2 says "Command failed -:N"), else the whole command. */
function failedLine(step: FailedStep): string {
  const n = /Command failed -:(\d+)/.exec(step.stderr);
  return (n && batchLines(step.command)?.[Number(n[1]) - 1]) ?? step.command;
}

interface Rule {
  /** What the tool says, with the name it quotes (if any) as group 1. */
  said: RegExp;
  /** Who said it, for the line with its words (default "ip"). */
  by?: string;
  tell(name: string, lookups: readonly Lookup[], step: FailedStep): string | undefined;
}

/** The package each tool the provider runs on a host comes from (Debian's names), for a tool missing there. */
const PACKAGE_OF: Record<string, string> = {
  ip: "iproute2",
  bridge: "iproute2",
  tc: "iproute2",
  iptables: "iptables",
  ip6tables: "iptables",
  "iptables-save": "iptables",
  "ip6tables-save": "iptables",
  nft: "nftables",
  flock: "util-linux",
  nsenter: "util-linux",
  sysctl: "procps",
};

const RULES: Rule[] = [
  {
    // A tool the step runs is not on the host (sh: "ip6tables: not found", bash: "command not found";
    // `ip netns exec NS tool`: 'exec of "tool" failed: No such file or directory').
    said: /(?:(?:^|\n)(?:\S*\/)?(?:sh|bash): (?:(?:line )?\d+: )?([\w.+-]+): (?:command )?not found|exec of "([\w.+-]+)" failed: No such file or directory)/,
    by: "the host",
    tell: (tool, _lookups, step) => {
      const pkg = PACKAGE_OF[tool];
      if (!pkg) return undefined;
      return (
        `${step.host} has no ${tool} (package ${pkg}), which this step needs: install it there ` +
        `(apt-get install ${pkg}, or your distribution's package), then run up again`
      );
    },
  },
  {
    // `ip -n NS ...` and `ip netns exec NS ...` for a namespace that does not exist.
    said: /Cannot open network namespace "([^"]+)": No such file or directory/,
    tell: (name, lookups, step) => missingNamespace(name, lookups, step.host),
  },
  {
    // `ip link add ... peer ... netns NS` for a peer namespace that does not exist.
    said: /argument "([^"]+)" is wrong: Invalid "netns" value/,
    tell: (name, lookups, step) => missingNamespace(name, lookups, step.host),
  },
  {
    // `ip link set dev X master BR` for a bridge not in X's namespace.
    said: /argument "([^"]+)" is wrong: Device does not exist/,
    tell: (name, lookups, step) => missingInterface(name, lookups, step),
  },
  {
    // `ip route add ... dev X` for an interface not in the route's namespace.
    said: /Cannot find device "([^"]+)"/,
    tell: (name, lookups, step) => missingInterface(name, lookups, step),
  },
  {
    // The gateway is not in the subnet of an address of an interface that is up there (or is its broadcast address);
    // IPv6 (`ip -6 route add`) says "No route to host".
    said: /Nexthop has invalid gateway|RTNETLINK answers: No route to host/,
    tell: (_, lookups, step) => {
      const via = lookups.find((l) => l.kind === "gateway");
      if (!via) return undefined;
      const device = lookups.find((l) => l.kind === "interface" && l.field === "device");
      const through = device ? ` through device ${JSON.stringify(device.value)}` : "";
      return (
        `${via.field}: ${via.value} is not in a subnet connected in ${where(via.namespace)} on ${step.host}${through}: ` +
        `no interface there that is up has an address whose subnet holds it (other than as its broadcast address): ` +
        `add such an address to an interface there, or fix ${via.field} ` +
        // The Route a PodNetwork makes per pair of nodes goes via the other node's address as the program gave it.
        "(for a PodNetwork's route to another node: that node's nodeAddress or nodeAddress6, which must be on a link both nodes share)"
      );
    },
  },
  {
    // `ip route add ... dev X` for an interface that is down (IPv6 words it "Nexthop device is not up").
    said: /Device for nexthop is not up|Nexthop device is not up/,
    tell: (_, lookups, step) => {
      const device = lookups.find((l) => l.kind === "interface" && l.field === "device");
      if (!device) return undefined;
      return (
        `${device.field}: interface ${JSON.stringify(device.value)} is down in ${where(device.namespace)} on ${step.host}: ` +
        "bring it up (up: true on its VethPair end or Bridge) or route through another device"
      );
    },
  },
  {
    // `ip -6 route add ... via A` where A is an address of the route's namespace itself.
    said: /Gateway can not be a local address/,
    tell: (_, lookups, step) => {
      const via = lookups.find((l) => l.kind === "gateway");
      if (!via) return undefined;
      return (
        `${via.field}: ${via.value} is an address of ${where(via.namespace)} itself on ${step.host}: ` +
        `a gateway is another host's address: fix ${via.field} (or route by device alone)`
      );
    },
  },
  {
    // `ip addr add <IPv6> dev X` where X has disable_ipv6=1 (or default/all had it when X was made).
    said: /IPv6 is disabled on this device/,
    tell: (_, _lookups, step) => {
      const line = failedLine(step);
      const m = /addr(?:ess)? (?:add|replace|change) '?([0-9a-f:]+\/\d+)'? dev '?([^'\s]+)'?/.exec(line);
      if (!m) return undefined;
      const [, cidr, dev] = m;
      const ns = actsIn(line) ?? actsIn(step.command);
      return (
        `${cidr}: IPv6 is disabled on ${JSON.stringify(dev)} in ${where(ns ?? undefined)} on ${step.host} ` +
        `(net.ipv6.conf.${dev}.disable_ipv6 is 1, or default's was when it was made): switch it on there ` +
        `(sysctl -w net.ipv6.conf.${dev}.disable_ipv6=0${ns ? ` run inside namespace ${JSON.stringify(ns)}` : ""}, and net.ipv6.conf.default.disable_ipv6=0 for what is made later), ` +
        "or give no IPv6 address (no subnet6 or clusterCidr6)"
      );
    },
  },
  {
    // `ip link set dev X master Y` where Y exists but is no bridge.
    said: /RTNETLINK answers: Operation not supported/,
    tell: (_, lookups, step) => {
      const master = / master (\S+)/.exec(failedLine(step))?.[1]?.replace(/^'|'$/g, "");
      const ls = master === undefined ? [] : findIn(lookups, master, step, "bridge");
      if (!ls.length) return undefined;
      const fields = fieldsOf(ls);
      return (
        `${fields}: ${JSON.stringify(ls[0].value)} in ${placesOf(ls)} on ${step.host} is not a bridge: ` +
        `name a Bridge there, or fix ${fields}`
      );
    },
  },
];

/** The tool's words without iproute2's batch bookkeeping ("Command failed -:N"), on one line. */
function toolSaid(stderr: string): string {
  const words = stderr
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !/^Command failed -:\d+$/.test(l))
    .join("; ");
  return words.length > 300 ? `${words.slice(0, 297)}...` : words;
}

/**
 * The message for a step that failed, in terms of the resource's `lookups`:
 * undefined when the failure is not one of the known ones (or names nothing
 * the resource looked up), so the caller keeps its plain form.
 */
export function explainFailure(step: FailedStep, lookups: readonly Lookup[]): string | undefined {
  for (const rule of RULES) {
    const m = rule.said.exec(step.stderr);
    if (!m) continue;
    const told = rule.tell(m[1] ?? m[2] ?? "", lookups, step);
    if (told) return `${told}\n(${rule.by ?? "ip"} said: ${toolSaid(step.stderr)})`;
  }
  return undefined;
}
