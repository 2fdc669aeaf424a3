import type { ROUTE } from "../resourceSchemas";
import { dynamicResource, type ResourceArgsOf, type ResourcePropertiesOf } from "./shim";

export interface RouteArgs extends ResourceArgsOf<typeof ROUTE> {}

export interface Route extends ResourcePropertiesOf<typeof ROUTE> {}

/** A route: `ip netns exec blue ip route add 192.168.1.0/24 via 192.168.15.5`, or a default route. */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the interface declares the properties the engine sets (from the schema)
export class Route extends dynamicResource<"Route", RouteArgs>("Route") {}
