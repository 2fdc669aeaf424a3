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
