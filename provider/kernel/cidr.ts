import * as ipaddr from "ipaddr.js";

/** IPv4 and IPv6 prefixes (pure): the one overlap test of the provider. */

/** The network of a CIDR, in CIDR form: "192.168.15.5/24" -> "192.168.15.0/24", "fd00::5/64" -> "fd00::/64"; a bare address is a /32 (/128). */
export function prefixOf(cidr: string): string {
  if (cidr.includes(":")) {
    const [a, len] = cidr.includes("/") ? ipaddr.IPv6.parseCIDR(cidr) : [ipaddr.IPv6.parse(cidr), 128];
    return `${ipaddr.IPv6.networkAddressFromCIDR(`${a}/${len}`).toRFC5952String()}/${len}`;
  }
  const [a, len] = cidr.includes("/") ? ipaddr.IPv4.parseCIDR(cidr) : [ipaddr.IPv4.parse(cidr), 32];
  return `${ipaddr.IPv4.networkAddressFromCIDR(`${a}/${len}`)}/${len}`;
}

/**
 * Two prefixes (or bare addresses) overlap when the shorter one contains the
 * other's network address. An IPv4 and an IPv6 one never do.
 */
export function overlaps(a: string, b: string): boolean {
  if (a.includes(":") !== b.includes(":")) return false;
  const [na, la] = ipaddr.parseCIDR(prefixOf(a));
  const [nb, lb] = ipaddr.parseCIDR(prefixOf(b));
  return la <= lb ? nb.match(na, la) : na.match(nb, lb);
}

/** An IPv4 address as a number (for address arithmetic in the planners). */
export function toNumber(address: string): number {
  return ipaddr.IPv4.parse(address)
    .toByteArray()
    .reduce((n, b) => n * 256 + b, 0);
}

/** A number as an IPv4 address in dotted form (toNumber's inverse). */
export function toAddress(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
}

/** An IPv6 address as a BigInt (for address arithmetic in the planners). */
export const toBig = (address: string): bigint =>
  ipaddr.IPv6.parse(address).parts.reduce((n, part) => (n << 16n) | BigInt(part), 0n);

/** A BigInt as an IPv6 address in the kernel's spelling, RFC 5952 (toBig's inverse). */
export function fromBig(n: bigint): string {
  const parts = Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(16 * (7 - i))) & 0xffffn));
  return new ipaddr.IPv6(parts).toRFC5952String();
}
