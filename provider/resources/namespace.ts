import type { NAMESPACE } from "../resourceSchemas";
import { dynamicResource, type ResourceArgsOf, type ResourcePropertiesOf } from "./shim";

export interface NamespaceArgs extends ResourceArgsOf<typeof NAMESPACE> {}

export interface Namespace extends ResourcePropertiesOf<typeof NAMESPACE> {}

/** A named network namespace: `ip netns add red`. */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the interface declares the properties the engine sets (from the schema)
export class Namespace extends dynamicResource<"Namespace", NamespaceArgs>("Namespace") {}
