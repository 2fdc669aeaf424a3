import * as pulumi from "@pulumi/pulumi";
import type { ConnectionArgs } from "../connection";
import { secretConnection, shimProvider, withSecretConnection } from "./shim";

export interface PortForwardArgs {
  connection: pulumi.Input<ConnectionArgs>;
  /** The port on the host's own addresses. */
  hostPort: pulumi.Input<number>;
  /** Where to send it, e.g. the address of a namespace on the bridge. */
  toAddress: pulumi.Input<string>;
  /** Defaults to hostPort. */
  toPort?: pulumi.Input<number>;
  /** "tcp" (default) or "udp". */
  protocol?: pulumi.Input<"tcp" | "udp">;
  /** Only for traffic arriving on this interface. */
  inInterface?: pulumi.Input<string>;
  /** In that named namespace (absent: the host's own). */
  namespace?: pulumi.Input<string>;
  /** Also forward connections the host opens to itself, including to localhost (default true). */
  fromHost?: pulumi.Input<boolean>;
}

const provider = shimProvider("pulumi-netns/impl/portForward");

/** Inbound access: DNAT of a host port to an address and port inside the lab network. */
export class PortForward extends pulumi.dynamic.Resource {
  declare readonly connection: pulumi.Output<ConnectionArgs>;
  declare readonly hostPort: pulumi.Output<number>;
  declare readonly toAddress: pulumi.Output<string>;
  declare readonly toPort: pulumi.Output<number>;
  declare readonly protocol: pulumi.Output<"tcp" | "udp">;
  declare readonly inInterface: pulumi.Output<string | undefined>;
  declare readonly namespace: pulumi.Output<string | undefined>;
  declare readonly fromHost: pulumi.Output<boolean>;
  declare readonly comment: pulumi.Output<string>;
  declare readonly rules: pulumi.Output<string[]>;
  declare readonly missingRules: pulumi.Output<string[]>;
  declare readonly knownHostKeys: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: PortForwardArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      provider,
      name,
      {
        connection: secretConnection(args.connection),
        hostPort: args.hostPort,
        toAddress: args.toAddress,
        toPort: args.toPort,
        protocol: args.protocol,
        inInterface: args.inInterface,
        namespace: args.namespace,
        fromHost: args.fromHost,
        ruleId: undefined,
        comment: undefined,
        rules: undefined,
        missingRules: undefined,
        sysctlsOn: undefined,
        knownHostKeys: undefined,
      },
      withSecretConnection(opts),
      "netns",
      "PortForward",
    );
  }
}
