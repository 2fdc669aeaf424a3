import * as ipaddr from "ipaddr.js";

/**
 * Input validation shared by every resource. Each validator returns a reason
 * (naming the field and the value) or undefined. Nothing reaches a remote
 * shell unless it passed one of these first.
 */

/** The SDK's marker for a value not yet known during preview. */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export function isUnknown(value: unknown): boolean {
  return value === UNKNOWN;
}

export interface CheckFailure {
  property: string;
  reason: string;
}

/** Shows a value in an error message without letting it break the message. */
export function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  if (value === undefined) return "undefined";
  // JSON would show NaN and Infinity as null.
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * Collects failures for one resource's check. Unknown values (preview) pass
 * every rule: they are validated again when they become known.
 */
export class Checker {
  readonly failures: CheckFailure[] = [];

  fail(property: string, reason: string): void {
    this.failures.push({ property, reason: `${property}: ${reason}` });
  }

  /** Runs `rule` on a present, known value; records its reason if it objects. */
  field(property: string, value: unknown, rule: (v: unknown) => string | undefined, required = false): void {
    if (isUnknown(value)) return;
    if (value === undefined || value === null) {
      if (required) this.fail(property, "is required");
      return;
    }
    const reason = rule(value);
    if (reason) this.fail(property, reason);
  }

  get ok(): boolean {
    return this.failures.length === 0;
  }
}

// Names the kernel treats specially (sysctl directories, the loopback device).
const RESERVED_INTERFACE_NAMES = new Set(["lo", "all", "default", ".", ".."]);

/** A Linux interface name: 1-15 chars the kernel accepts, safe in any shell. */
export function interfaceName(v: unknown): string | undefined {
  if (typeof v !== "string") return `${show(v)} is not a string`;
  if (v.length < 1 || v.length > 15) return `${show(v)} must be 1-15 characters (IFNAMSIZ), not ${v.length}`;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(v))
    return `${show(v)} may contain only letters, digits, '_', '.', '-' and must start with a letter or digit`;
  if (RESERVED_INTERFACE_NAMES.has(v)) return `${show(v)} is a reserved interface name`;
  return undefined;
}

/** A named network namespace (`ip netns`): a file name under /run/netns. */
export function namespaceName(v: unknown): string | undefined {
  if (typeof v !== "string") return `${show(v)} is not a string`;
  if (v.length < 1 || v.length > 64) return `${show(v)} must be 1-64 characters, not ${v.length}`;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(v))
    return `${show(v)} may contain only letters, digits, '_', '.', '-' and must start with a letter or digit (no path separators)`;
  return undefined;
}

export function boolean(v: unknown): string | undefined {
  return typeof v === "boolean" ? undefined : `${show(v)} is not a boolean`;
}

export function integerIn(min: number, max: number): (v: unknown) => string | undefined {
  return (v) =>
    typeof v === "number" && Number.isInteger(v) && v >= min && v <= max
      ? undefined
      : `${show(v)} is not an integer from ${min} to ${max}`;
}

export const port = integerIn(1, 65535);
export const mtu = integerIn(68, 65535);

/** A positive number of seconds (fractions allowed). */
export function seconds(v: unknown): string | undefined {
  return typeof v === "number" && Number.isFinite(v) && v > 0 && v <= 3600
    ? undefined
    : `${show(v)} is not a number of seconds: it must be more than 0 and at most 3600`;
}

/** A DNS name or an IP address that cannot be mistaken for an option. */
export function hostName(v: unknown): string | undefined {
  if (typeof v !== "string" || v.length === 0) return `${show(v)} is not a host name or address`;
  if (ipaddr.isValid(v) && (ipaddr.IPv4.isValidFourPartDecimal(v) || v.includes(":"))) return undefined;
  if (v.length > 253) return `${show(v)} is longer than 253 characters`;
  const label = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
  const labels = v.split(".");
  if (!labels.every((part) => label.test(part))) return `${show(v)} is not a valid host name or IP address`;
  // The resolver reads "127.1", "10.1.2" or "0x7f000001" as other IPv4 addresses (inet_aton):
  // only the four-part decimal form is taken as an address.
  if (/^\d+$/.test(labels[labels.length - 1]) || labels.every((part) => /^(0x[0-9a-f]*|\d+)$/i.test(part)))
    return `${show(v)} looks like an IPv4 address but is not four decimal parts (like 192.168.15.5)`;
  return undefined;
}

export function userName(v: unknown): string | undefined {
  if (typeof v !== "string" || !/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/.test(v)) return `${show(v)} is not a valid user name`;
  return undefined;
}

/** A pinned host key: "ssh-ed25519 AAAA..." (comment allowed) or "SHA256:<43 base64 chars>". */
export function hostKey(v: unknown): string | undefined {
  if (typeof v !== "string") return `${show(v)} is not a string`;
  if (/^SHA256:[A-Za-z0-9+/]{43}=?$/.test(v)) return undefined;
  const m =
    /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521) ([A-Za-z0-9+/]+={0,2})( [^\n\r]*)?$/.exec(
      v,
    );
  if (!m) return `${show(v)} is neither "<type> <base64 key>" (as in known_hosts) nor a "SHA256:..." fingerprint`;
  const blob = Buffer.from(m[2], "base64");
  const typeLength = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  if (typeLength <= 0 || blob.subarray(4, 4 + typeLength).toString() !== m[1])
    return `${show(v)} does not hold a ${m[1]} key`;
  return undefined;
}

/** An address without prefix, e.g. "192.168.15.5". */
export function ipv4Address(v: unknown): string | undefined {
  if (typeof v !== "string" || !ipaddr.IPv4.isValidFourPartDecimal(v))
    return `${show(v)} is not an IPv4 address (like 192.168.15.5)`;
  return undefined;
}

/** An interface address in CIDR form, e.g. "192.168.15.1/24" (host bits allowed). */
export function ipv4Interface(v: unknown): string | undefined {
  const reason = ipv4Cidr(v);
  if (reason) return reason;
  // The kernel accepts `ip addr add 0.0.0.0/8` without error and adds nothing.
  if ((v as string).startsWith("0.0.0.0/")) return `${show(v)} has the unspecified address 0.0.0.0`;
  return undefined;
}

/** "a.b.c.d/len" with a four-part decimal address and a prefix 1-32 without leading zeros. */
function ipv4Cidr(v: unknown): string | undefined {
  if (typeof v !== "string") return `${show(v)} is not a string`;
  const [addr, prefix, ...rest] = v.split("/");
  if (prefix === undefined || rest.length > 0)
    return `${show(v)} must be an address with a prefix, like 192.168.15.1/24`;
  if (!ipaddr.IPv4.isValidFourPartDecimal(addr)) return `${show(v)} does not start with an IPv4 address`;
  // No leading zeros: the kernel reports "/8" for "/08", and state must match what it reports.
  if (!/^[1-9]\d?$/.test(prefix) || Number(prefix) > 32)
    return `${show(v)} has prefix length ${show(prefix)}; it must be 1-32`;
  return undefined;
}

/** A network in CIDR form, e.g. "192.168.15.0/24": host bits must be zero. */
export function ipv4Network(v: unknown): string | undefined {
  const reason = ipv4Cidr(v);
  if (reason) return reason;
  const [addr, prefix] = (v as string).split("/");
  const network = ipaddr.IPv4.networkAddressFromCIDR(v as string).toString();
  if (network !== addr) return `${show(v)} has host bits set; the network is ${network}/${prefix}`;
  return undefined;
}

/**
 * An IPv6 address without prefix as the kernel prints it back (RFC 5952: lower
 * case, the longest run of zero groups as "::"), so state and `ip -j` output
 * are equal and a second `up` or a refresh sees no drift. Non-canonical text is
 * refused with its canonical spelling rather than rewritten: a list field's
 * items keep the text the program gave, and the program is the place to fix it.
 * Refused: zone ids, and what is no interface's or gateway's own address
 * (unspecified, loopback, multicast, IPv4-mapped ::ffff:0:0/96, the deprecated
 * IPv4-compatible ::/96, which the kernel prints in dotted form).
 */
function ipv6Text(addr: string, whole: unknown, example: string): string | undefined {
  if (addr.includes("%")) return `${show(whole)} has a zone id (%...); give the address alone, like ${example}`;
  if (!addr.includes(":") || !ipaddr.IPv6.isValid(addr))
    return `${show(whole)} is not an IPv6 address (like ${example})`;
  const parsed = ipaddr.IPv6.parse(addr);
  const range = parsed.range();
  if (["unspecified", "loopback", "multicast", "ipv4Mapped"].includes(range))
    return `${show(whole)} is ${range === "ipv4Mapped" ? "an IPv4-mapped (::ffff:0:0/96)" : `a ${range}`} address, not an interface's unicast address`;
  if (parsed.parts.slice(0, 6).every((p) => p === 0))
    return `${show(whole)} is an IPv4-compatible (::/96, deprecated) address, not an interface's unicast address`;
  const canonical = parsed.toRFC5952String();
  if (canonical !== addr)
    return `${show(whole)} is not written as the kernel prints it back; write ${show(whole === addr ? canonical : `${canonical}/${(whole as string).split("/")[1]}`)}`;
  return undefined;
}

/** An IPv6 prefix length 1-128 without leading zeros (the kernel prints "/64" for "/064"). */
function ipv6Prefix(prefix: string | undefined, whole: unknown): string | undefined {
  if (prefix === undefined) return `${show(whole)} must be an address with a prefix, like fd00:15::1/64`;
  if (!/^[1-9]\d{0,2}$/.test(prefix) || Number(prefix) > 128)
    return `${show(whole)} has prefix length ${show(prefix)}; it must be 1-128`;
  return undefined;
}

/** An IPv6 unicast address without prefix, e.g. "fd00:15::1" (a gateway). */
export function ipv6Address(v: unknown): string | undefined {
  if (typeof v !== "string") return `${show(v)} is not an IPv6 address (like fd00:15::1)`;
  return ipv6Text(v, v, "fd00:15::1");
}

/** An IPv6 interface address in CIDR form, e.g. "fd00:15::1/64". The kernel's own link-local (fe80::/10) is refused: see ipInterface. */
export function ipv6Interface(v: unknown): string | undefined {
  if (typeof v !== "string") return `${show(v)} is not a string`;
  const [addr, prefix, ...rest] = v.split("/");
  if (rest.length > 0) return `${show(v)} must be an address with a prefix, like fd00:15::1/64`;
  const reason = ipv6Text(addr, v, "fd00:15::1/64") ?? ipv6Prefix(prefix, v);
  if (reason) return reason;
  // Every IPv6 link has its own fe80:: address (the kernel's): a second one only
  // competes with it, and fe80::/64 is on every link, so overlap checks mean nothing there.
  if (ipaddr.IPv6.parse(addr).range() === "linkLocal")
    return `${show(v)} is a link-local (fe80::/10) address; the kernel gives every link its own: give a global or ULA (fd00::/8) address`;
  return undefined;
}

/** An IPv6 network in CIDR form, e.g. "fd00:15::/64": host bits must be zero. */
export function ipv6Network(v: unknown): string | undefined {
  if (typeof v !== "string") return `${show(v)} is not a string`;
  const [addr, prefix, ...rest] = v.split("/");
  if (rest.length > 0) return `${show(v)} must be a network with a prefix, like fd00:15::/64`;
  const prefixReason = ipv6Prefix(prefix, v);
  if (addr.includes("%") || !addr.includes(":") || !ipaddr.IPv6.isValid(addr) || prefixReason)
    return ipv6Text(addr, v, "fd00:15::/64") ?? prefixReason;
  const parsed = ipaddr.IPv6.parse(addr);
  const canonical = parsed.toRFC5952String();
  if (canonical !== addr)
    return `${show(v)} is not written as the kernel prints it back; write ${show(`${canonical}/${prefix}`)}`;
  const network = ipaddr.IPv6.networkAddressFromCIDR(v).toRFC5952String();
  if (network !== addr) return `${show(v)} has host bits set; the network is ${network}/${prefix}`;
  return undefined;
}

/** An interface address in CIDR form, IPv4 ("192.168.15.1/24") or IPv6 ("fd00:15::1/64"). */
export function ipInterface(v: unknown): string | undefined {
  if (typeof v === "string" && v.includes(":")) return ipv6Interface(v);
  const reason = ipv4Interface(v);
  return reason && typeof v === "string" ? `${reason} (or an IPv6 one, like fd00:15::1/64)` : reason;
}

/** Whether a (checked) address or CIDR is IPv6. */
export const isIpv6 = (v: string): boolean => v.includes(":");

/** An IPv4 or an IPv6 network in CIDR form (ipv4Network, ipv6Network). */
export function ipNetwork(v: unknown): string | undefined {
  if (typeof v === "string" && v.includes(":")) return ipv6Network(v);
  const reason = ipv4Network(v);
  return reason && typeof v === "string" ? `${reason} (or an IPv6 network, like fd00:10::/64)` : reason;
}

/** An IPv4 address (four decimal parts) or an IPv6 unicast address (ipv6Address). */
export function ipv4OrIpv6Address(v: unknown): string | undefined {
  if (typeof v === "string" && v.includes(":")) return ipv6Address(v);
  const reason = ipv4Address(v);
  return reason && typeof v === "string" ? `${reason} or an IPv6 address (like fd00:10::2)` : reason;
}

export function oneOf(...allowed: string[]): (v: unknown) => string | undefined {
  return (v) =>
    typeof v === "string" && allowed.includes(v) ? undefined : `${show(v)} must be one of ${allowed.join(", ")}`;
}

/**
 * Edit distance with adjacent transpositions counted as one edit ("mut" is
 * one edit from "mtu"), ignoring case: how far a misspelt name is from a valid one.
 */
function distance(a: string, b: string): number {
  const [s, t] = [a.toLowerCase(), b.toLowerCase()];
  const d = Array.from({ length: s.length + 1 }, (_, i) => Array.from({ length: t.length + 1 }, (_, j) => i + j));
  for (let i = 1; i <= s.length; i++)
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1])
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[s.length][t.length];
}

/** The valid name a misspelt one most likely meant: at most one edit in three characters away. */
function closestName(name: string, valid: readonly string[]): string | undefined {
  const limit = Math.max(1, Math.floor(name.length / 3));
  // Names further apart in length than the limit cannot be within it (and a huge name costs no time).
  const candidates = valid.filter((v) => Math.abs(v.length - name.length) <= limit);
  const ranked = candidates.map((v) => ({ v, d: distance(name, v) })).sort((x, y) => x.d - y.d);
  return ranked.length > 0 && ranked[0].d <= limit ? ranked[0].v : undefined;
}

/**
 * Why a field an object does not have is refused: its name (never its value,
 * which may be anything, a key included) and the name meant, or the valid ones.
 */
export function unknownFieldReason(name: string, valid: readonly string[], of = "field"): string {
  const meant = closestName(name, valid);
  return `unknown ${of} ${show(name)}${meant ? `; did you mean ${show(meant)}?` : `; valid fields: ${valid.join(", ")}`}`;
}
