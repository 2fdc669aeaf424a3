// The test kit's public surface (`pulumi-netns/testing`), named one by one so
// the modules behind it can share helpers without publishing them.
export type { LabExecOptions, LabExecResult } from "./commands";
export { fingerprint } from "./fingerprint";
export type { LabHost, LabProcess, LabSpawnOptions } from "./labHost";
export { startDetachedLabHost, startLabHost, stopLabByName } from "./labHost";
export type { LabSegment, LabSegmentMember, LinkLabHostsOptions } from "./labNetwork";
export { linkLabHosts } from "./labNetwork";
export type { LabHostOptions, LaunchOptions } from "./launch";
export { stopAllLabHosts } from "./liveLabs";
export { checkLabPrerequisites } from "./prerequisites";
export type {
  ConfigValue,
  OperationCounts,
  OperationOptions,
  OperationResult,
  OperationStep,
  StackOptions,
} from "./pulumiStack";
export { PulumiStack } from "./pulumiStack";
export type { LabConnection, LabHostState } from "./state";
export { isLabAlive, LAB_STATE_DIR, listLabStates, readLabState } from "./state";
