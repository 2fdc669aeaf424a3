import * as pulumi from "@pulumi/pulumi";
import type { ConnectionArgs } from "../provider/connection";
import { ISOLATION_GROUP } from "../provider/kernel/isolation";
import { Bridge } from "../provider/resources/bridge";
import { MasqueradeRule } from "../provider/resources/masqueradeRule";
import { Namespace } from "../provider/resources/namespace";
import { NetworkIsolation } from "../provider/resources/networkIsolation";
import { PortForward } from "../provider/resources/portForward";
import { Probe } from "../provider/resources/probe";
import { Route } from "../provider/resources/route";
import { VethPair } from "../provider/resources/vethPair";
import { diagramOf } from "./diagram";
import { childOptions, type NetworkPlan, type NetworkSpec, PlanError, planFor, planNetwork } from "./plan";
import { isolationProbes, type NeighbourNetwork, probeMatrix, verifyFlag } from "./verify";

/**
 * The host a connection names, when the program gave it as plain values (host,
 * port, user and jump hosts not Outputs): two networks with the same one are
 * on one host. Undefined when it cannot be told before the engine runs.
 */
function plainHostOf(connection: unknown): string | undefined {
  if (typeof connection !== "object" || connection === null || pulumi.Output.isInstance(connection)) return undefined;
  const c = connection as Record<string, unknown>;
  if (typeof c.host !== "string") return undefined;
  if (c.port !== undefined && typeof c.port !== "number") return undefined;
  if (c.user !== undefined && typeof c.user !== "string") return undefined;
  const proxy = c.proxy === undefined ? null : plainHostOf(c.proxy);
  if (proxy === undefined) return undefined;
  return JSON.stringify([c.host, c.port ?? 22, c.user ?? "root", proxy]);
}

/** The IsolatedNetworks this program has declared so far, by host (plainHostOf): each later one probes the earlier. */
const declaredByHost = new Map<
  string,
  Array<
    NeighbourNetwork & {
      verify: boolean;
      cables: Map<string, VethPair>;
      /** Everything its traffic needs (isolation, bridge, cables, NAT, routes): a probe between networks waits for all. */
      paths: pulumi.Resource[];
      probes: Record<string, Probe>;
    }
  >
>();

/** A bridge or namespace name another IsolatedNetwork of the program already has on the same host. */
function sameNames(plan: NetworkPlan, earlier: NeighbourNetwork[]): string[] {
  const problems: string[] = [];
  for (const other of earlier) {
    if (other.plan.bridge === plan.bridge)
      problems.push(
        `bridge: ${JSON.stringify(plan.bridge)} is also IsolatedNetwork "${other.name}"'s bridge on this host; give each network its own`,
      );
    for (const [i, ns] of plan.namespaces.entries())
      if (other.plan.namespaces.some((o) => o.name === ns.name))
        problems.push(
          `namespaces[${i}].name: ${JSON.stringify(ns.name)} is also a namespace of IsolatedNetwork "${other.name}" on this host; namespace names are the host's`,
        );
  }
  return problems;
}

/** What an IsolatedNetwork is made of (see NetworkSpec), and the host it is made on. */
export interface IsolatedNetworkArgs extends NetworkSpec {
  connection: pulumi.Input<ConnectionArgs>;
}

/**
 * The lesson's network as one resource: a bridge with the gateway address,
 * per namespace a Namespace and a VethPair to the bridge, outbound NAT with a
 * default route per namespace, and port forwards. The plan (names and
 * addresses) is computed first as plain data; see `planNetwork`.
 */
export class IsolatedNetwork extends pulumi.ComponentResource {
  readonly bridgeName: pulumi.Output<string>;
  readonly gateway: pulumi.Output<string>;
  /** Namespace name -> address (without prefix). */
  readonly addresses: pulumi.Output<Record<string, string>>;
  /** Dual stack (`subnet6`): the bridge's IPv6 address; undefined without subnet6. */
  readonly gateway6: pulumi.Output<string | undefined>;
  /** Dual stack: namespace name -> IPv6 address (without prefix); empty without subnet6. */
  readonly addresses6: pulumi.Output<Record<string, string>>;
  /** A Mermaid flowchart of the topology. */
  readonly diagram: pulumi.Output<string>;
  /** The plan the resources were made from. */
  readonly plan: NetworkPlan;
  /** The bridge it made, for other resources to depend on. */
  readonly bridge: Bridge;
  /** The Namespace it made for each namespace, by name (`net.namespaces["red"]`). */
  readonly namespaces: Record<string, Namespace>;
  /** The VethPair from each namespace to the bridge, by namespace name. */
  readonly vethPairs: Record<string, VethPair>;
  /**
   * With `verify: true`, the reachability Probes, by key ("red-to-blue", "red-to-gateway", "host-to-tcp-8080";
   * IPv6 ones with "@ipv6" added; isolation from another network of the program "red-to-<network>/<namespace>").
   */
  readonly probes: Record<string, Probe>;

  constructor(name: string, args: IsolatedNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("pulumi-netns:index:IsolatedNetwork", name, {}, opts);
    const host = plainHostOf(args.connection);
    const earlier = host === undefined ? [] : (declaredByHost.get(host) ?? []);
    const { plan, verify } = planFor(this, () => {
      const planned = { plan: planNetwork(args), verify: verifyFlag(args.verify) };
      const clashes = sameNames(planned.plan, earlier);
      if (clashes.length) throw new PlanError(clashes);
      return planned;
    });
    this.plan = plan;
    const connection = args.connection;
    const paths: pulumi.Resource[] = [];
    const child = childOptions(this, opts);
    const bridgeAddresses = [plan.gatewayCidr, ...(plan.gateway6Cidr ? [plan.gateway6Cidr] : [])];

    // First: the host is checked for collisions before anything is made, and
    // the network is kept apart from the host's other IsolatedNetworks.
    const isolation = new NetworkIsolation(
      `${name}-isolation`,
      {
        connection,
        bridge: plan.bridge,
        allowFrom: plan.allowFrom,
        bridgeAddresses: bridgeAddresses,
        hostPorts: plan.portForwards.map((pf) => `${pf.protocol}/${pf.hostPort}`),
      },
      child,
    );
    const bridge = new Bridge(
      `${name}-${plan.bridge}`,
      // The name through the isolation's output: a renamed bridge then makes the engine replace this Bridge
      // (delete first) before the new isolation is made, whose collision check would find the old one's gateway.
      { connection, name: isolation.bridge, addresses: bridgeAddresses, group: ISOLATION_GROUP },
      { ...child, dependsOn: [isolation] },
    );
    const cables = new Map<string, VethPair>();
    const namespaces = new Map<string, Namespace>();
    // What lives in a namespace goes with it: deleting the namespace takes its
    // veth end (and so the peer on the bridge) and its routes, far more cheaply
    // than deleting each link (a link delete waits for an RCU grace period).
    const livesIn = (ns: string) => ({ ...child, deletedWith: namespaces.get(ns) });
    for (const ns of plan.namespaces) {
      const namespace = new Namespace(
        `${name}-${ns.name}`,
        { connection, name: ns.name },
        { ...child, dependsOn: [bridge] },
      );
      namespaces.set(ns.name, namespace);
      cables.set(
        ns.name,
        new VethPair(
          `${name}-${ns.name}-veth`,
          {
            connection,
            a: { name: ns.vethName, namespace: namespace.name, addresses: [ns.cidr, ...(ns.cidr6 ? [ns.cidr6] : [])] },
            b: { name: ns.bridgePortName, bridge: bridge.name },
          },
          { ...livesIn(ns.name), dependsOn: [namespace, bridge] },
        ),
      );
    }
    if (plan.outboundNat) {
      // Its FORWARD accepts take the subnet's sources only from the bridge: a forged source from the LAN is not forwarded.
      const nat = new MasqueradeRule(
        `${name}-nat`,
        { connection, source: plan.subnet, excludeOutInterface: bridge.name, inInterface: bridge.name },
        child,
      );
      paths.push(nat);
      if (plan.subnet6)
        paths.push(
          new MasqueradeRule(
            `${name}-nat6`,
            { connection, source: plan.subnet6, excludeOutInterface: bridge.name, inInterface: bridge.name },
            child,
          ),
        );
      // The kernel removes a route with its device: a replaced VethPair (a renamed
      // end) replaces the route too, in the same up. (A changed address is the
      // VethPair's update, which puts back the routes over the end it re-addresses.)
      for (const ns of plan.namespaces) {
        const cable = cables.get(ns.name)!;
        const route = new Route(
          `${name}-${ns.name}-default`,
          { connection, namespace: ns.name, destination: "default", via: plan.gateway },
          // Replaced create-first with its cable; the old Route's delete then leaves the route its
          // replacement added (impl/route: madeThisOperation). Not deleteBeforeReplace: that would also
          // delete the old host's routes first when the network moves to another host.
          { ...livesIn(ns.name), dependsOn: [cable], replaceWith: [cable] },
        );
        paths.push(route);
        if (plan.gateway6)
          paths.push(
            new Route(
              `${name}-${ns.name}-default6`,
              { connection, namespace: ns.name, destination: "default6", via: plan.gateway6 },
              { ...livesIn(ns.name), dependsOn: [cable], replaceWith: [cable] },
            ),
          );
      }
    }
    for (const pf of plan.portForwards)
      for (const [suffix, toAddress] of [
        ["", pf.toAddress],
        ["-ipv6", pf.toAddress6],
      ])
        if (toAddress)
          // Named by the host port, which the network forwards once: a forward moved to another namespace
          // (one renamed, whose derived addresses change with its name) is then this resource replaced,
          // the old rule deleted first, not a second forward of the port refused beside the first. The
          // alias is its name before (with the namespace's), so a stack made then keeps it.
          new PortForward(
            `${name}-${pf.protocol}-${pf.hostPort}${suffix}`,
            { connection, hostPort: pf.hostPort, toAddress, toPort: pf.port, protocol: pf.protocol },
            {
              ...child,
              dependsOn: [cables.get(pf.namespace)!],
              aliases: [{ name: `${name}-${pf.namespace}-${pf.protocol}-${pf.hostPort}${suffix}` }],
            },
          );

    this.probes = {};
    if (verify)
      for (const p of probeMatrix(plan))
        this.probes[p.key] = new Probe(
          `${name}-probe-${p.key}`,
          { connection, namespace: p.namespace, target: p.target, port: p.port, expect: p.expect },
          { ...child, dependsOn: p.needs.map((ns) => cables.get(ns)!) },
        );

    // Isolation from the program's other networks on this host, both ways, each direction if its
    // network verifies (verify.ts isolationProbes). Made here, by the later network of each pair: the
    // earlier one could not know this one. The earlier network's probes go into its own `probes`.
    paths.push(isolation, bridge, ...cables.values());
    for (const other of earlier)
      for (const p of isolationProbes({ name, plan }, other, verify, other.verify)) {
        const probe = new Probe(
          `${name}-probe-${p.key}`,
          { connection, namespace: p.namespace, target: p.target, expect: p.expect },
          // The whole path both ways (routes and NAT accepts too): a probe run early would see what is not built yet.
          { ...child, dependsOn: [...paths, ...other.paths] },
        );
        (p.from === "self" ? this.probes : other.probes)[p.key] = probe;
      }
    if (host !== undefined)
      declaredByHost.set(host, [...earlier, { name, plan, verify, cables, paths, probes: this.probes }]);

    this.bridge = bridge;
    this.namespaces = Object.fromEntries(namespaces);
    this.vethPairs = Object.fromEntries(cables);
    this.bridgeName = bridge.name;
    this.gateway = pulumi.output(plan.gateway);
    this.addresses = pulumi.output(Object.fromEntries(plan.namespaces.map((ns) => [ns.name, ns.address])));
    this.gateway6 = pulumi.output(plan.gateway6);
    this.addresses6 = pulumi.output(
      Object.fromEntries(plan.namespaces.flatMap((ns) => (ns.address6 ? [[ns.name, ns.address6]] : []))),
    );
    // The host name is not secret even when the connection holds a secret key.
    this.diagram = pulumi.unsecret(pulumi.output(connection).apply((c) => diagramOf(plan, `host ${c.host}`)));
    this.registerOutputs({
      bridgeName: this.bridgeName,
      gateway: this.gateway,
      addresses: this.addresses,
      gateway6: this.gateway6,
      addresses6: this.addresses6,
      diagram: this.diagram,
    });
  }
}
