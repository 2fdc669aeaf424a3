import * as pulumi from "@pulumi/pulumi";
import type { ConnectionArgs } from "../provider/connection";
import { Bridge } from "../provider/resources/bridge";
import { MasqueradeRule } from "../provider/resources/masqueradeRule";
import { Namespace } from "../provider/resources/namespace";
import { Route } from "../provider/resources/route";
import { VethPair } from "../provider/resources/vethPair";
import { Vxlan } from "../provider/resources/vxlan";
import { childOptions, planFor } from "./plan";
import { podDiagramOf } from "./podDiagram";
import { type NodePlan, type PodNetworkPlan, type PodNetworkSpec, planPodNetwork } from "./podPlan";

/** A PodNetwork's nodes: the plain data of PodNetworkSpec, and the host each node is. */
export interface PodNetworkArgs extends Omit<PodNetworkSpec, "nodes"> {
  nodes: Array<PodNetworkSpec["nodes"][number] & { connection: pulumi.Input<ConnectionArgs> }>;
}

/**
 * Pod networking across hosts, the CKA way (mode "routes"): on every node a
 * bridge holding the first address of the node's pod CIDR, each pod a
 * namespace on it with a route to the bridge, a host route to every other
 * node's pod CIDR via that node's address, and forwarding; with outboundNat,
 * MASQUERADE of what leaves clusterCidr only, so pods see each other's own
 * addresses. Mode "vxlan" replaces the node routes by an overlay: a VXLAN
 * port on every node's bridge, the other nodes its unicast peers, the pods'
 * MTU lowered by the encapsulation (see NodeVxlanPlan). The plan is computed
 * first as plain data; see `planPodNetwork`.
 */
export class PodNetwork extends pulumi.ComponentResource {
  /** Node name -> pod CIDR. */
  readonly podCidrs: pulumi.Output<Record<string, string>>;
  /** Pod name -> address (without prefix). */
  readonly addresses: pulumi.Output<Record<string, string>>;
  /** Dual stack (clusterCidr6): node name -> IPv6 pod CIDR; empty without clusterCidr6. */
  readonly podCidrs6: pulumi.Output<Record<string, string>>;
  /** Dual stack: pod name -> IPv6 address (without prefix); empty without clusterCidr6. */
  readonly addresses6: pulumi.Output<Record<string, string>>;
  /** A Mermaid flowchart of the nodes, pods and routes. */
  readonly diagram: pulumi.Output<string>;
  readonly plan: PodNetworkPlan;
  /** The Namespace of each pod, by pod name. */
  readonly pods: Record<string, Namespace>;

  constructor(name: string, args: PodNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("pulumi-netns:index:PodNetwork", name, {}, opts);
    const plan = planFor(this, () => planPodNetwork(args));
    this.plan = plan;
    const child = childOptions(this, opts);
    const pods: Record<string, Namespace> = {};
    for (const [i, node] of plan.nodes.entries()) {
      const connection = args.nodes[i].connection;
      const at = `${name}-${node.name}`;
      // Other nodes' pods open connections to this node's pods: the bridge lets the cluster's sources in.
      const bridge = new Bridge(
        `${at}-bridge`,
        {
          connection,
          name: plan.bridge,
          addresses: [node.bridgeCidr, ...(node.bridgeCidr6 ? [node.bridgeCidr6] : [])],
          forwardFrom: [plan.clusterCidr, ...(plan.clusterCidr6 ? [plan.clusterCidr6] : [])],
        },
        child,
      );
      for (const pod of node.pods) {
        const namespace = new Namespace(`${at}-${pod.name}`, { connection, name: pod.name }, child);
        pods[pod.name] = namespace;
        // What lives in a pod goes with it (as in IsolatedNetwork).
        const livesIn = { ...child, deletedWith: namespace };
        const cable = new VethPair(
          `${at}-${pod.name}-veth`,
          {
            connection,
            a: {
              name: pod.vethName,
              namespace: namespace.name,
              addresses: [pod.cidr, ...(pod.cidr6 ? [pod.cidr6] : [])],
            },
            b: { name: pod.bridgePortName, bridge: bridge.name },
            ...(node.podMtu !== undefined ? { mtu: node.podMtu } : {}),
          },
          { ...livesIn, dependsOn: [namespace, bridge] },
        );
        new Route(
          `${at}-${pod.name}-route`,
          { connection, namespace: pod.name, destination: node.podRouteDestination, via: node.bridgeAddress },
          { ...livesIn, dependsOn: [cable], replaceWith: [cable] },
        );
        if (node.podRouteDestination6)
          new Route(
            `${at}-${pod.name}-route6`,
            { connection, namespace: pod.name, destination: node.podRouteDestination6, via: node.bridgeAddress6 },
            { ...livesIn, dependsOn: [cable], replaceWith: [cable] },
          );
      }
      // Mode vxlan: the overlay is a port of the bridge; node.routes is empty (see NodeVxlanPlan).
      if (node.vxlan)
        new Vxlan(
          `${at}-vxlan`,
          {
            connection,
            name: node.vxlan.name,
            vni: node.vxlan.vni,
            dstPort: node.vxlan.dstPort,
            local: node.vxlan.local,
            remotes: node.vxlan.remotes,
            bridge: bridge.name,
            mtu: node.vxlan.mtu,
          },
          { ...child, dependsOn: [bridge] },
        );
      for (const [routes, suffix] of [
        [node.routes, ""],
        [node.routes6, "-ipv6"],
      ] as const)
        for (const r of routes)
          new Route(`${at}-to-${r.toNode}${suffix}`, { connection, destination: r.destination, via: r.via }, child);
      // Forwarding is what routes mode needs on every node; MasqueradeRule is what switches it on
      // (and puts it back), and its FORWARD accepts let this node's pods out where the policy is DROP:
      // only from the bridge (inInterface), so a LAN host forging a pod address is not forwarded.
      // Without outboundNat the MASQUERADE matches only traffic leaving the cluster through the bridge,
      // which never happens: forwarding, no NAT.
      // Dual stack: the same for IPv6 (ip6tables; it switches IPv6 forwarding on and puts it back).
      const families: Array<[string, NodePlan["masquerade"], string]> = [[plan.clusterCidr, node.masquerade, ""]];
      if (plan.clusterCidr6) families.push([plan.clusterCidr6, node.masquerade6, "6"]);
      for (const [cluster, masquerade, suffix] of families)
        new MasqueradeRule(
          `${at}-forward${suffix}`,
          masquerade
            ? {
                connection,
                source: masquerade.source,
                excludeDestination: masquerade.exceptDestination,
                inInterface: plan.bridge,
              }
            : {
                connection,
                source: cluster,
                outInterface: plan.bridge,
                excludeDestination: cluster,
                inInterface: plan.bridge,
              },
          { ...child, dependsOn: [bridge] },
        );
    }
    this.pods = pods;
    this.podCidrs = pulumi.output(Object.fromEntries(plan.nodes.map((n) => [n.name, n.podCidr])));
    this.addresses = pulumi.output(
      Object.fromEntries(plan.nodes.flatMap((n) => n.pods.map((p) => [p.name, p.address]))),
    );
    this.podCidrs6 = pulumi.output(
      Object.fromEntries(plan.nodes.flatMap((n) => (n.podCidr6 ? [[n.name, n.podCidr6]] : []))),
    );
    this.addresses6 = pulumi.output(
      Object.fromEntries(plan.nodes.flatMap((n) => n.pods.flatMap((p) => (p.address6 ? [[p.name, p.address6]] : [])))),
    );
    this.diagram = pulumi.output(podDiagramOf(plan));
    this.registerOutputs({
      podCidrs: this.podCidrs,
      addresses: this.addresses,
      podCidrs6: this.podCidrs6,
      addresses6: this.addresses6,
      diagram: this.diagram,
    });
  }
}
