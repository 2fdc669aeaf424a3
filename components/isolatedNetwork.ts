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
import { type NetworkPlan, type NetworkSpec, planFor, planNetwork } from "./plan";
import { probeMatrix, verifyFlag } from "./verify";

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
  /** With `verify: true`, the reachability Probes, by key ("red-to-blue", "red-to-gateway", "host-to-tcp-8080"). */
  readonly probes: Record<string, Probe>;

  constructor(name: string, args: IsolatedNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("pulumi-netns:index:IsolatedNetwork", name, {}, opts);
    const { plan, verify } = planFor(this, () => ({ plan: planNetwork(args), verify: verifyFlag(args.verify) }));
    this.plan = plan;
    const connection = args.connection;
    const child = { parent: this };

    // First: the host is checked for collisions before anything is made, and
    // the network is kept apart from the host's other IsolatedNetworks.
    const isolation = new NetworkIsolation(
      `${name}-isolation`,
      {
        connection,
        bridge: plan.bridge,
        allowFrom: plan.allowFrom,
        bridgeAddresses: [plan.gatewayCidr],
        hostPorts: plan.portForwards.map((pf) => `${pf.protocol}/${pf.hostPort}`),
      },
      child,
    );
    const bridge = new Bridge(
      `${name}-${plan.bridge}`,
      // The name through the isolation's output: a renamed bridge then makes the engine replace this Bridge
      // (delete first) before the new isolation is made, whose collision check would find the old one's gateway.
      { connection, name: isolation.bridge, addresses: [plan.gatewayCidr], group: ISOLATION_GROUP },
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
            a: { name: ns.vethName, namespace: namespace.name, addresses: [ns.cidr] },
            b: { name: ns.bridgePortName, bridge: bridge.name },
          },
          { ...livesIn(ns.name), dependsOn: [namespace, bridge] },
        ),
      );
    }
    if (plan.outboundNat) {
      new MasqueradeRule(`${name}-nat`, { connection, source: plan.subnet, excludeOutInterface: bridge.name }, child);
      // The kernel removes a route with its device: a replaced VethPair (a renamed
      // end) replaces the route too, in the same up. (A changed address is the
      // VethPair's update, which puts back the routes over the end it re-addresses.)
      for (const ns of plan.namespaces) {
        const cable = cables.get(ns.name)!;
        new Route(
          `${name}-${ns.name}-default`,
          { connection, namespace: ns.name, destination: "default", via: plan.gateway },
          // Replaced create-first with its cable; the old Route's delete then leaves the route its
          // replacement added (impl/route: madeThisOperation). Not deleteBeforeReplace: that would also
          // delete the old host's routes first when the network moves to another host.
          { ...livesIn(ns.name), dependsOn: [cable], replaceWith: [cable] },
        );
      }
    }
    for (const pf of plan.portForwards)
      new PortForward(
        `${name}-${pf.namespace}-${pf.protocol}-${pf.hostPort}`,
        { connection, hostPort: pf.hostPort, toAddress: pf.toAddress, toPort: pf.port, protocol: pf.protocol },
        { ...child, dependsOn: [cables.get(pf.namespace)!] },
      );

    this.probes = {};
    if (verify)
      for (const p of probeMatrix(plan))
        this.probes[p.key] = new Probe(
          `${name}-probe-${p.key}`,
          { connection, namespace: p.namespace, target: p.target, port: p.port, expect: p.expect },
          { ...child, dependsOn: p.needs.map((ns) => cables.get(ns)!) },
        );

    this.bridge = bridge;
    this.namespaces = Object.fromEntries(namespaces);
    this.vethPairs = Object.fromEntries(cables);
    this.bridgeName = bridge.name;
    this.gateway = pulumi.output(plan.gateway);
    this.addresses = pulumi.output(Object.fromEntries(plan.namespaces.map((ns) => [ns.name, ns.address])));
    // The host name is not secret even when the connection holds a secret key.
    this.diagram = pulumi.unsecret(pulumi.output(connection).apply((c) => diagramOf(plan, `host ${c.host}`)));
    this.registerOutputs({
      bridgeName: this.bridgeName,
      gateway: this.gateway,
      addresses: this.addresses,
      diagram: this.diagram,
    });
  }
}
