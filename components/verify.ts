import { overlaps } from "../provider/kernel/cidr";
import { boolean } from "../provider/validate";
import { type NamespacePlan, type NetworkPlan, PlanError, type PortForwardPlan } from "./plan";

/**
 * The reachability matrix an IsolatedNetwork with `verify: true` adds (Mininet's
 * `pingAll`, declared), as plain data: each row becomes a Probe.
 */
export interface ProbePlan {
  /** Unique within the network; the Probe's resource name is `<network>-probe-<key>`. */
  key: string;
  /** Where the check runs; undefined: the host itself. */
  namespace?: string;
  target: string;
  /** Absent: ICMP echo. */
  port?: number;
  expect: "reachable" | "unreachable";
  /** The namespaces whose cable must exist first. */
  needs: string[];
}

/**
 * Every namespace to the gateway and to each other namespace (both ways), and
 * for each port forward the host to the forward's destination. The forward's
 * probe is an ICMP echo: a TCP connect needs a service listening in the
 * namespace, which is not part of the network (add a Probe with `port` for it);
 * the forward's rules are checked by the PortForward's own refresh.
 */
export function probeMatrix(plan: NetworkPlan): ProbePlan[] {
  const rows: ProbePlan[] = [];
  for (const family of families(plan)) {
    for (const from of plan.namespaces) {
      rows.push({
        key: `${from.name}-to-gateway${family.suffix}`,
        namespace: from.name,
        target: family.gateway,
        expect: "reachable",
        needs: [from.name],
      });
      for (const to of plan.namespaces)
        if (to.name !== from.name)
          rows.push({
            key: `${from.name}-to-${to.name}${family.suffix}`,
            namespace: from.name,
            target: family.address(to),
            expect: "reachable",
            needs: [from.name, to.name],
          });
    }
    for (const pf of plan.portForwards)
      rows.push({
        key: `host-to-${pf.protocol}-${pf.hostPort}${family.suffix}`,
        target: family.forwardTarget(pf),
        expect: "reachable",
        needs: [pf.namespace],
      });
  }
  return rows;
}

/**
 * The address families a plan has: IPv4, and IPv6 with `subnet6`. An IPv6
 * row's key is the IPv4 row's with "@ipv6" added: no namespace name or
 * IPv4 key holds an "@".
 */
function families(plan: NetworkPlan) {
  const ipv4 = {
    suffix: "",
    gateway: plan.gateway,
    address: (ns: NamespacePlan) => ns.address,
    forwardTarget: (pf: PortForwardPlan) => pf.toAddress,
  };
  if (plan.gateway6 === undefined) return [ipv4];
  const ipv6 = {
    suffix: "@ipv6",
    gateway: plan.gateway6,
    address: (ns: NamespacePlan) => ns.address6 ?? "",
    forwardTarget: (pf: PortForwardPlan) => pf.toAddress6 ?? "",
  };
  return [ipv4, ipv6];
}

/** Another IsolatedNetwork of the same program on the same host, as isolationProbes sees it. */
export interface NeighbourNetwork {
  /** Its resource name, unique in the program. */
  name: string;
  plan: NetworkPlan;
}

/** An isolation probe; `from` says whose namespace runs it: this network's ("self") or the other's. */
export interface IsolationProbePlan extends ProbePlan {
  from: "self" | "other";
}

/**
 * Between this network and another one on the same host, each namespace of
 * one to the first namespace of the other: expect-unreachable, as the
 * isolation promises, unless the target network's `allowFrom` covers the
 * source's address (then reachable: the probe checks `allowFrom` too). The
 * target is a namespace, not the gateway: the host itself answers for every
 * gateway. `selfVerifies`/`otherVerifies` say whose direction to check (each
 * network's `verify`). The other network is one of the same program: a
 * program cannot know what other stacks made (the isolation itself needs no
 * such knowledge, see kernel/isolation).
 */
export function isolationProbes(
  self: NeighbourNetwork,
  other: NeighbourNetwork,
  selfVerifies: boolean,
  otherVerifies: boolean,
): IsolationProbePlan[] {
  const rows: IsolationProbePlan[] = [];
  const direction = (from: NeighbourNetwork, to: NeighbourNetwork, side: "self" | "other") => {
    const target = to.plan.namespaces[0];
    if (!target) return;
    // IPv6 where both networks have it; a network's IPv6 isolation is the same rules in ip6tables.
    const shared = families(from.plan).filter((f) => families(to.plan).some((g) => g.suffix === f.suffix));
    for (const family of shared)
      for (const source of from.plan.namespaces) {
        const sourceAddress = family.address(source);
        // overlaps: an allowFrom entry of the other family never covers the address.
        const allowed = to.plan.allowFrom.some((cidr) => overlaps(sourceAddress, cidr));
        rows.push({
          // The "/" keeps these keys apart from the matrix's `<ns>-to-<ns>` (a namespace name has none; it may have dots).
          key: `${source.name}-to-${to.name}/${target.name}${family.suffix}`,
          namespace: source.name,
          target: family.address(target),
          expect: allowed ? "reachable" : "unreachable",
          needs: [source.name, target.name],
          from: side,
        });
      }
  };
  // Without outbound NAT a network's namespaces have no default route: nothing of theirs crosses the
  // host either way, so "unreachable" would prove nothing and "reachable" could never hold.
  if (!self.plan.outboundNat || !other.plan.outboundNat) return rows;
  if (selfVerifies) direction(self, other, "self");
  if (otherVerifies) direction(other, self, "other");
  return rows;
}

/** `verify` as given: absent is false; anything but a boolean is refused. */
export function verifyFlag(value: unknown): boolean {
  if (value === undefined || value === null) return false;
  const reason = boolean(value);
  if (reason) throw new PlanError([`verify: ${reason} (true adds the reachability Probes, false or absent none)`]);
  return value as boolean;
}
