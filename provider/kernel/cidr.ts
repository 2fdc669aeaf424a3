import * as ipaddr from "ipaddr.js";

/** IPv4 prefixes (pure): the one overlap test of the provider. */

/** The network of a CIDR, in CIDR form: "192.168.15.5/24" -> "192.168.15.0/24"; a bare address is a /32. */
export function prefixOf(cidr: string): string {
  const [a, len] = cidr.includes("/") ? ipaddr.IPv4.parseCIDR(cidr) : [ipaddr.IPv4.parse(cidr), 32];
  return `${ipaddr.IPv4.networkAddressFromCIDR(`${a}/${len}`)}/${len}`;
}

/** Two IPv4 prefixes (or bare addresses) overlap when the shorter one contains the other's network address. */
export function overlaps(a: string, b: string): boolean {
  const [na, la] = ipaddr.IPv4.parseCIDR(prefixOf(a));
  const [nb, lb] = ipaddr.IPv4.parseCIDR(prefixOf(b));
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
