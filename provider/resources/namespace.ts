import { NAMESPACE } from "../resourceSchemas";
import { dynamicResource, type ResourceArgsOf } from "./shim";

export interface NamespaceArgs extends ResourceArgsOf<typeof NAMESPACE> {}

/** A named network namespace: `ip netns add red`. */
export class Namespace extends dynamicResource<typeof NAMESPACE, NamespaceArgs>("Namespace", NAMESPACE) {}
