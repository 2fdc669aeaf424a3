import { ROUTE } from "../resourceSchemas";
import { dynamicResource, type ResourceArgsOf } from "./shim";

export interface RouteArgs extends ResourceArgsOf<typeof ROUTE> {}

/** A route: `ip netns exec blue ip route add 192.168.1.0/24 via 192.168.15.5`, or a default route. */
export class Route extends dynamicResource<typeof ROUTE, RouteArgs>("Route", ROUTE) {}
