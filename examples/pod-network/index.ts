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

const cluster = new netns.PodNetwork("cluster", {
  clusterCidr: "10.244.0.0/16",
  nodes: [
    {
      name: "node-a",
      connection: connectionOf("A"),
      nodeAddress: cfg.require("nodeAddressA"),
      pods: [{ name: "web" }, { name: "api" }],
    },
    { name: "node-b", connection: connectionOf("B"), nodeAddress: cfg.require("nodeAddressB"), pods: [{ name: "db" }] },
  ],
});

/** Node name -> pod CIDR: derived from the name alone, so nodes coming and going never move another's. */
export const podCidrs = cluster.podCidrs;
/** Pod name -> address. */
export const addresses = cluster.addresses;
/** A Mermaid flowchart of the nodes, pods and routes. */
export const diagram = cluster.diagram;
