import type { MASQUERADE_RULE } from "../resourceSchemas";
import { dynamicResource, type ResourceArgsOf, type ResourcePropertiesOf } from "./shim";

export interface MasqueradeRuleArgs extends ResourceArgsOf<typeof MASQUERADE_RULE> {}

export interface MasqueradeRule extends ResourcePropertiesOf<typeof MASQUERADE_RULE> {}

/** Outbound NAT: `iptables -t nat -A POSTROUTING -s 192.168.15.0/24 -j MASQUERADE`, plus forwarding. */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the interface declares the properties the engine sets (from the schema)
export class MasqueradeRule extends dynamicResource<"MasqueradeRule", MasqueradeRuleArgs>("MasqueradeRule") {}
