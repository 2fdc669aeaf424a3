import type * as pulumi from "@pulumi/pulumi";
import { type Connection, endpoint } from "../connection";
import type { Rule } from "../kernel/iptables";
import type { SysctlKey } from "../kernel/sysctl";
import { boolean, interfaceName, ipv4Address, isUnknown, namespaceName, oneOf, port } from "../validate";
import { type BaseOutputs, checkResult, diffConnection, plain, recordHostKeys, remoteFor, startCheck } from "./common";
import { createRuleSet, ruleSetResource } from "./ruleSet";

export interface PortForwardInputs {
  connection: Connection;
  hostPort: number;
  toAddress: string;
  toPort: number;
  protocol: "tcp" | "udp";
  inInterface?: string;
  namespace?: string;
  fromHost: boolean;
}

export interface PortForwardOutputs extends PortForwardInputs, BaseOutputs {
  ruleId: string;
  comment: string;
  rules: string[];
  missingRules: string[];
  sysctlsOn: boolean;
}

export async function check(_olds: unknown, news: Record<string, unknown>): Promise<pulumi.dynamic.CheckResult> {
  const checker = startCheck(news);
  checker.field("hostPort", news.hostPort, port, true);
  checker.field("toAddress", news.toAddress, ipv4Address, true);
  checker.field("toPort", news.toPort, port);
  checker.field("protocol", news.protocol, oneOf("tcp", "udp"));
  checker.field("inInterface", news.inInterface, interfaceName);
  checker.field("namespace", news.namespace, namespaceName);
  checker.field("fromHost", news.fromHost, boolean);
  return checkResult(checker, {
    ...news,
    toPort: news.toPort ?? news.hostPort,
    protocol: news.protocol ?? "tcp",
    fromHost: news.fromHost ?? true,
  });
}

/**
 * DNAT for traffic arriving for the host's own addresses; with `fromHost`,
 * also for connections the host opens to itself (OUTPUT chain), which then
 * need a masquerade so replies come back, and route_localnet for 127.0.0.1.
 */
export function rulesOf(i: PortForwardInputs): Rule[] {
  const proto = ["-p", i.protocol];
  const dnat = ["-j", "DNAT", "--to-destination", `${i.toAddress}:${i.toPort}`];
  const local = ["-m", "addrtype", "--dst-type", "LOCAL"];
  const hostPort = ["-m", i.protocol, "--dport", String(i.hostPort)];
  const rules: Rule[] = [
    {
      table: "nat",
      chain: "PREROUTING",
      spec: [...proto, ...(i.inInterface ? ["-i", i.inInterface] : []), ...local, ...hostPort, ...dnat],
    },
    {
      table: "filter",
      chain: "FORWARD",
      insert: true,
      spec: ["-d", `${i.toAddress}/32`, ...proto, "-m", i.protocol, "--dport", String(i.toPort), "-j", "ACCEPT"],
    },
    {
      table: "filter",
      chain: "FORWARD",
      insert: true,
      spec: ["-s", `${i.toAddress}/32`, ...proto, "-m", i.protocol, "--sport", String(i.toPort), "-j", "ACCEPT"],
    },
  ];
  if (i.fromHost)
    rules.push(
      { table: "nat", chain: "OUTPUT", spec: [...proto, ...local, ...hostPort, ...dnat] },
      {
        table: "nat",
        chain: "POSTROUTING",
        spec: [
          "-d",
          `${i.toAddress}/32`,
          ...proto,
          "-m",
          "addrtype",
          "--src-type",
          "LOCAL",
          "-m",
          i.protocol,
          "--dport",
          String(i.toPort),
          "-j",
          "MASQUERADE",
        ],
      },
    );
  return rules;
}

const sysctlsOf = (i: PortForwardInputs): SysctlKey[] => (i.fromHost ? ["ipfw", "rtlocal"] : ["ipfw"]);

export async function diff(
  _id: string,
  olds: PortForwardOutputs,
  news: PortForwardInputs,
): Promise<pulumi.dynamic.DiffResult> {
  const replaces: string[] = [];
  const conn = diffConnection(olds.connection, news.connection);
  if (conn.replace) replaces.push("connection");
  for (const key of ["hostPort", "toAddress", "toPort", "protocol", "inInterface", "namespace", "fromHost"] as const)
    if (isUnknown(news[key]) || olds[key] !== news[key]) replaces.push(key);
  const drifted = (olds.missingRules ?? []).length > 0 || olds.sysctlsOn === false;
  // Two forwards of one host port cannot coexist: the old one goes first.
  return { changes: replaces.length > 0 || conn.update || drifted, replaces, deleteBeforeReplace: true };
}

export async function create(inputs: PortForwardInputs): Promise<pulumi.dynamic.CreateResult> {
  const remote = await remoteFor(inputs);
  const state = await createRuleSet(remote, "pfwd", inputs.namespace, rulesOf(inputs), sysctlsOf(inputs));
  const outs: PortForwardOutputs = {
    ...inputs,
    ...state,
    missingRules: [],
    sysctlsOn: true,
    knownHostKeys: recordHostKeys(remote),
  };
  return {
    id: `portforward/${inputs.protocol}/${inputs.hostPort}/${state.ruleId}@${endpoint(inputs.connection)}`,
    outs: plain(outs),
  };
}

export const { read, update, remove } = ruleSetResource<PortForwardInputs, PortForwardOutputs>(
  rulesOf,
  sysctlsOf,
  "sysctlsOn",
);
