import type { VETH_PAIR } from "../resourceSchemas";
import { dynamicResource, type ResourceArgsOf, type ResourcePropertiesOf } from "./shim";

export interface VethPairArgs extends ResourceArgsOf<typeof VETH_PAIR> {}

export interface VethPair extends ResourcePropertiesOf<typeof VETH_PAIR> {}

/** A virtual cable: `ip link add veth-red type veth peer name veth-blue`, moved, bridged, addressed, up. */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the interface declares the properties the engine sets (from the schema)
export class VethPair extends dynamicResource<"VethPair", VethPairArgs>("VethPair") {}
