import type { BRIDGE } from "../resourceSchemas";
import { dynamicResource, type ResourceArgsOf, type ResourcePropertiesOf } from "./shim";

export interface BridgeArgs extends ResourceArgsOf<typeof BRIDGE> {}

export interface Bridge extends ResourcePropertiesOf<typeof BRIDGE> {}

/** A Linux bridge: `ip link add v-net-0 type bridge`, its address, up. Its MAC stays fixed as ports come and go. */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the interface declares the properties the engine sets (from the schema)
export class Bridge extends dynamicResource<"Bridge", BridgeArgs>("Bridge") {}
