import * as pulumi from "@pulumi/pulumi";
import type { ConnectionArgs } from "../connection";
import { secretConnection, shimProvider, withSecretConnection } from "./shim";

/** One end of a veth pair. */
export interface VethEnd {
  /** Interface name, 1-15 characters. */
  name: pulumi.Input<string>;
  /** Move this end into that named namespace (absent: the host's own). */
  namespace?: pulumi.Input<string>;
  /** Attach this end to that bridge (in the same namespace as the end). */
  bridge?: pulumi.Input<string>;
  /** Addresses in CIDR form, e.g. "192.168.15.1/24". */
  addresses?: pulumi.Input<pulumi.Input<string>[]>;
  /** Bring the end up (default true). */
  up?: pulumi.Input<boolean>;
}

/** A veth end as observed on the host. */
export interface VethEndOutput {
  name: string;
  namespace?: string;
  bridge?: string;
  addresses: string[];
  up: boolean;
  mac: string;
  ifindex: number;
}

export interface VethPairArgs {
  connection: pulumi.Input<ConnectionArgs>;
  a: pulumi.Input<VethEnd>;
  b: pulumi.Input<VethEnd>;
  /** MTU of both ends. */
  mtu?: pulumi.Input<number>;
  /** Take over a pair that already exists instead of failing (default false). */
  adopt?: pulumi.Input<boolean>;
}

const provider = shimProvider("pulumi-netns/impl/vethPair");

/** A virtual cable: `ip link add veth-red type veth peer name veth-blue`, moved, bridged, addressed, up. */
export class VethPair extends pulumi.dynamic.Resource {
  declare readonly connection: pulumi.Output<ConnectionArgs>;
  declare readonly a: pulumi.Output<VethEndOutput>;
  declare readonly b: pulumi.Output<VethEndOutput>;
  declare readonly mtu: pulumi.Output<number | undefined>;
  declare readonly adopt: pulumi.Output<boolean>;
  declare readonly adopted: pulumi.Output<boolean>;
  declare readonly knownHostKeys: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: VethPairArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      provider,
      name,
      {
        connection: secretConnection(args.connection),
        a: args.a,
        b: args.b,
        mtu: args.mtu,
        adopt: args.adopt,
        adopted: undefined,
        knownHostKeys: undefined,
      },
      withSecretConnection(opts),
      "netns",
      "VethPair",
    );
  }
}
