import { type IpArgs, ip, ipBatch, namespaceExists } from "./exec";
import { parseIpJson } from "./json";

export interface RouteSpec {
  namespace?: string;
  /** "default" or a network in CIDR form. */
  destination: string;
  via?: string;
  device?: string;
  metric?: number;
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
}

/** The kernel's spelling of a destination ("default", "a.b.c.d" for a /32). */
function kernelDestination(destination: string): string {
  if (destination === "default" || destination === "0.0.0.0/0") return "default";
  return destination.endsWith("/32") ? destination.slice(0, -3) : destination;
}

/** Lists the main table's routes to exactly this destination (as JSON when run with `-j`). */
export function showRouteOp(spec: RouteSpec): IpArgs {
  return ["route", "show", "table", "main", "exact", spec.destination === "default" ? "0.0.0.0/0" : spec.destination];
}

/** Prints the main table's routes to exactly this destination as JSON (nothing if the namespace is gone). */
export function showRouteScript(spec: RouteSpec): string {
  return `if ${namespaceExists(spec.namespace)}; then ${ip(spec.namespace, "-j", ...showRouteOp(spec))}; fi`;
}

/** Adds the route and prints it back as JSON, in one `ip` process; fails as `ip route add` does. */
export function addAndShowRouteScript(spec: RouteSpec): string {
  return ipBatch(spec.namespace, [["route", "add", ...routeArgs(spec)], showRouteOp(spec)], ["-j"]);
}

/** Finds the route with this spec's metric: a metric is part of a route's identity. */
export function parseRoute(text: string, spec: RouteSpec): RouteState | undefined {
  const wanted = kernelDestination(spec.destination);
  const entry = parseIpJson<IpRouteJson>(text, "ip route show").find(
    (r) => r.dst === wanted && (r.metric ?? 0) === (spec.metric ?? 0),
  );
  return entry ? { via: entry.gateway, device: entry.dev, metric: entry.metric ?? 0 } : undefined;
}

function routeArgs(spec: RouteSpec): Array<string | number> {
  const args: Array<string | number> = [spec.destination];
  if (spec.via) args.push("via", spec.via);
  if (spec.device) args.push("dev", spec.device);
  args.push("metric", spec.metric ?? 0);
  return args;
}

export function addRouteStep(spec: RouteSpec): string {
  return ip(spec.namespace, "route", "add", ...routeArgs(spec));
}

export function replaceRouteStep(spec: RouteSpec): string {
  return ip(spec.namespace, "route", "replace", ...routeArgs(spec));
}

/** Deletes the route with this destination and metric; one already gone is not an error. */
export function deleteRouteScript(spec: RouteSpec): string {
  const del = ip(spec.namespace, "route", "del", spec.destination, "metric", spec.metric ?? 0);
  return `if ${namespaceExists(spec.namespace)}; then ${del} 2>/dev/null; ${showRouteScript(spec)}; fi`;
}
