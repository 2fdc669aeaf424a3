// Pod networking across two hosts, the CKA way (PodNetwork, mode "routes"): on each node a bridge
// holding the first address of the node's pod CIDR, pods as namespaces on it, a host route to the
// other node's pod CIDR via that node's address, forwarding, and NAT only for what leaves the cluster.
// Each node's connection comes from the stack's config (hostA/portA/userA/privateKeyA/hostKeyA and
// hostB/...), as does its address on the link the two hosts share (nodeAddressA, nodeAddressB).
import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";

const cfg = new pulumi.Config();
const connectionOf = (suffix: "A" | "B"): netns.ConnectionArgs => ({
  host: cfg.require(`host${suffix}`),
  port: cfg.getNumber(`port${suffix}`) ?? 22,
  user: cfg.get(`user${suffix}`) ?? "root",
  privateKey: cfg.requireSecret(`privateKey${suffix}`),
  hostKey: cfg.get(`hostKey${suffix}`),
});

// Dual stack, when the config has clusterCidr6 (e.g. fd00:10:244::/56) and the nodes' IPv6
// addresses on the shared link (nodeAddress6A, nodeAddress6B): every pod then has an IPv6 address too.
const clusterCidr6 = cfg.get("clusterCidr6");
const cluster = new netns.PodNetwork("cluster", {
  clusterCidr: "10.244.0.0/16",
  clusterCidr6,
  nodes: [
    {
      name: "node-a",
      connection: connectionOf("A"),
      nodeAddress: cfg.require("nodeAddressA"),
      nodeAddress6: clusterCidr6 ? cfg.require("nodeAddress6A") : undefined,
      pods: [{ name: "web" }, { name: "api" }],
    },
    {
      name: "node-b",
      connection: connectionOf("B"),
      nodeAddress: cfg.require("nodeAddressB"),
      nodeAddress6: clusterCidr6 ? cfg.require("nodeAddress6B") : undefined,
      pods: [{ name: "db" }],
    },
  ],
});

/** Node name -> pod CIDR: derived from the name alone, so nodes coming and going never move another's. */
export const podCidrs = cluster.podCidrs;
/** Pod name -> address. */
export const addresses = cluster.addresses;
/** With clusterCidr6: node name -> IPv6 pod CIDR, and pod name -> IPv6 address (empty without). */
export const podCidrs6 = cluster.podCidrs6;
export const addresses6 = cluster.addresses6;
/** A Mermaid flowchart of the nodes, pods and routes. */
export const diagram = cluster.diagram;
