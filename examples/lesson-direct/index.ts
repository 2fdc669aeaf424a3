// The lesson's first network: two namespaces, red and blue, joined by one
// virtual cable (a veth pair), each end addressed in 192.168.15.0/24.
//
//   ip netns add red; ip netns add blue
//   ip link add veth-red type veth peer name veth-blue
//   ip link set veth-red netns red; ip link set veth-blue netns blue
//   ip -n red addr add 192.168.15.1/24 dev veth-red; ip -n blue addr add 192.168.15.2/24 dev veth-blue
//   ip -n red link set veth-red up; ip -n blue link set veth-blue up
import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";

const cfg = new pulumi.Config();
const connection: netns.ConnectionArgs = {
  host: cfg.require("host"),
  port: cfg.getNumber("port") ?? 22,
  user: cfg.get("user") ?? "root",
  privateKey: cfg.requireSecret("privateKey"),
  hostKey: cfg.get("hostKey"),
};

const red = new netns.Namespace("red", { connection, name: "red" });
const blue = new netns.Namespace("blue", { connection, name: "blue" });

const cable = new netns.VethPair("red-blue", {
  connection,
  a: { name: "veth-red", namespace: red.name, addresses: ["192.168.15.1/24"] },
  b: { name: "veth-blue", namespace: blue.name, addresses: ["192.168.15.2/24"] },
});

// After `ip netns exec red ping 192.168.15.2`, red's ARP table holds this MAC.
export const redMac = cable.a.mac;
export const blueMac = cable.b.mac;
