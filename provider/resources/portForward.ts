import { PORT_FORWARD } from "../resourceSchemas";
import { dynamicResource, type ResourceArgsOf } from "./shim";

export interface PortForwardArgs extends ResourceArgsOf<typeof PORT_FORWARD> {}

/** Inbound access: DNAT of a host port to an address and port inside the lab network. */
export class PortForward extends dynamicResource<typeof PORT_FORWARD, PortForwardArgs>("PortForward", PORT_FORWARD) {}
