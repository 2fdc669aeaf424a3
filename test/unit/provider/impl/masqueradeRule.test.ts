import { UNKNOWN } from "../../../../provider/validate";
import { defaultsTable, diffTable } from "./support";

describe("impl/masqueradeRule", () => {
  defaultsTable("masqueradeRule", [
    {
      what: "forwarding is switched on by default",
      args: { source: "10.0.0.0/8" },
      expect: { enableIpForward: true },
      absent: ["outInterface", "excludeOutInterface", "namespace"],
    },
    {
      what: "enableIpForward false is kept",
      args: { source: "10.0.0.0/8", enableIpForward: false },
      expect: { enableIpForward: false },
    },
  ]);

  // Every field of a rule is part of the rule: any change makes a new one (created before the old goes).
  diffTable("masqueradeRule", [
    { what: "another source", news: { source: "10.0.0.0/8" }, expect: ["source"] },
    { what: "the source unknown", news: { source: UNKNOWN }, expect: ["source"] },
    { what: "another outInterface", news: { outInterface: "eth1" }, expect: ["outInterface"] },
    {
      what: "the ! -o form instead",
      news: { outInterface: undefined, excludeOutInterface: "v-net-0" },
      expect: ["outInterface", "excludeOutInterface"],
    },
    { what: "another namespace", news: { namespace: "blue" }, expect: ["namespace"] },
    { what: "forwarding left alone", news: { enableIpForward: false }, expect: ["enableIpForward"] },
    { what: "refresh found a rule missing", olds: { missingRules: ["-t nat -A POSTROUTING ..."] }, expect: "update" },
    { what: "refresh found forwarding off", olds: { ipForwardOn: false }, expect: "update" },
    {
      what: "no drift flags in state (an older release's)",
      olds: { missingRules: undefined, ipForwardOn: undefined },
      expect: "none",
    },
    {
      what: "another rule id and comment (outputs only)",
      olds: { ruleId: "ffffffff", comment: "other" },
      expect: "none",
    },
  ]);
});
