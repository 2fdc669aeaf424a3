import { boolean } from "../provider/validate";
import { type NetworkPlan, PlanError } from "./plan";

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
  for (const from of plan.namespaces) {
    rows.push({
      key: `${from.name}-to-gateway`,
      namespace: from.name,
      target: plan.gateway,
      expect: "reachable",
      needs: [from.name],
    });
    for (const to of plan.namespaces)
      if (to.name !== from.name)
        rows.push({
          key: `${from.name}-to-${to.name}`,
          namespace: from.name,
          target: to.address,
          expect: "reachable",
          needs: [from.name, to.name],
        });
  }
  for (const pf of plan.portForwards)
    rows.push({
      key: `host-to-${pf.protocol}-${pf.hostPort}`,
      target: pf.toAddress,
      expect: "reachable",
      needs: [pf.namespace],
    });
  return [...rows, ...isolationProbes(plan)];
}

/**
 * Expect-unreachable probes from this network's namespaces to the host's other
 * IsolatedNetworks would go here. None yet: a probe to another network's
 * gateway is answered by the host itself, so the targets must be the other
 * networks' namespaces, which this plan does not know.
 */
export function isolationProbes(_plan: NetworkPlan): ProbePlan[] {
  return [];
}

/** `verify` as given: absent is false; anything but a boolean is refused. */
export function verifyFlag(value: unknown): boolean {
  if (value === undefined || value === null) return false;
  const reason = boolean(value);
  if (reason) throw new PlanError([`verify: ${reason} (true adds the reachability Probes, false or absent none)`]);
  return value as boolean;
}
