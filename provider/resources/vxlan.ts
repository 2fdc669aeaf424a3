import type { VXLAN } from "../resourceSchemas";
import { dynamicResource, type ResourceArgsOf, type ResourcePropertiesOf } from "./shim";

export interface VxlanArgs extends ResourceArgsOf<typeof VXLAN> {}

export interface Vxlan extends ResourcePropertiesOf<typeof VXLAN> {}

/** A VXLAN device with unicast peers: `ip link add vxlan0 type vxlan id 1 dstport 4789`, one `bridge fdb append 00:00:00:00:00:00 dst <peer>` per peer, optionally a bridge port. */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the interface declares the properties the engine sets (from the schema)
export class Vxlan extends dynamicResource<"Vxlan", VxlanArgs>("Vxlan") {}
