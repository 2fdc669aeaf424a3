import * as pulumi from "@pulumi/pulumi";
import type { ConnectionArgs } from "../connection";
import type * as bridge from "../impl/bridge";
import type * as masqueradeRule from "../impl/masqueradeRule";
import type * as namespace from "../impl/namespace";
import type * as networkIsolation from "../impl/networkIsolation";
import type * as portForward from "../impl/portForward";
import type * as probe from "../impl/probe";
import type * as route from "../impl/route";
import type { BaseOutputs, ProviderOf } from "../impl/types";
import type * as vethPair from "../impl/vethPair";
import type * as vxlan from "../impl/vxlan";
import {
  BRIDGE,
  MASQUERADE_RULE,
  NAMESPACE,
  NETWORK_ISOLATION,
  PORT_FORWARD,
  PROBE,
  ROUTE,
  VETH_PAIR,
  VXLAN,
} from "../resourceSchemas";
import { type ArgsOf, OTHER_FIELDS, type PropertiesOf, type Schema } from "../schema";

/** Each resource type's schema. */
export const SCHEMAS = {
  Bridge: BRIDGE,
  MasqueradeRule: MASQUERADE_RULE,
  Namespace: NAMESPACE,
  NetworkIsolation: NETWORK_ISOLATION,
  PortForward: PORT_FORWARD,
  Probe: PROBE,
  Route: ROUTE,
  VethPair: VETH_PAIR,
  Vxlan: VXLAN,
};

export type ResourceType = keyof typeof SCHEMAS;

/**
 * Each resource type's impl module, reached at run time as
 * `pulumi-netns/impl/<type in lower camel case>`. Types only: a value import
 * would put the implementation into the serialized provider.
 */
interface ImplModules {
  Bridge: typeof bridge;
  MasqueradeRule: typeof masqueradeRule;
  Namespace: typeof namespace;
  NetworkIsolation: typeof networkIsolation;
  PortForward: typeof portForward;
  Probe: typeof probe;
  Route: typeof route;
  VethPair: typeof vethPair;
  Vxlan: typeof vxlan;
}

/**
 * What a stored shim calls: the impl module's six operations by name, which
 * every release exports (`remove` is the provider's `delete`). Each impl
 * module's typed `provider` is made of these, so the compiler checks them
 * against the resource's schema.
 */
type ImplOperations<S extends Schema> = Pick<ProviderOf<S>, "check" | "diff" | "create" | "read" | "update"> & {
  remove: ProviderOf<S>["delete"];
};

// The seam the shim crosses, checked by the compiler: each type's impl module
// takes the inputs and outputs of that type's schema. Kept out of every
// exported signature, so that the published declarations of the classes do not
// reach the implementation's (its transport's would need @types/ssh2).
type Seam<T extends ResourceType> =
  ImplModules[T] extends ImplOperations<(typeof SCHEMAS)[T]>
    ? ImplModules[T]["provider"] extends ProviderOf<(typeof SCHEMAS)[T]>
      ? true
      : false
    : false;
const _seamsHold: { [T in ResourceType]: Seam<T> } = {
  Bridge: true,
  MasqueradeRule: true,
  Namespace: true,
  NetworkIsolation: true,
  PortForward: true,
  Probe: true,
  Route: true,
  VethPair: true,
  Vxlan: true,
};

/**
 * A dynamic provider that only forwards to `require(implModule)` at run time.
 * The closure serializer stores these few lines (and the module name) in
 * state, not the implementation, so the serialized provider stays small and a
 * fixed release of this package reaches `refresh` and `destroy` of stacks
 * created with an older one. It calls only the operations every release
 * exports by name (ImplOperations), so that a stack also goes back to an older
 * release after an upgrade (exported for its test).
 */
export function shimProvider<S extends Schema>(implModule: string): ProviderOf<S> {
  const impl = (): ImplOperations<S> => require(implModule);
  return {
    check: (olds, news) => impl().check(olds, news),
    diff: (id, olds, news) => impl().diff(id, olds, news),
    create: (inputs) => impl().create(inputs),
    read: (id, props) => impl().read(id, props),
    update: (id, olds, news) => impl().update(id, olds, news),
    delete: (id, props) => impl().remove(id, props),
  };
}

/** A resource's public args: its connection and the fields of its schema. */
export type ResourceArgsOf<S extends Schema> = {
  /** How to reach the host over SSH (the fields of the Pulumi Command provider's connection). Always kept secret. */
  connection: pulumi.Input<ConnectionArgs>;
} & ArgsOf<S["fields"]>;

/**
 * A resource's properties: its connection, the host keys it recorded, its
 * fields and declared outputs. The engine sets one for each key of the input
 * bag; each class declares them by merging this into its own declaration.
 */
export type ResourcePropertiesOf<S extends Schema> = {
  readonly [K in keyof BaseOutputs]: pulumi.Output<K extends "connection" ? ConnectionArgs : BaseOutputs[K]>;
} & PropertiesOf<S>;

/**
 * The base class of the resource of type `type` with schema S, taking args A
 * (its public args interface, so that users see it by name).
 */
export function dynamicResource<T extends ResourceType, A extends ResourceArgsOf<(typeof SCHEMAS)[T]>>(
  type: T,
): new (
  name: string,
  args: A,
  opts?: pulumi.CustomResourceOptions,
) => pulumi.dynamic.Resource {
  const schema: Schema = SCHEMAS[type];
  const provider = shimProvider(`pulumi-netns/impl/${type.charAt(0).toLowerCase()}${type.slice(1)}`);
  class NetnsResource extends pulumi.dynamic.Resource {
    constructor(name: string, args: A, opts?: pulumi.CustomResourceOptions) {
      super(provider, name, inputBag(schema, name, args, opts), withSecretConnection(opts), "netns", type);
    }
  }
  return NetnsResource;
}

/**
 * What the constructor registers: the connection (secret), the fields (a field
 * filled in by the resource's name when absent), every output unknown, so that
 * the class gets a property for each, and the names of any other fields given
 * (exported for its test).
 * A field that is a resource option (`retainOnDelete`) comes from `opts`: the
 * provider sees it (the engine never tells a dynamic provider its options), and
 * one given in the args goes to check by name, which refuses it.
 */
export function inputBag<S extends Schema>(
  schema: S,
  name: string,
  args: ResourceArgsOf<S>,
  opts?: pulumi.CustomResourceOptions,
): pulumi.Inputs {
  const given = args as Record<string, unknown>;
  const options = (opts ?? {}) as Record<string, unknown>;
  const bag: pulumi.Inputs = { connection: secretConnection(args.connection) };
  for (const [key, f] of Object.entries(schema.fields))
    bag[key] =
      f.presence === "resourceName" ? (given[key] ?? name) : f.presence === "option" ? options[key] : given[key];
  for (const key of [...Object.keys(schema.outputs), "knownHostKeys"]) bag[key] = undefined;
  // A field it does not have (a misspelt one, an output) goes to check by name only, and check refuses
  // it: dropped here it would go unnoticed; its value never reaches the engine, and a key such as
  // `hasOwnProperty` or `__proto__` never reaches the SDK's own objects.
  const others = Object.keys(given).filter(
    (key) =>
      key !== "connection" &&
      (!Object.hasOwn(schema.fields, key) || schema.fields[key].presence === "option") &&
      given[key] !== undefined,
  );
  if (others.length > 0) bag[OTHER_FIELDS] = others;
  return bag;
}

/** Every resource keeps its whole `connection` output secret, whatever parts of it were. */
function withSecretConnection<T extends pulumi.CustomResourceOptions>(opts: T | undefined): T {
  const extra = opts?.additionalSecretOutputs ?? [];
  return { ...(opts ?? ({} as T)), additionalSecretOutputs: [...extra, "connection"] };
}

/**
 * The `connection` input, marked secret. The engine stores a resource's inputs
 * as given (additionalSecretOutputs covers outputs only), so a key passed as a
 * plain string would otherwise sit in the state and show in diffs in clear.
 */
function secretConnection(connection: pulumi.Input<ConnectionArgs>): pulumi.Output<ConnectionArgs> {
  return pulumi.secret(connection) as pulumi.Output<ConnectionArgs>;
}

/**
 * @pulumi/pulumi (3.248.0, and the releases after it checked: 3.252, 3.260)
 * logs every RegisterResource/ReadResource response whole as a debug
 * diagnostic (`... RPC finished: <label>; err: ..., resp: <protobuf>`). A
 * response holds the resource's outputs with their secrets in clear, and the
 * engine masks only config secrets in diagnostics, so `pulumi up --debug` (and
 * every event log) would print a key that the program passed as a string. For
 * this package's resources the response is left out of that line.
 */
function redactSdkResponseDumps(): void {
  type SdkLog = { debug: (msg: unknown, ...rest: unknown[]) => unknown; pulumiNetnsRedacts?: boolean };
  const sdkLog = require("@pulumi/pulumi/log") as SdkLog;
  if (sdkLog.pulumiNetnsRedacts) return;
  const debug = sdkLog.debug;
  sdkLog.debug = (msg, ...rest) => debug(typeof msg === "string" ? redactResponseDump(msg) : msg, ...rest);
  sdkLog.pulumiNetnsRedacts = true;
}

const RESPONSE_DUMP =
  /^((?:RegisterResource|ReadResource|getResource Invoke) RPC finished: [^\n]*?pulumi-nodejs:dynamic\/netns:[^\n]*?), resp: [\s\S]*$/;

/** A debug line of the SDK with this package's RPC response cut off (exported for its test). */
export function redactResponseDump(msg: string): string {
  return msg.replace(RESPONSE_DUMP, "$1, resp: [not shown: pulumi-netns outputs hold the connection's secrets]");
}

redactSdkResponseDumps();
