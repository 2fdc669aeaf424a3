// The lesson's network as one component: IsolatedNetwork plans the names and
// addresses, then creates the bridge, a namespace and a veth pair per entry,
// NAT with a default route in each namespace, and the port forwards. Here a
// third namespace, green, joins red and blue with an address derived from its name.
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

const lab = new netns.IsolatedNetwork("lesson", {
  connection,
  bridge: "v-net-0",
  subnet: "192.168.15.0/24",
  gateway: "192.168.15.5",
  namespaces: [
    { name: "red", address: "192.168.15.1" },
    { name: "blue", address: "192.168.15.2" },
    { name: "green" }, // address chosen by the planner, stable as the list changes
  ],
  outboundNat: true,
  portForwards: [{ namespace: "blue", hostPort: 8080, port: 80 }],
  // Probes (Mininet's pingAll, declared): every namespace to the gateway and to each other, and the
  // host to blue (the forward's destination). The up fails if one does not answer.
  verify: true,
});

export const addresses = lab.addresses;
export const gateway = lab.gateway;
export const bridgeName = lab.bridgeName;
/** Paste into any Mermaid viewer (GitHub renders ```mermaid blocks). */
export const diagram = lab.diagram;
/** red -> blue round trip (ms), as the probe measured it. */
export const redToBlueRttMs = lab.probes["red-to-blue"].rttMs;
