import type { NETWORK_ISOLATION } from "../resourceSchemas";
import { dynamicResource, type ResourceArgsOf, type ResourcePropertiesOf } from "./shim";

export interface NetworkIsolationArgs extends ResourceArgsOf<typeof NETWORK_ISOLATION> {}

export interface NetworkIsolation extends ResourcePropertiesOf<typeof NETWORK_ISOLATION> {}

/** IsolatedNetwork's collision checks and its isolation from the host's other networks (kernel/isolation.ts). */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the interface declares the properties the engine sets (from the schema)
export class NetworkIsolation extends dynamicResource<"NetworkIsolation", NetworkIsolationArgs>("NetworkIsolation") {}
