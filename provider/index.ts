export type { ConnectionArgs } from "./connection";
export { Namespace, type NamespaceArgs } from "./resources/namespace";
