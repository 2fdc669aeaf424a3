import * as pulumi from "@pulumi/pulumi";
import type { ConnectionArgs } from "../connection";
import { secretConnection, shimProvider, withSecretConnection } from "./shim";

export interface NamespaceArgs {
  connection: pulumi.Input<ConnectionArgs>;
  /** The namespace's name on the host; defaults to the resource name. */
  name?: pulumi.Input<string>;
  /** Bring `lo` up inside the namespace (default true). */
  loopbackUp?: pulumi.Input<boolean>;
  /** Take over a namespace that already exists instead of failing (default false). */
  adopt?: pulumi.Input<boolean>;
}

const provider = shimProvider("pulumi-netns/impl/namespace");

/** A named network namespace: `ip netns add red`. */
export class Namespace extends pulumi.dynamic.Resource {
  declare readonly connection: pulumi.Output<ConnectionArgs>;
  declare readonly name: pulumi.Output<string>;
  declare readonly loopbackUp: pulumi.Output<boolean>;
  declare readonly adopt: pulumi.Output<boolean>;
  /** True when the namespace existed already and was adopted. */
  declare readonly adopted: pulumi.Output<boolean>;
  /** Host keys seen at first contact, by "host:port". */
  declare readonly knownHostKeys: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: NamespaceArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      provider,
      name,
      {
        connection: secretConnection(args.connection),
        name: args.name ?? name,
        loopbackUp: args.loopbackUp,
        adopt: args.adopt,
        adopted: undefined,
        knownHostKeys: undefined,
      },
      withSecretConnection(opts),
      "netns",
      "Namespace",
    );
  }
}
