import { UNKNOWN } from "../../../../provider/validate";
import { defaultsTable, diffTable } from "./support";

describe("impl/namespace", () => {
  defaultsTable("namespace", [
    {
      what: "loopbackUp defaults to true, adopt to false",
      args: { name: "red" },
      expect: { loopbackUp: true, adopt: false },
    },
    {
      what: "given values are kept",
      args: { name: "red", loopbackUp: false, adopt: true },
      expect: { loopbackUp: false, adopt: true },
    },
    {
      what: "an unknown value stays unknown",
      args: { name: UNKNOWN, loopbackUp: UNKNOWN },
      expect: { name: UNKNOWN, loopbackUp: UNKNOWN },
    },
  ]);

  diffTable("namespace", [
    { what: "another name", news: { name: "blue" }, expect: ["name"] },
    { what: "the name unknown", news: { name: UNKNOWN }, expect: ["name"] },
    { what: "loopback down", news: { loopbackUp: false }, expect: "update" },
    { what: "loopbackUp unknown", news: { loopbackUp: UNKNOWN }, expect: "update" },
    { what: "adopt switched on", news: { adopt: true }, expect: "update" },
    { what: "refresh saw the loopback down", olds: { loopbackUp: false }, expect: "update" },
    { what: "an adopted namespace (an output only)", olds: { adopted: true }, expect: "none" },
    {
      what: "recorded host keys (an output only)",
      olds: { knownHostKeys: { "198.18.0.2:22": "ssh-ed25519 AAAA" } },
      expect: "none",
    },
    { what: "another name and loopback down", news: { name: "blue", loopbackUp: false }, expect: ["name"] },
  ]);
});
