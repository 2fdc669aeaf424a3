export type { ConnectionArgs } from "./connection";
export { Namespace, type NamespaceArgs } from "./resources/namespace";
export { VethPair, type VethPairArgs, type VethEnd, type VethEndOutput } from "./resources/vethPair";
export { Bridge, type BridgeArgs } from "./resources/bridge";
export { Route, type RouteArgs } from "./resources/route";
export { MasqueradeRule, type MasqueradeRuleArgs } from "./resources/masqueradeRule";
export { PortForward, type PortForwardArgs } from "./resources/portForward";
