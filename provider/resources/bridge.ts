import { BRIDGE } from "../resourceSchemas";
import { dynamicResource, type ResourceArgsOf } from "./shim";

export interface BridgeArgs extends ResourceArgsOf<typeof BRIDGE> {}

/** A Linux bridge: `ip link add v-net-0 type bridge`, its address, up. Its MAC stays fixed as ports come and go. */
export class Bridge extends dynamicResource<typeof BRIDGE, BridgeArgs>("Bridge", BRIDGE) {}
