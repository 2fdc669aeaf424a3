// The whole lesson, one resource per step:
//   namespaces red and blue; a bridge v-net-0 with the host's address 192.168.15.5/24;
//   a veth pair per namespace from the namespace to the bridge; a route from blue to
//   the LAN and default routes via the bridge; outbound NAT
//   (iptables -t nat -A POSTROUTING -s 192.168.15.0/24 ! -o v-net-0 -j MASQUERADE)
//   with IP forwarding; and a port forward of the host's port 8080 to blue's port 80.
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
/** The LAN behind the host (the lesson's 192.168.1.0/24). */
const lanSubnet = cfg.get("lanSubnet") ?? "192.168.1.0/24";

const red = new netns.Namespace("red", { connection, name: "red" });
const blue = new netns.Namespace("blue", { connection, name: "blue" });

const bridge = new netns.Bridge("v-net-0", { connection, name: "v-net-0", addresses: ["192.168.15.5/24"] });

const redCable = new netns.VethPair("red-br", {
  connection,
  a: { name: "veth-red", namespace: red.name, addresses: ["192.168.15.1/24"] },
  b: { name: "veth-red-br", bridge: bridge.name },
});
const blueCable = new netns.VethPair("blue-br", {
  connection,
  a: { name: "veth-blue", namespace: blue.name, addresses: ["192.168.15.2/24"] },
  b: { name: "veth-blue-br", bridge: bridge.name },
});

// ip netns exec blue ip route add 192.168.1.0/24 via 192.168.15.5
new netns.Route(
  "blue-to-lan",
  { connection, namespace: "blue", destination: lanSubnet, via: "192.168.15.5" },
  // A replaced cable takes the route with it in the kernel: replace the route too, in the same up.
  { dependsOn: [blueCable], replaceWith: [blueCable] },
);
// ip netns exec <ns> ip route add default via 192.168.15.5
for (const [name, cable] of [
  ["red", redCable],
  ["blue", blueCable],
] as const)
  new netns.Route(
    `${name}-default`,
    { connection, namespace: name, destination: "default", via: "192.168.15.5" },
    { dependsOn: [cable], replaceWith: [cable] },
  );

// iptables -t nat -A POSTROUTING -s 192.168.15.0/24 ! -o v-net-0 -j MASQUERADE (and net.ipv4.ip_forward=1)
new netns.MasqueradeRule("nat", { connection, source: "192.168.15.0/24", excludeOutInterface: bridge.name });

// iptables -t nat -A PREROUTING -p tcp --dport 8080 -j DNAT --to-destination 192.168.15.2:80
new netns.PortForward(
  "web",
  { connection, hostPort: 8080, toAddress: "192.168.15.2", toPort: 80 },
  { dependsOn: [blueCable] },
);

export const bridgeMac = bridge.mac;
export const redMac = redCable.a.mac;
export const blueMac = blueCable.a.mac;
