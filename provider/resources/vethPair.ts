import { VETH_PAIR } from "../resourceSchemas";
import { dynamicResource, type ResourceArgsOf } from "./shim";

export interface VethPairArgs extends ResourceArgsOf<typeof VETH_PAIR> {}

/** A virtual cable: `ip link add veth-red type veth peer name veth-blue`, moved, bridged, addressed, up. */
export class VethPair extends dynamicResource<typeof VETH_PAIR, VethPairArgs>("VethPair", VETH_PAIR) {}
