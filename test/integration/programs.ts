/** Pulumi programs for the integration tests, as source text (they run from the scratch project). */
export const HEADER = `
import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";

const cfg = new pulumi.Config();
const connection = {
  host: cfg.require("host"),
  port: cfg.requireNumber("port"),
  user: "root",
  privateKey: cfg.requireSecret("privateKey"),
};
`;

export function program(body: string): string {
  return `${HEADER}\n${body}\n`;
}

/** The lesson's first network: red and blue joined by one veth pair. */
export const DIRECT = `
const red = new netns.Namespace("red", { connection, name: "red" });
const blue = new netns.Namespace("blue", { connection, name: "blue" });
const cable = new netns.VethPair("red-blue", {
  connection,
  a: { name: "veth-red", namespace: red.name, addresses: ["192.168.15.1/24"] },
  b: { name: "veth-blue", namespace: blue.name, addresses: ["192.168.15.2/24"] },
});
export const blueMac = cable.b.mac;
`;

/** The bridge version: v-net-0 at 192.168.15.5/24, both namespaces on it. Options add the lesson's later steps. */
export function bridged(
  opts: {
    lanRoute?: boolean;
    nat?: boolean;
    redDefault?: boolean;
    portForward?: boolean;
    redAddresses?: string[];
    routeMetric?: number;
    withoutCables?: boolean;
  } = {},
): string {
  const redAddresses = JSON.stringify(opts.redAddresses ?? ["192.168.15.1/24"]);
  const start = `
const red = new netns.Namespace("red", { connection, name: "red" });
const blue = new netns.Namespace("blue", { connection, name: "blue" });
const bridge = new netns.Bridge("v-net-0", { connection, name: "v-net-0", addresses: ["192.168.15.5/24"] });
export const bridgeMac = bridge.mac;
`;
  if (opts.withoutCables) return start;
  let body = `${start}
const redCable = new netns.VethPair("red-br", {
  connection,
  a: { name: "veth-red", namespace: red.name, addresses: ${redAddresses} },
  b: { name: "veth-red-br", bridge: bridge.name },
});
const blueCable = new netns.VethPair("blue-br", {
  connection,
  a: { name: "veth-blue", namespace: blue.name, addresses: ["192.168.15.2/24"] },
  b: { name: "veth-blue-br", bridge: bridge.name },
});
export const redMac = redCable.a.mac;
`;
  if (opts.lanRoute)
    body += `
new netns.Route("blue-to-lan", { connection, namespace: "blue", destination: "203.0.113.0/24", via: "192.168.15.5", metric: ${opts.routeMetric ?? 0} }, { dependsOn: [blueCable] });
`;
  if (opts.nat)
    body += `
new netns.MasqueradeRule("nat", { connection, source: "192.168.15.0/24", excludeOutInterface: "v-net-0" }, { dependsOn: [bridge] });
`;
  if (opts.redDefault)
    body += `
new netns.Route("red-default", { connection, namespace: "red", destination: "default", via: "192.168.15.5" }, { dependsOn: [redCable] });
`;
  if (opts.portForward)
    body += `
new netns.PortForward("web", { connection, hostPort: 8080, toAddress: "192.168.15.2", toPort: 80 }, { dependsOn: [blueCable] });
`;
  return body;
}
