import type { PORT_FORWARD } from "../resourceSchemas";
import { dynamicResource, type ResourceArgsOf, type ResourcePropertiesOf } from "./shim";

export interface PortForwardArgs extends ResourceArgsOf<typeof PORT_FORWARD> {}

export interface PortForward extends ResourcePropertiesOf<typeof PORT_FORWARD> {}

/** Inbound access: DNAT of a host port to an address and port inside the lab network. */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the interface declares the properties the engine sets (from the schema)
export class PortForward extends dynamicResource<"PortForward", PortForwardArgs>("PortForward") {}
