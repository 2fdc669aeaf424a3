import * as pulumi from "@pulumi/pulumi";
import type { ConnectionArgs } from "../connection";
import { secretConnection, shimProvider, withSecretConnection } from "./shim";

export interface MasqueradeRuleArgs {
  connection: pulumi.Input<ConnectionArgs>;
  /** The private network to masquerade, in CIDR form, e.g. "192.168.15.0/24". */
  source: pulumi.Input<string>;
  /** Only for traffic leaving through this interface (`-o eth0`). */
  outInterface?: pulumi.Input<string>;
  /** For traffic leaving through any interface but this one (`! -o v-net-0`). */
  excludeOutInterface?: pulumi.Input<string>;
  /** In that named namespace (absent: the host's own). */
  namespace?: pulumi.Input<string>;
  /** Set net.ipv4.ip_forward=1 while needed, and put back the old value after (default true). */
  enableIpForward?: pulumi.Input<boolean>;
}

const provider = shimProvider("pulumi-netns/impl/masqueradeRule");

/** Outbound NAT: `iptables -t nat -A POSTROUTING -s 192.168.15.0/24 -j MASQUERADE`, plus forwarding. */
export class MasqueradeRule extends pulumi.dynamic.Resource {
  declare readonly connection: pulumi.Output<ConnectionArgs>;
  declare readonly source: pulumi.Output<string>;
  declare readonly outInterface: pulumi.Output<string | undefined>;
  declare readonly excludeOutInterface: pulumi.Output<string | undefined>;
  declare readonly namespace: pulumi.Output<string | undefined>;
  declare readonly enableIpForward: pulumi.Output<boolean>;
  /** The owner tag in every rule's comment. */
  declare readonly comment: pulumi.Output<string>;
  declare readonly rules: pulumi.Output<string[]>;
  declare readonly missingRules: pulumi.Output<string[]>;
  declare readonly knownHostKeys: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: MasqueradeRuleArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      provider,
      name,
      {
        connection: secretConnection(args.connection),
        source: args.source,
        outInterface: args.outInterface,
        excludeOutInterface: args.excludeOutInterface,
        namespace: args.namespace,
        enableIpForward: args.enableIpForward,
        ruleId: undefined,
        comment: undefined,
        rules: undefined,
        missingRules: undefined,
        ipForwardOn: undefined,
        knownHostKeys: undefined,
      },
      withSecretConnection(opts),
      "netns",
      "MasqueradeRule",
    );
  }
}
