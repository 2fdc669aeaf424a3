import type * as pulumi from "@pulumi/pulumi";
import * as bridge from "../../provider/impl/bridge";
import * as masqueradeRule from "../../provider/impl/masqueradeRule";
import * as namespace from "../../provider/impl/namespace";
import * as portForward from "../../provider/impl/portForward";
import * as route from "../../provider/impl/route";
import * as vethPair from "../../provider/impl/vethPair";
import * as vxlan from "../../provider/impl/vxlan";
/**
 * Hostile and impossible inputs, one row per (resource, field, value). Every
 * row must fail at check with a failure whose property is `property` and whose
 * reason shows the value (or, for secret fields, never shows it).
 */

export type ResourceKind = "namespace" | "vethPair" | "bridge" | "route" | "masqueradeRule" | "portForward" | "vxlan";

/** The exported class name of each resource (for programs). */
export const CLASS_OF: Record<ResourceKind, string> = {
  namespace: "Namespace",
  vethPair: "VethPair",
  bridge: "Bridge",
  route: "Route",
  masqueradeRule: "MasqueradeRule",
  portForward: "PortForward",
  vxlan: "Vxlan",
};

export interface HostileCase {
  resource: ResourceKind;
  /** The failure's expected property, e.g. "a.addresses[0]" or "connection.proxy.host". */
  property: string;
  value: unknown;
  /** Args without `connection` (that comes from `connection`). */
  args: Record<string, unknown>;
  /** Overrides merged into a valid connection (a key set to undefined is removed). */
  connection: Record<string, unknown>;
  /** A secret field: the value must NOT appear in the reason. */
  secret?: boolean;
  /** What must appear in the reason instead of the value (missing values). */
  expect?: string;
  /** For secret rows: the text that must not appear (default: the value's own text). */
  hidden?: string;
}

/** A syntactically valid connection; check never dials it. */
export const VALID_CONNECTION = {
  host: "198.18.0.2",
  port: 22,
  user: "root",
  privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
};

export const VALID_ARGS: Record<ResourceKind, Record<string, unknown>> = {
  namespace: { name: "red" },
  vethPair: {
    a: { name: "veth-red", namespace: "red", addresses: ["192.168.15.1/24"] },
    b: { name: "veth-red-br", bridge: "v-net-0" },
    mtu: 1500,
  },
  bridge: { name: "v-net-0", addresses: ["192.168.15.5/24"], mtu: 1500, forwardFrom: ["10.244.0.0/16"] },
  route: { destination: "192.168.1.0/24", via: "192.168.15.5", device: "veth-blue", namespace: "blue", metric: 10 },
  masqueradeRule: {
    source: "192.168.15.0/24",
    outInterface: "eth0",
    namespace: "red",
    inInterface: "v-net-0",
    excludeDestination: "10.244.0.0/16",
  },
  portForward: { hostPort: 8080, toAddress: "192.168.15.2", toPort: 80, protocol: "tcp", inInterface: "eth0" },
  vxlan: {
    name: "vxlan0",
    vni: 1,
    local: "192.0.2.1",
    remotes: ["192.0.2.2"],
    device: "eth1",
    bridge: "v-net-0",
    mtu: 1450,
  },
};

export type Check = (olds: unknown, news: Record<string, unknown>) => Promise<pulumi.dynamic.CheckResult>;

/** Each resource's check, as the provider host calls it. */
export const CHECKS: Record<ResourceKind, Check> = {
  namespace: namespace.check,
  vethPair: vethPair.check,
  bridge: bridge.check,
  route: route.check,
  masqueradeRule: masqueradeRule.check,
  portForward: portForward.check,
  vxlan: vxlan.check,
};

const RESOURCES_ALL = Object.keys(VALID_ARGS) as ResourceKind[];

const long = (n: number, c = "a") => c.repeat(n);

/** Not interface names (IFNAMSIZ, charset, reserved, shell and option syntax, wrong types). */
export const BAD_INTERFACE_NAMES: unknown[] = [
  "",
  long(16),
  long(300),
  "lo",
  "all",
  "default",
  ".",
  "..",
  "-x",
  "--help",
  "a b",
  "a/b",
  "../../etc",
  "a:b",
  "$(id)",
  "`id`",
  "a;reboot",
  "a|b",
  "a&b",
  "a>b",
  "a\nb",
  "veth\n",
  "a\tb",
  "a\0b",
  "é",
  "a\u202eb",
  "'",
  '"',
  "*",
  42,
  true,
  {},
  ["veth-red"],
];

/** Not namespace names (path separators, dot files, options, metacharacters, lengths, types). */
export const BAD_NAMESPACE_NAMES: unknown[] = [
  "",
  long(65),
  ".",
  "..",
  "../etc",
  "a/b",
  "/run/netns/x",
  "-n",
  "--all",
  ".hidden",
  "$(reboot)",
  "`id`",
  "a;b",
  "a b",
  "red\n",
  "a\0b",
  "*",
  "~root",
  "é",
  7,
  false,
  { name: "red" },
];

/** Not interface addresses in CIDR form. */
export const BAD_INTERFACE_ADDRESSES: unknown[] = [
  "",
  "192.168.15.1",
  "192.168.15.1/33",
  "192.168.15.1/0",
  "192.168.15.1/-1",
  "192.168.15.1/08",
  "192.168.15.1/ 8",
  "192.168.15.1/24/24",
  "300.1.1.1/24",
  "1.2.3/24",
  "192.168.015.1/24",
  "0x7f.0.0.1/8",
  "0.0.0.0/8",
  // IPv6: link-local (the kernel's own), loopback, unspecified, multicast, a zone id, IPv4-mapped and
  // -compatible, prefix out of range or with a leading zero, text the kernel would print otherwise.
  "fe80::1/64",
  "::1/128",
  "::/64",
  "ff02::1/64",
  "fe80::1%eth0/64",
  "fd00::1%$(id)/64",
  "::ffff:1.2.3.4/96",
  "::ffff:c0a8:f01/120",
  "::1.2.3.4/96",
  "fd00::1/129",
  "fd00::1/064",
  "fd00::1/0",
  "fd00::1",
  "FD00::1/64",
  "fd00:0:0:0:0:0:0:1/64",
  "fd00::1/64; reboot",
  "fd00::$(id)/64",
  "fd00::1/64\n",
  "fd00::1/64/64",
  "-fd00::1/64",
  "192.168.15.1 /24",
  "192.168.15.1/24; reboot",
  "$(id)/24",
  "192.168.15.1/24\n",
  "-192.168.15.1/24",
  24,
  { address: "192.168.15.1/24" },
];

/** Not networks (host bits, IPv6, no prefix, prefix 0 for a source). */
export const BAD_NETWORKS: unknown[] = [
  "192.168.15.5/24",
  "10.0.0.1/8",
  "192.168.15.0",
  "192.168.15.0/33",
  "fd00::/8",
  "::/0",
  "192.168.15.0/24 -j ACCEPT",
  "$(id)",
  "",
  3232239360,
];

/** Not route destinations: bad IPv6 networks (IPv4 ones are BAD_NETWORKS). */
export const BAD_IPV6_NETWORKS: unknown[] = [
  "fd00:15::1/64",
  "fd00:15::/129",
  "fd00:15::/064",
  "FD00:15::/64",
  "fd00:15::%eth0/64",
  "fd00:15::/64;id",
  "fd00:15::/64 $(id)",
  "default6;id",
  "::ffff:0:0/96x",
];

/** Not IPv4 addresses. */
export const BAD_ADDRESSES: unknown[] = [
  "",
  "192.168.15.2/32",
  "::1",
  "fe80::1",
  "192.168.15",
  "256.0.0.1",
  "localhost",
  "-j ACCEPT",
  "1.2.3.4;id",
  "192.168.15.2\n",
  "0x7f000001",
  "192.168.015.2",
  3232239362,
];

/** Not TCP/UDP ports. */
export const BAD_PORTS: unknown[] = [
  0,
  -1,
  65536,
  8.5,
  1e9,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  "80",
  "80; id",
  true,
  [80],
  {},
];

export const BAD_PROTOCOLS: unknown[] = ["TCP", "icmp", "sctp", "all", "", "tcp;id", "-p tcp", "tcp\n", 6];
export const BAD_MTUS: unknown[] = [67, 0, -1, 65536, 1500.5, Number.NaN, "1500"];
export const BAD_METRICS: unknown[] = [-1, 4294967296, 1.5, "10"];
export const BAD_BOOLEANS: unknown[] = ["true", 1, "yes"];

export const BAD_HOSTS: unknown[] = [
  "",
  "-oProxyCommand=id",
  "-p2222",
  "a b",
  "h;id",
  "$(id)",
  "`id`",
  "host\n",
  "a..b",
  "[::1]",
  long(254),
  "user@host",
  "host:22",
  "127.1",
  "10.1.2",
  "0x7f000001",
  "::1%$(id)",
  "../host",
  "http://host/",
  42,
  {},
];

export const BAD_USERS: unknown[] = ["", "-oProxyCommand=x", "root;id", "a b", "$(id)", long(33), "root\n", "1root", 0];

const ED25519_BLOB = "AAAAC3NzaC1lZDI1NTE5AAAAIMnlN704wY9t56XP9j7/DMfZp6WJMyBwE2Z7HlDq7TB/";
export const BAD_HOST_KEYS: unknown[] = [
  "",
  "ssh-ed25519",
  "ssh-ed25519 AAAA",
  "ssh-ed25519 !!!!",
  `ssh-dss ${ED25519_BLOB}`,
  `ssh-rsa ${ED25519_BLOB}`,
  "SHA256:short",
  `SHA256:${long(44, "A")}`,
  "MD5:aa:bb:cc",
  `ssh-ed25519 ${ED25519_BLOB}\nssh-rsa AAAA`,
  `-oProxyCommand=id ${ED25519_BLOB}`,
  5,
];

export const BAD_CONNECTION_NUMBERS: Array<[string, unknown[]]> = [
  ["port", [0, 65536, -22, 22.5, "22", "22;id"]],
  ["dialErrorLimit", [0, 101, 1.5, "3"]],
  ["perDialTimeout", [0, -1, 3601, "15"]],
  ["commandTimeout", [0, -1, 3601, "120"]],
  ["sudo", ["yes", 1]],
  ["agentSocketPath", ["relative/sock", "", "/tmp/a\nb", 3]],
];

/** Secret fields with wrong values; each carries a distinctive text that must not be shown. */
export const BAD_SECRETS: Array<[string, unknown]> = [
  ["password", 31415926],
  ["password", { pw: "hunter2-SECRET-pw" }],
  ["password", ["hunter2-SECRET-list"]],
  ["privateKey", "hunter2-SECRET-not-a-key"],
  ["privateKey", 27182818],
  ["privateKey", `ssh-ed25519 ${ED25519_BLOB} hunter2-SECRET-public-key-instead`],
  ["privateKey", { key: "hunter2-SECRET-object" }],
  ["privateKeyPassword", 16180339],
  ["privateKeyPassword", { pp: "hunter2-SECRET-pp" }],
];

function setPath(target: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
  const copy = JSON.parse(JSON.stringify(target)) as Record<string, unknown>;
  const parts = path.replace(/\[(\d+)\]/g, ".$1").split(".");
  let node = copy as Record<string, unknown>;
  for (const p of parts.slice(0, -1)) node = node[p] as Record<string, unknown>;
  node[parts[parts.length - 1]] = value;
  return copy;
}

function field(resource: ResourceKind, path: string, values: unknown[]): HostileCase[] {
  return values.map((value) => ({
    resource,
    property: path,
    value,
    args: setPath(VALID_ARGS[resource], path, value),
    connection: {},
  }));
}

function conn(resource: ResourceKind, key: string, values: unknown[], secret = false): HostileCase[] {
  return values.map((value) => ({
    resource,
    property: `connection.${key}`,
    value,
    args: VALID_ARGS[resource],
    connection: { [key]: value },
    secret,
    // An object or list in a connection field may be (or hold) a whole connection: never shown.
    ...(!secret && typeof value === "object" && value !== null ? { expect: "(its value is not shown)" } : {}),
  }));
}

/** A whole connection, with a key and a password, where one field or the connection itself belongs. */
const WHOLE = { host: "jump.example", password: "pw-SEKRIT-77", privateKey: VALID_CONNECTION.privateKey };

/**
 * A connection (or jump host) passed whole in the wrong shape: a list (as for
 * a multi-hop ProxyJump), a JSON string, an object in the host field. Found by
 * an attack: the reason printed the key and the password.
 */
const WRONG_SHAPES: HostileCase[] = [
  { property: "connection.proxy", connection: { proxy: [WHOLE] }, value: [WHOLE] },
  { property: "connection.proxy", connection: { proxy: JSON.stringify(WHOLE) }, value: JSON.stringify(WHOLE) },
  { property: "connection.host", connection: { host: WHOLE }, value: WHOLE },
  { property: "connection.proxy.host", connection: { proxy: { ...WHOLE, host: [WHOLE] } }, value: [WHOLE] },
].map((c, i) => ({
  ...c,
  resource: RESOURCES_ALL[i % RESOURCES_ALL.length],
  args: VALID_ARGS[RESOURCES_ALL[i % RESOURCES_ALL.length]],
  secret: true,
  hidden: "pw-SEKRIT-77",
  expect: "(its value is not shown)",
}));

const RESOURCES = RESOURCES_ALL;

/** Spreads one connection field's values over the six resources (every resource sees every field). */
function connSpread(key: string, values: unknown[], secret = false): HostileCase[] {
  return values.flatMap((v, i) => conn(RESOURCES[i % RESOURCES.length], key, [v], secret));
}

export function hostileCases(): HostileCase[] {
  const cases: HostileCase[] = [
    // Interface names: every field that names an interface.
    ...field("bridge", "name", BAD_INTERFACE_NAMES),
    ...field("vethPair", "a.name", BAD_INTERFACE_NAMES),
    ...field("vethPair", "b.name", BAD_INTERFACE_NAMES),
    ...field("vethPair", "b.bridge", BAD_INTERFACE_NAMES),
    ...field("vethPair", "a.bridge", BAD_INTERFACE_NAMES.slice(0, 12)),
    ...field("route", "device", BAD_INTERFACE_NAMES),
    ...field("masqueradeRule", "outInterface", BAD_INTERFACE_NAMES),
    ...field("portForward", "inInterface", BAD_INTERFACE_NAMES),
    ...field("masqueradeRule", "inInterface", BAD_INTERFACE_NAMES),
    ...field("vxlan", "name", BAD_INTERFACE_NAMES),
    ...field("vxlan", "device", BAD_INTERFACE_NAMES),
    ...field("vxlan", "bridge", BAD_INTERFACE_NAMES),
    // Namespace names.
    ...field("namespace", "name", BAD_NAMESPACE_NAMES),
    ...field("vethPair", "a.namespace", BAD_NAMESPACE_NAMES),
    ...field("vethPair", "b.namespace", BAD_NAMESPACE_NAMES.slice(0, 10)),
    ...field("bridge", "namespace", BAD_NAMESPACE_NAMES),
    ...field("route", "namespace", BAD_NAMESPACE_NAMES),
    ...field("masqueradeRule", "namespace", BAD_NAMESPACE_NAMES),
    ...field("portForward", "namespace", BAD_NAMESPACE_NAMES),
    ...field("vxlan", "namespace", BAD_NAMESPACE_NAMES),
    // Addresses in CIDR form.
    ...field("bridge", "addresses[0]", BAD_INTERFACE_ADDRESSES),
    ...field("vethPair", "a.addresses[0]", BAD_INTERFACE_ADDRESSES),
    ...field("vethPair", "b.addresses", ["10.0.0.1/24", 5]),
    ...field("bridge", "addresses", ["192.168.15.5/24", { a: 1 }]),
    // Networks, gateways and targets.
    // IPv6 networks are sources too now.
    ...field("masqueradeRule", "source", [...BAD_NETWORKS.filter((v) => v !== "fd00::/8"), ...BAD_IPV6_NETWORKS]),
    ...field(
      "route",
      "destination",
      // IPv6 networks are destinations too now.
      [...BAD_NETWORKS.filter((v) => v !== "192.168.15.0" && v !== "fd00::/8" && v !== "::/0"), ...BAD_IPV6_NETWORKS],
    ),
    ...field("route", "via", [
      ...BAD_ADDRESSES,
      "fd00::1%eth0",
      "ff02::1",
      "::",
      "::ffff:1.2.3.4",
      "FD00::1",
      "fd00::1;id",
      "fd00::1 $(id)",
    ]),
    ...field("masqueradeRule", "excludeDestination", BAD_NETWORKS),
    ...field("bridge", "forwardFrom[0]", [...BAD_NETWORKS.filter((v) => v !== "fd00::/8"), ...BAD_IPV6_NETWORKS]),
    ...field("bridge", "forwardFrom", ["10.8.0.0/16", { a: 1 }]),
    ...field("vxlan", "local", BAD_ADDRESSES),
    ...field("vxlan", "remotes[0]", [...BAD_ADDRESSES, "0.0.0.0", "127.0.0.1", "224.0.0.1", "255.255.255.255"]),
    ...field("portForward", "toAddress", BAD_ADDRESSES),
    // Numbers.
    ...field("portForward", "hostPort", BAD_PORTS),
    ...field("portForward", "toPort", BAD_PORTS),
    ...field("portForward", "protocol", BAD_PROTOCOLS),
    ...field("vxlan", "vni", [0, -1, 16777216, 1.5, Number.NaN, "1", "1;id"]),
    ...field("vxlan", "dstPort", BAD_PORTS),
    ...field("vxlan", "mtu", BAD_MTUS),
    ...field("vxlan", "adopt", BAD_BOOLEANS),
    ...field("bridge", "mtu", BAD_MTUS),
    ...field("vethPair", "mtu", BAD_MTUS),
    ...field("route", "metric", BAD_METRICS),
    // Booleans.
    ...field("namespace", "loopbackUp", BAD_BOOLEANS),
    ...field("namespace", "adopt", BAD_BOOLEANS),
    ...field("bridge", "up", BAD_BOOLEANS),
    ...field("vethPair", "a.up", BAD_BOOLEANS),
    ...field("masqueradeRule", "enableIpForward", BAD_BOOLEANS),
    ...field("portForward", "fromHost", BAD_BOOLEANS),
    // Whole ends of the wrong type.
    ...field("vethPair", "a", ["veth-red", 5, ["veth-red"]]),
    // The connection, spread over all six resources.
    ...connSpread("host", BAD_HOSTS),
    ...connSpread("user", BAD_USERS),
    ...connSpread("hostKey", BAD_HOST_KEYS),
    ...BAD_CONNECTION_NUMBERS.flatMap(([key, values]) => connSpread(key, values)),
    ...BAD_SECRETS.map(([key, value], i) => conn(RESOURCES[i % RESOURCES.length], key, [value], true)[0]),
    // Jump hosts: the same rules one and two hops away.
    ...connSpread("proxy", ["jump.example", 7, ["a"]]).map((c) => ({
      ...c,
      secret: true,
      hidden: JSON.stringify(c.value),
      expect: "(its value is not shown)",
    })),
    ...WRONG_SHAPES,
    ...["-oProxyCommand=id", "$(id)", "h;id"].map((host, i) => ({
      resource: RESOURCES[i],
      property: "connection.proxy.host",
      value: host,
      args: VALID_ARGS[RESOURCES[i]],
      connection: { proxy: { host, privateKey: VALID_CONNECTION.privateKey } },
    })),
    {
      resource: "namespace",
      property: "connection.proxy.proxy.hostKey",
      value: "SHA256:short",
      args: VALID_ARGS.namespace,
      connection: { proxy: { host: "jump1", proxy: { host: "jump2", hostKey: "SHA256:short" } } },
    },
    {
      resource: "route",
      property: "connection.proxy.password",
      value: { pw: "hunter2-SECRET-proxy" },
      args: VALID_ARGS.route,
      connection: { proxy: { host: "jump1", password: { pw: "hunter2-SECRET-proxy" } } },
      secret: true,
    },
  ];
  // Unknown connection fields (typos of secret fields must not echo the value).
  cases.push(
    {
      resource: "bridge",
      property: "connection.passwd",
      value: "passwd",
      args: VALID_ARGS.bridge,
      connection: { passwd: "hunter2-SECRET-typo" },
      expect: "passwd",
      secret: true,
      hidden: "hunter2-SECRET-typo",
    },
    {
      resource: "portForward",
      property: "connection.identityFile",
      value: "identityFile",
      args: VALID_ARGS.portForward,
      connection: { identityFile: "/root/.ssh/id_ed25519" },
      expect: "identityFile",
    },
  );
  // Required values that are missing, and impossible combinations.
  const missing = (resource: ResourceKind, property: string, args: Record<string, unknown>, expect: string) =>
    cases.push({ resource, property, value: undefined, args, connection: {}, expect });
  missing("namespace", "connection", VALID_ARGS.namespace, "is required");
  missing("portForward", "hostPort", { toAddress: "192.168.15.2" }, "is required");
  missing("portForward", "toAddress", { hostPort: 80 }, "is required");
  missing("masqueradeRule", "source", {}, "is required");
  missing("route", "destination", { via: "192.168.15.5" }, "is required");
  missing("vethPair", "b", { a: { name: "veth-red" } }, "is required");
  missing("bridge", "name", {}, "is required");
  missing("route", "via", { destination: "192.168.1.0/24" }, "got neither");
  missing(
    "masqueradeRule",
    "excludeOutInterface",
    { source: "192.168.15.0/24", outInterface: "eth0", excludeOutInterface: "v-net-0" },
    "cannot be combined",
  );
  missing(
    "vethPair",
    "b.name",
    { a: { name: "veth-x", namespace: "red" }, b: { name: "veth-x", namespace: "red" } },
    "different names",
  );
  missing("vethPair", "a.peer", { a: { name: "veth-x", peer: "veth-y" }, b: { name: "veth-y" } }, "unknown field");
  missing(
    "bridge",
    "addresses[1]",
    { name: "v-net-0", addresses: ["192.168.15.5/24", "192.168.15.5/24"] },
    "listed twice",
  );
  // A jump-host chain deeper than allowed.
  let deep: Record<string, unknown> = { host: "jump" };
  for (let i = 0; i < 9; i++) deep = { host: `jump${i}`, proxy: deep };
  cases.push({
    resource: "bridge",
    property: `connection${".proxy".repeat(9)}`,
    value: undefined,
    args: VALID_ARGS.bridge,
    connection: { proxy: deep },
    expect: "more than 8 jump hosts",
  });
  return cases;
}

/** The connection a case checks with. */
export function connectionOf(c: HostileCase, base: Record<string, unknown> = VALID_CONNECTION): unknown {
  if (c.property === "connection" && c.expect === "is required") return undefined;
  const merged: Record<string, unknown> = { ...base, ...c.connection };
  for (const [k, v] of Object.entries(c.connection)) if (v === undefined) delete merged[k];
  return merged;
}

/** The text the reason must contain: the value as it is shown in messages (JSON, cut at 80). */
export function shownValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value).slice(0, 40);
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  return JSON.stringify(value);
}

/** A distinctive text of a secret value, to look for in messages. */
export function secretText(value: unknown): string {
  if (typeof value === "string") return value;
  if (typeof value === "number") return String(value);
  return JSON.stringify(value).replace(/^[[{]("\w+":)?"?|"?[\]}]$/g, "");
}
