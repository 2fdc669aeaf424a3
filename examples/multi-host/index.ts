// One program, two hosts: the same isolated network (bridge, namespaces, NAT,
// port forward) on each. Each host has its own connection from the stack's config
// (hostA/portA/userA/privateKeyA and hostB/...); the resource names tell them apart.
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

const sites = Object.fromEntries(
  (["A", "B"] as const).map((suffix) => [
    suffix,
    new netns.IsolatedNetwork(`site-${suffix.toLowerCase()}`, {
      connection: connectionOf(suffix),
      bridge: "v-net-0",
      subnet: "192.168.15.0/24",
      gateway: "192.168.15.5",
      namespaces: [{ name: "web" }, { name: "db" }],
      outboundNat: true,
      portForwards: [{ namespace: "web", hostPort: 8080, port: 80 }],
    }),
  ]),
);

export const addressesA = sites.A.addresses;
export const addressesB = sites.B.addresses;
export const diagramA = sites.A.diagram;
