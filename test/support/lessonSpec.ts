import type { NetworkSpec } from "../../components/plan";

/** The lesson's network as the README writes it, optionally with more namespaces (addresses planned). */
export function lessonSpec(extraNamespaces: string[] = []): NetworkSpec {
  return {
    bridge: "v-net-0",
    subnet: "192.168.15.0/24",
    gateway: "192.168.15.5",
    namespaces: [
      { name: "red", address: "192.168.15.1" },
      { name: "blue", address: "192.168.15.2" },
      ...extraNamespaces.map((name) => ({ name })),
    ],
    outboundNat: true,
    portForwards: [{ namespace: "blue", hostPort: 8080, port: 80 }],
  };
}
