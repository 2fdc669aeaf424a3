import type * as pulumi from "@pulumi/pulumi";
import { endpoint } from "../connection";
import { describeRule, isIpv6, type Rule } from "../kernel/iptables";
import type { SysctlKey } from "../kernel/sysctl";
import { PORT_FORWARD } from "../resourceSchemas";
import { forwardCheck } from "./collisions";
import { fromSchema, plain, recordHostKeys, remoteFor } from "./common";
import { forNew } from "./opErrors";
import { createRuleSet, ruleSetResource } from "./ruleSet";
import type { InputsOf, OutputsOf, ProviderOf } from "./types";

export type PortForwardInputs = InputsOf<typeof PORT_FORWARD>;
export type PortForwardOutputs = OutputsOf<typeof PORT_FORWARD>;

export const { check, diff } = fromSchema(PORT_FORWARD, {
  // Two forwards of one host port cannot coexist: the old one goes first.
  deleteBeforeReplace: true,
  // Also state from a release whose rules differ (the replies' accept before its conntrack match): up replaces them.
  drifted: (olds) =>
    (olds.missingRules ?? []).length > 0 ||
    olds.sysctlsOn === false ||
    ((olds.rules ?? []).length > 0 &&
      JSON.stringify(olds.rules) !== JSON.stringify(rulesOf(olds).map((r) => describeRule(r, olds.comment)))),
});

/**
 * DNAT for traffic arriving for the host's own addresses; with `fromHost`,
 * also for connections the host opens to itself (OUTPUT chain), which then
 * need a masquerade so replies come back, and route_localnet for 127.0.0.1.
 *
 * An IPv6 `toAddress` gets the same forward in ip6tables. IPv6 has no
 * route_localnet: the kernel never routes a packet from ::1 off the host, so
 * a connection the host opens to [::1]:hostPort cannot be DNATed to the
 * namespace. With `fromHost`, OUTPUT leaves ::1 alone (it reaches whatever
 * listens on the host itself, or is refused, instead of hanging) and forwards
 * connections to the host's other addresses (global, ULA).
 */
export function rulesOf(i: PortForwardInputs): Rule[] {
  const ipv6 = isIpv6(i.toAddress);
  const proto = ["-p", i.protocol];
  const to = `${i.toAddress}/${ipv6 ? 128 : 32}`;
  const dnat = ["-j", "DNAT", "--to-destination", ipv6 ? `[${i.toAddress}]:${i.toPort}` : `${i.toAddress}:${i.toPort}`];
  const local = ["-m", "addrtype", "--dst-type", "LOCAL"];
  const hostPort = ["-m", i.protocol, "--dport", String(i.hostPort)];
  const toPort = (direction: "--dport" | "--sport") => [...proto, "-m", i.protocol, direction, String(i.toPort)];
  // IPv4 rules carry no family key: their JSON and text stay as they were before IPv6 came.
  const rule = (table: Rule["table"], chain: string, spec: string[], insert?: true): Rule => ({
    table,
    chain,
    ...(insert ? { insert } : {}),
    spec,
    ...(ipv6 ? { family: 6 as const } : {}),
  });
  const rules = [
    rule("nat", "PREROUTING", [
      ...proto,
      ...(i.inInterface ? ["-i", i.inInterface] : []),
      ...local,
      ...hostPort,
      ...dnat,
    ]),
    rule("filter", "FORWARD", ["-d", to, ...toPort("--dport"), "-j", "ACCEPT"], true),
    // Replies only: a LAN host forging the namespace's address and port opens nothing through the host.
    rule(
      "filter",
      "FORWARD",
      ["-s", to, ...toPort("--sport"), "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"],
      true,
    ),
  ];
  if (i.fromHost)
    rules.push(
      rule("nat", "OUTPUT", [...proto, ...(ipv6 ? ["!", "-d", "::1/128"] : []), ...local, ...hostPort, ...dnat]),
      rule("nat", "POSTROUTING", [
        "-d",
        to,
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
      ]),
    );
  // route_localnet=1 (what lets the host's own 127.0.0.1 connections be forwarded) also routes packets
  // addressed to 127.0.0.0/8 that come from outside, so a LAN host could reach services bound to loopback
  // only (kube-proxy's CVE-2020-8558): such packets are dropped unless they belong to a connection
  // (replies) or were DNATed. By the interface, not by kube-proxy's `! -s 127.0.0.0/8`: a LAN host
  // sending from 127.0.0.2 (not a martian once route_localnet is on) got past that (attacker trial).
  if (i.fromHost && !ipv6)
    rules.push(
      rule(
        "filter",
        "INPUT",
        [
          "!",
          "-i",
          "lo",
          "-d",
          "127.0.0.0/8",
          "-m",
          "conntrack",
          "!",
          "--ctstate",
          "RELATED,ESTABLISHED,DNAT",
          "-j",
          "DROP",
        ],
        true,
      ),
    );
  return rules;
}

/**
 * Rules older releases made that this one no longer does: the replies' accept
 * without its conntrack match (it let any packet from the namespace's port
 * through). Update and delete remove them under the same owner comment.
 */
export function formerRulesOf(i: PortForwardInputs): Rule[] {
  // No release made IPv6 forwards before this one's rules.
  if (isIpv6(i.toAddress)) return [];
  const proto = ["-p", i.protocol];
  return [
    {
      table: "filter",
      chain: "FORWARD",
      insert: true,
      spec: ["-s", `${i.toAddress}/32`, ...proto, "-m", i.protocol, "--sport", String(i.toPort), "-j", "ACCEPT"],
    },
  ];
}

/** IPv6 forwarding for an IPv6 forward (no route_localnet: IPv6 has none; rulesOf). */
const sysctlsOf = (i: PortForwardInputs): SysctlKey[] =>
  isIpv6(i.toAddress) ? ["ip6fw"] : i.fromHost ? ["ipfw", "rtlocal"] : ["ipfw"];

async function createRules(inputs: PortForwardInputs): Promise<pulumi.dynamic.CreateResult> {
  const remote = await remoteFor(inputs);
  const ipv6 = isIpv6(inputs.toAddress);
  const forward = {
    ...inputs,
    to: ipv6 ? `[${inputs.toAddress}]:${inputs.toPort}` : `${inputs.toAddress}:${inputs.toPort}`,
  };
  const what = `PortForward of ${inputs.protocol} port ${inputs.hostPort}`;
  // Checked inside the commit that adds the rules: a second forward of the port at the same moment is refused.
  const checks = forwardCheck(remote, what, [forward], inputs.namespace, [], ipv6);
  const state = await createRuleSet(
    remote,
    "pfwd",
    inputs.namespace,
    rulesOf(inputs),
    sysctlsOf(inputs),
    undefined,
    checks,
  );
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

export const create = forNew(createRules);
export const { read, update, remove } = ruleSetResource<PortForwardInputs, PortForwardOutputs>(
  rulesOf,
  sysctlsOf,
  "sysctlsOn",
  formerRulesOf,
);

export const provider: ProviderOf<typeof PORT_FORWARD> = { check, diff, create, read, update, delete: remove };
