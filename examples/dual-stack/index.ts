// The lesson's network with an IPv6 side (dual stack): each namespace gets an
// IPv4 address from `subnet` and an IPv6 address from `subnet6`, the bridge
// both gateways, outbound NAT and a default route for each family, and the
// host's port 8080 forwarded to blue's port 80 over IPv4 and IPv6 alike.
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

const lab = new netns.IsolatedNetwork("dual", {
  connection,
  bridge: "v-net-0",
  subnet: "192.168.15.0/24",
  gateway: "192.168.15.5",
  // A unique local network (fd00::/8); the gateway defaults to its ::1.
  subnet6: "fd00:15::/64",
  namespaces: [
    { name: "red", address: "192.168.15.1", address6: "fd00:15::a" },
    { name: "blue", address: "192.168.15.2", address6: "fd00:15::b" },
  ],
  outboundNat: true,
  portForwards: [{ namespace: "blue", hostPort: 8080, port: 80 }],
  // Probes over both families: each namespace to each gateway and to the other, the host to blue.
  verify: true,
});

export const addresses = lab.addresses;
export const addresses6 = lab.addresses6;
export const gateway6 = lab.gateway6;
/** Paste into any Mermaid viewer (GitHub renders ```mermaid blocks). */
export const diagram = lab.diagram;
