import { UNKNOWN } from "../../../../provider/validate";
import { defaultsTable, diffTable } from "./support";

const REPLACED_BY = [
  ["hostPort", 8081],
  ["toAddress", "192.168.15.3"],
  ["toPort", 81],
  ["protocol", "udp"],
  ["inInterface", "eth1"],
  ["namespace", "red"],
  ["fromHost", false],
] as const;

describe("impl/portForward", () => {
  defaultsTable("portForward", [
    {
      what: "toPort = hostPort, tcp, fromHost by default",
      args: { hostPort: 8080, toAddress: "10.0.0.2" },
      expect: { toPort: 8080, protocol: "tcp", fromHost: true },
      absent: ["inInterface", "namespace"],
    },
    {
      what: "given values are kept",
      args: { hostPort: 8080, toAddress: "10.0.0.2", toPort: 80, protocol: "udp", fromHost: false },
      expect: { toPort: 80, protocol: "udp", fromHost: false },
    },
    {
      what: "toPort follows an unknown hostPort",
      args: { hostPort: UNKNOWN, toAddress: "10.0.0.2" },
      expect: { toPort: UNKNOWN },
    },
  ]);

  diffTable("portForward", [
    ...REPLACED_BY.map(([field, value]) => ({ what: `another ${field}`, news: { [field]: value }, expect: [field] })),
    { what: "the host port unknown", news: { hostPort: UNKNOWN }, expect: ["hostPort"] },
    {
      what: "another host port and protocol",
      news: { hostPort: 53, protocol: "udp" },
      expect: ["hostPort", "protocol"],
    },
    { what: "refresh found a rule missing", olds: { missingRules: ["-t nat -A PREROUTING ..."] }, expect: "update" },
    { what: "refresh found a sysctl off", olds: { sysctlsOn: false }, expect: "update" },
    {
      what: "no drift flags in state (an older release's)",
      olds: { missingRules: undefined, sysctlsOn: undefined },
      expect: "none",
    },
  ]);
});
