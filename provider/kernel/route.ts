import { parseIpJson } from "./json";
import { at } from "./namespace";
import type { IpArgs } from "./script";

export interface RouteSpec {
  namespace?: string;
  /** "default" (IPv4), "default6" (IPv6) or a network in CIDR form. */
  destination: string;
  via?: string;
  device?: string;
  metric?: number;
  /**
   * The owner mark the route carries (kernel/mark ROUTE_PROTOCOL): only
   * routes with it are shown, added with it, deleted. Absent: a route made
   * before marks, known by its destination and metric alone.
   */
  protocol?: number;
}

export interface RouteState {
  via?: string;
  device?: string;
  metric: number;
}

interface IpRouteJson {
  dst: string;
  gateway?: string;
  dev?: string;
  metric?: number;
  /** "kernel" for the connected route an address brings. */
  protocol?: string;
}

/** Whether a route's destination is IPv6: "default6" or an IPv6 network. */
export const isIpv6Route = (destination: string): boolean => destination === "default6" || destination.includes(":");

/** `ip`'s family option for the route: `-6` for IPv6 (plain `ip route` is IPv4 only). */
const family = (spec: RouteSpec): string[] => (isIpv6Route(spec.destination) ? ["-6"] : []);

/**
 * The metric the kernel gives the route: IPv6 takes 0 as "the default", 1024
 * (IP6_RT_PRIO_USER), and prints and filters by that (measured: `ip -6 route
 * add ... metric 0` then `show ... metric 0` finds nothing).
 */
export function kernelMetric(spec: Pick<RouteSpec, "destination" | "metric">): number {
  const metric = spec.metric ?? 0;
  return metric === 0 && isIpv6Route(spec.destination) ? 1024 : metric;
}

/** The kernel's spelling of a destination ("default", "a.b.c.d" for a /32, "x::y" for a /128). */
function kernelDestination(destination: string): string {
  if (destination === "default" || destination === "0.0.0.0/0" || destination === "default6" || destination === "::/0")
    return "default";
  if (isIpv6Route(destination)) return destination.endsWith("/128") ? destination.slice(0, -4) : destination;
  return destination.endsWith("/32") ? destination.slice(0, -3) : destination;
}

/** The destination as `ip route add/del` takes it ("default" with `-6` is IPv6's). */
const commandDestination = (destination: string) => (destination === "default6" ? "default" : destination);

/** The destination as `exact` takes it: the default route is the zero-length prefix. */
const exactDestination = (destination: string) =>
  destination === "default" ? "0.0.0.0/0" : destination === "default6" ? "::/0" : destination;

/** Lists the main table's routes to exactly this destination, only those with the spec's mark if it has one (as JSON when run with `-j`). */
function showRoute(spec: RouteSpec): IpArgs {
  const show: IpArgs = ["route", "show", "table", "main", "exact", exactDestination(spec.destination)];
  return spec.protocol !== undefined ? [...show, "proto", spec.protocol] : show;
}

/** Prints the main table's routes to exactly this destination as JSON (nothing if the namespace is gone). */
export function printRoute(spec: RouteSpec): string {
  const ns = at(spec.namespace);
  return ns.ifExists(ns.ip(...family(spec), "-j", ...showRoute(spec)));
}

/** Adds the route and prints it back as JSON, in one `ip` process; fails as `ip route add` does. */
export function addAndPrintRoute(spec: RouteSpec): string {
  return at(spec.namespace).ipBatch([["route", "add", ...routeArgs(spec)], showRoute(spec)], [...family(spec), "-j"]);
}

/** Finds the route with this spec's metric: a metric is part of a route's identity. */
export function parseRoute(text: string, spec: RouteSpec): RouteState | undefined {
  const wanted = kernelDestination(spec.destination);
  const entry = parseIpJson<IpRouteJson>(text, "ip route show").find(
    (r) => r.dst === wanted && (r.metric ?? 0) === kernelMetric(spec),
  );
  return entry ? { via: entry.gateway, device: entry.dev, metric: entry.metric ?? 0 } : undefined;
}

function routeArgs(spec: RouteSpec): Array<string | number> {
  const args: Array<string | number> = [commandDestination(spec.destination)];
  if (spec.via) args.push("via", spec.via);
  if (spec.device) args.push("dev", spec.device);
  args.push("metric", kernelMetric(spec));
  if (spec.protocol !== undefined) args.push("proto", spec.protocol);
  return args;
}

export const addRoute = (spec: RouteSpec): IpArgs => [...family(spec), "route", "add", ...routeArgs(spec)];
export const replaceRoute = (spec: RouteSpec): IpArgs => [...family(spec), "route", "replace", ...routeArgs(spec)];

/**
 * Points our route (`spec`, with its mark) at its new gateway or device, deciding
 * on the host, in one command, whose route is there under its destination and
 * metric (the kernel's identity of a route; `ip route replace` overwrites
 * whatever route has it):
 *
 * - one that is not ours (no mark, or another): nothing is changed, and the
 *   routes to the destination with that metric are printed as JSON, numbers
 *   for protocols (`-N`), for `parseNotOurs`; ours was deleted by hand and
 *   someone made theirs, which `replace` would overwrite and our delete would
 *   later remove;
 * - ours alone: it is replaced;
 * - none: ours is added, as a create would.
 *
 * It prints nothing when it changed the route. The routes are counted with
 * `-o` (one line per route, multipath too), the form iproute2 gives for
 * counting; the mark is told by the kernel's own filter (`proto`). A missing
 * namespace fails the first `ip`, with its error.
 */
export function repointRoute(spec: RouteSpec & { protocol: number }): string {
  const ns = at(spec.namespace);
  const sameMetric = [...family(spec), ...showRoute({ ...spec, protocol: undefined }), "metric", kernelMetric(spec)];
  const count = (v: string) => `"$(printf '%s\\n' "$${v}" | grep -c .)"`;
  return [
    `pnetns_all=$(${ns.ip("-o", ...sameMetric)})`,
    `pnetns_ours=$(${ns.ip("-o", ...sameMetric, "proto", spec.protocol)})`,
    `if [ ${count("pnetns_all")} != ${count("pnetns_ours")} ]; then ${ns.ip("-N", "-j", ...sameMetric)}; ` +
      `elif [ -n "$pnetns_ours" ]; then ${ns.ip(...replaceRoute(spec))}; ` +
      `else ${ns.ip(...addRoute(spec))}; fi`,
  ].join(" && ");
}

/** The routes `repointRoute` printed that are not ours (none: it changed the route). */
export function parseNotOurs(text: string, protocol: number): RouteOver[] {
  return parseIpJson<IpRouteOver>(text, "ip route show").filter((r) => r.protocol !== String(protocol));
}

/**
 * Deletes the route (one already gone is not an error), then prints what is
 * left of it. A marked route is matched by the kernel on all it is: destination,
 * gateway, device, metric, table and mark, so another route with the same
 * destination and metric (someone else's) is left. One from before marks
 * is matched by destination and metric, as it was made: its state may not
 * hold the device the kernel chose.
 */
export function deleteRoute(spec: RouteSpec): string {
  const ns = at(spec.namespace);
  const del =
    spec.protocol !== undefined
      ? ns.ip(...family(spec), "route", "del", ...routeArgs(spec), "table", "main")
      : ns.ip(...family(spec), "route", "del", commandDestination(spec.destination), "metric", kernelMetric(spec));
  return ns.ifExists(`${del} 2>/dev/null; ${ns.ip(...family(spec), "-j", ...showRoute(spec))}`);
}

/**
 * Prints, as JSON, the main table's routes over a device (nothing when the
 * namespace or the device is gone): what the kernel removes with the device,
 * or when the device's addresses no longer reach a route's gateway.
 */
export function printRoutesOver(namespace: string | undefined, device: string): string {
  const ns = at(namespace);
  return ns.ifExists(`${ns.ip("-j", "route", "show", "table", "main", "dev", device)} 2>/dev/null || true`);
}

interface IpRouteOver extends IpRouteJson {
  /** Absent: unicast; also "blackhole", "unreachable", "local", "broadcast", "throw", ... */
  type?: string;
  flags?: string[];
  prefsrc?: string;
  /** Absent: main (`ip -j route show table all` names every other). */
  table?: string;
}

/** Every route of `ip -j route show [table all]`. */
export function parseRoutes(text: string, what: string): RouteOver[] {
  return parseIpJson<IpRouteOver>(text, what);
}

/** A route someone added over a device (not the connected route of an address), as `ip -j route` shows it. */
export type RouteOver = IpRouteOver;

/** The unicast routes `printRoutesOver` printed that someone added (not the connected routes of its addresses). */
export function parseRoutesOver(text: string): RouteOver[] {
  return parseIpJson<IpRouteOver>(text, "ip route show dev").filter(
    (r) => r.protocol !== "kernel" && (r.type === undefined || r.type === "unicast"),
  );
}

/** A route as `ip route` writes it: "default via 192.168.15.5". */
export function describeRoute(r: RouteOver): string {
  return [r.dst, ...(r.gateway ? ["via", r.gateway] : []), ...(r.metric ? ["metric", r.metric] : [])].join(" ");
}

const sameRoute = (x: RouteOver, y: RouteOver) => x.dst === y.dst && (x.metric ?? 0) === (y.metric ?? 0);

/** The routes of `before` that are not in `after` (a route is its destination and metric). */
export function missingRoutes(before: RouteOver[], after: RouteOver[]): RouteOver[] {
  return before.filter((r) => !after.some((a) => sameRoute(a, r)));
}

/**
 * The `ip route add` that puts a route back as it was over `device`; its
 * preferred source only if the device still has that address.
 */
export function readdRoute(r: RouteOver, device: string, addresses: string[]): IpArgs {
  const args: IpArgs = ["route", "add", r.dst];
  if (r.gateway) args.push("via", r.gateway);
  args.push("dev", device);
  if (r.flags?.includes("onlink")) args.push("onlink");
  if (r.metric) args.push("metric", r.metric);
  if (r.protocol && r.protocol !== "boot") args.push("proto", r.protocol);
  if (r.prefsrc && addresses.some((a) => a.split("/")[0] === r.prefsrc)) args.push("src", r.prefsrc);
  return args;
}
