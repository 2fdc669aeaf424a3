import { strict as assert } from "node:assert";
import { redactResponseDump } from "../../../../provider/resources/shim";

const NOT_SHOWN = "resp: [not shown: pulumi-netns outputs hold the connection's secrets]";
const URN = "urn:pulumi:dev::lab::pulumi-nodejs:dynamic:Resource$pulumi-nodejs:dynamic/netns:Namespace::red";
const SECRET_RESP =
  'resp: urn: "x" object { fields { key: "privateKey" value { string_value: "-----BEGIN OPENSSH PRIVATE KEY-----\\nAAAA" } } }';

/** SDK debug lines, and whether this package's response in them is cut. */
const ROWS: Array<[string, string, string]> = [
  [
    "RegisterResource of a netns resource",
    `RegisterResource RPC finished: resource:red[${URN}]; err: null, ${SECRET_RESP}`,
    `RegisterResource RPC finished: resource:red[${URN}]; err: null, ${NOT_SHOWN}`,
  ],
  [
    "ReadResource of a netns resource",
    `ReadResource RPC finished: red[${URN}]; err: null, ${SECRET_RESP}`,
    `ReadResource RPC finished: red[${URN}]; err: null, ${NOT_SHOWN}`,
  ],
  [
    "getResource Invoke of a netns resource",
    `getResource Invoke RPC finished: ${URN}; err: null, ${SECRET_RESP}`,
    `getResource Invoke RPC finished: ${URN}; err: null, ${NOT_SHOWN}`,
  ],
  [
    "a response over several lines",
    `RegisterResource RPC finished: [${URN}]; err: null, resp: a\nprivateKey\nb`,
    `RegisterResource RPC finished: [${URN}]; err: null, ${NOT_SHOWN}`,
  ],
];
const KEPT: Array<[string, string]> = [
  [
    "another package's resource",
    "RegisterResource RPC finished: resource:b[urn:pulumi:dev::p::aws:s3/bucket:Bucket::b]; err: null, resp: x",
  ],
  ["another RPC", `RegisterResourceOutputs RPC finished: ${URN}; err: null, resp: x`],
  [
    "the netns type only in the response, not the label",
    "RegisterResource RPC finished: resource:b[urn:x]; err: null\nresp: pulumi-nodejs:dynamic/netns:Namespace",
  ],
  ["a line without a response", "Registering resource: t=pulumi-nodejs:dynamic/netns:Namespace, name=red"],
];

describe("resources/shim: redactResponseDump", () => {
  for (const [what, line, redacted] of ROWS)
    it(`cuts the response of ${what}`, () => {
      assert.equal(redactResponseDump(line), redacted);
      assert.ok(!redactResponseDump(line).includes("privateKey"));
    });
  for (const [what, line] of KEPT) it(`leaves ${what} as it is`, () => assert.equal(redactResponseDump(line), line));
});
