import type { PROBE } from "../resourceSchemas";
import { dynamicResource, type ResourceArgsOf, type ResourcePropertiesOf } from "./shim";

export interface ProbeArgs extends ResourceArgsOf<typeof PROBE> {}

export interface Probe extends ResourcePropertiesOf<typeof PROBE> {}

/**
 * Reachability as part of the stack (Mininet's `pingAll`, declared): an ICMP
 * echo or a TCP connect from a namespace (or the host) to an address. Create
 * and update fail the `up` unless it sees what `expect` says; refresh checks
 * again and reports a change.
 */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the interface declares the properties the engine sets (from the schema)
export class Probe extends dynamicResource<"Probe", ProbeArgs>("Probe") {}
