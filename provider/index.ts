export { diagramOf } from "../components/diagram";
export { IsolatedNetwork, type IsolatedNetworkArgs } from "../components/isolatedNetwork";
export { type NamespacePlan, type NetworkPlan, type NetworkSpec, PlanError, planNetwork } from "../components/plan";
export { podDiagramOf } from "../components/podDiagram";
export { PodNetwork, type PodNetworkArgs } from "../components/podNetwork";
export {
  type NodePlan,
  type PodNetworkPlan,
  type PodNetworkSpec,
  type PodPlan,
  PodPlanError,
  planPodNetwork,
} from "../components/podPlan";
export type { ConnectionArgs } from "./connection";
export type { VethEnd, VethEndOutput } from "./resourceSchemas";
export { Bridge, type BridgeArgs } from "./resources/bridge";
export { MasqueradeRule, type MasqueradeRuleArgs } from "./resources/masqueradeRule";
export { Namespace, type NamespaceArgs } from "./resources/namespace";
export { PortForward, type PortForwardArgs } from "./resources/portForward";
export { Probe, type ProbeArgs } from "./resources/probe";
export { Route, type RouteArgs } from "./resources/route";
export { VethPair, type VethPairArgs } from "./resources/vethPair";
export { Vxlan, type VxlanArgs } from "./resources/vxlan";
