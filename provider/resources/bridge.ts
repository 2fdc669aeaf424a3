import * as pulumi from "@pulumi/pulumi";
import type { ConnectionArgs } from "../connection";
import { secretConnection, shimProvider, withSecretConnection } from "./shim";

export interface BridgeArgs {
  connection: pulumi.Input<ConnectionArgs>;
  /** The bridge's interface name; defaults to the resource name. */
  name?: pulumi.Input<string>;
  /** Create it in that named namespace (absent: the host's own). */
  namespace?: pulumi.Input<string>;
  /** Addresses in CIDR form, e.g. "192.168.15.5/24". */
  addresses?: pulumi.Input<pulumi.Input<string>[]>;
  mtu?: pulumi.Input<number>;
  /** Bring the bridge up (default true). */
  up?: pulumi.Input<boolean>;
  /** Take over a bridge that already exists instead of failing (default false). */
  adopt?: pulumi.Input<boolean>;
}

const provider = shimProvider("pulumi-netns/impl/bridge");

/** A Linux bridge: `ip link add v-net-0 type bridge`, its address, up. Its MAC stays fixed as ports come and go. */
export class Bridge extends pulumi.dynamic.Resource {
  declare readonly connection: pulumi.Output<ConnectionArgs>;
  declare readonly name: pulumi.Output<string>;
  declare readonly namespace: pulumi.Output<string | undefined>;
  declare readonly addresses: pulumi.Output<string[]>;
  declare readonly mtu: pulumi.Output<number | undefined>;
  declare readonly up: pulumi.Output<boolean>;
  declare readonly mac: pulumi.Output<string>;
  declare readonly ifindex: pulumi.Output<number>;
  declare readonly adopt: pulumi.Output<boolean>;
  declare readonly adopted: pulumi.Output<boolean>;
  declare readonly knownHostKeys: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: BridgeArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      provider,
      name,
      {
        connection: secretConnection(args.connection),
        name: args.name ?? name,
        namespace: args.namespace,
        addresses: args.addresses,
        mtu: args.mtu,
        up: args.up,
        adopt: args.adopt,
        mac: undefined,
        ifindex: undefined,
        adopted: undefined,
        ruleId: undefined,
        comment: undefined,
        rules: undefined,
        missingRules: undefined,
        knownHostKeys: undefined,
      },
      withSecretConnection(opts),
      "netns",
      "Bridge",
    );
  }
}
