import * as pulumi from "@pulumi/pulumi";
import type { ConnectionArgs } from "../connection";

/**
 * A dynamic provider that only forwards to `require(implModule)` at run time.
 * The closure serializer stores these few lines (and the module name) in
 * state, not the implementation, so the serialized provider stays small and a
 * fixed release of this package reaches `refresh` and `destroy` of stacks
 * created with an older one.
 */
export function shimProvider(implModule: string): pulumi.dynamic.ResourceProvider {
  return {
    check: (olds, news) => require(implModule).check(olds, news),
    diff: (id, olds, news) => require(implModule).diff(id, olds, news),
    create: (inputs) => require(implModule).create(inputs),
    read: (id, props) => require(implModule).read(id, props),
    update: (id, olds, news) => require(implModule).update(id, olds, news),
    delete: (id, props) => require(implModule).remove(id, props),
  };
}

/** Every resource keeps its whole `connection` output secret, whatever parts of it were. */
export function withSecretConnection<T extends pulumi.CustomResourceOptions>(opts: T | undefined): T {
  const extra = opts?.additionalSecretOutputs ?? [];
  return { ...(opts ?? ({} as T)), additionalSecretOutputs: [...extra, "connection"] };
}

/**
 * The `connection` input, marked secret. The engine stores a resource's inputs
 * as given (additionalSecretOutputs covers outputs only), so a key passed as a
 * plain string would otherwise sit in the state and show in diffs in clear.
 */
export function secretConnection(connection: pulumi.Input<ConnectionArgs>): pulumi.Output<ConnectionArgs> {
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
