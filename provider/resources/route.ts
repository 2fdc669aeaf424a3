import * as pulumi from "@pulumi/pulumi";
import type { ConnectionArgs } from "../connection";
import { secretConnection, shimProvider, withSecretConnection } from "./shim";

export interface RouteArgs {
  connection: pulumi.Input<ConnectionArgs>;
  /** A network in CIDR form, or "default". */
  destination: pulumi.Input<string>;
  /** Gateway address. */
  via?: pulumi.Input<string>;
  /** Output interface. */
  device?: pulumi.Input<string>;
  /** Add it in that named namespace (absent: the host's own). */
  namespace?: pulumi.Input<string>;
  /** Route metric (default 0). Part of the route's identity: changing it adds the new route before removing the old. */
  metric?: pulumi.Input<number>;
}

const provider = shimProvider("pulumi-netns/impl/route");

/** A route: `ip netns exec blue ip route add 192.168.1.0/24 via 192.168.15.5`, or a default route. */
export class Route extends pulumi.dynamic.Resource {
  declare readonly connection: pulumi.Output<ConnectionArgs>;
  declare readonly destination: pulumi.Output<string>;
  declare readonly via: pulumi.Output<string | undefined>;
  declare readonly device: pulumi.Output<string | undefined>;
  declare readonly namespace: pulumi.Output<string | undefined>;
  declare readonly metric: pulumi.Output<number | undefined>;
  /** The interface the kernel uses for this route. */
  declare readonly observedDevice: pulumi.Output<string>;
  declare readonly knownHostKeys: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: RouteArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      provider,
      name,
      {
        connection: secretConnection(args.connection),
        destination: args.destination,
        via: args.via,
        device: args.device,
        namespace: args.namespace,
        metric: args.metric,
        observedDevice: undefined,
        knownHostKeys: undefined,
      },
      withSecretConnection(opts),
      "netns",
      "Route",
    );
  }
}
