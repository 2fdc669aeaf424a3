import { strict as assert } from "node:assert";
import { diffConnection } from "../../../../provider/impl/common";
import { UNKNOWN } from "../../../../provider/validate";
import { VALID_CONNECTION } from "../../../security/cases";
import { type DiffRow, diffTable, RESOURCE_KINDS } from "./support";

const JUMP = { host: "198.18.0.1", user: "jump" };

/** The connection's part of every resource's diff: another host is another object, the rest is how it is reached. */
const CONNECTION_ROWS: DiffRow[] = [
  { what: "the same values", expect: "none" },
  { what: "another host", news: { connection: { ...VALID_CONNECTION, host: "198.18.0.3" } }, expect: ["connection"] },
  { what: "another port", news: { connection: { ...VALID_CONNECTION, port: 2222 } }, expect: ["connection"] },
  {
    what: "the host unknown (preview)",
    news: { connection: { ...VALID_CONNECTION, host: UNKNOWN } },
    expect: ["connection"],
  },
  {
    what: "the port unknown (preview)",
    news: { connection: { ...VALID_CONNECTION, port: UNKNOWN } },
    expect: ["connection"],
  },
  { what: "the whole connection unknown", news: { connection: UNKNOWN }, expect: ["connection"] },
  {
    what: "port 22 spelt out where state had none (not the same text: an update, never a replace)",
    olds: { connection: { ...VALID_CONNECTION, port: undefined } },
    expect: "update",
  },
  { what: "another user", news: { connection: { ...VALID_CONNECTION, user: "admin" } }, expect: "update" },
  { what: "another private key", news: { connection: { ...VALID_CONNECTION, privateKey: "other" } }, expect: "update" },
  { what: "a password added", news: { connection: { ...VALID_CONNECTION, password: "pw" } }, expect: "update" },
  { what: "a host key pinned", news: { connection: { ...VALID_CONNECTION, hostKey: "SHA256:x" } }, expect: "update" },
  { what: "sudo switched on", news: { connection: { ...VALID_CONNECTION, sudo: true } }, expect: "update" },
  { what: "a jump host added", news: { connection: { ...VALID_CONNECTION, proxy: JUMP } }, expect: "update" },
  {
    what: "the jump host's user changed",
    olds: { connection: { ...VALID_CONNECTION, proxy: JUMP } },
    news: { connection: { ...VALID_CONNECTION, proxy: { ...JUMP, user: "other" } } },
    expect: "update",
  },
  {
    what: "the same fields in another order, absent and undefined or null alike",
    olds: { connection: { privateKey: VALID_CONNECTION.privateKey, user: "root", port: 22, host: "198.18.0.2" } },
    news: {
      connection: { ...VALID_CONNECTION, password: undefined, hostKey: null, proxy: { ...JUMP, sudo: undefined } },
    },
    expect: "update",
  },
  {
    what: "the jump host's fields in another order",
    olds: { connection: { ...VALID_CONNECTION, proxy: { user: "jump", host: "198.18.0.1" } } },
    news: { connection: { ...VALID_CONNECTION, proxy: JUMP } },
    expect: "none",
  },
];

describe("impl/common: every resource's diff of its connection", () => {
  for (const kind of RESOURCE_KINDS) diffTable(kind, CONNECTION_ROWS);
});

describe("impl/common: diffConnection", () => {
  const rows: Array<[string, unknown, unknown, { replace: boolean; update: boolean }]> = [
    ["no connection in state (an old state)", undefined, VALID_CONNECTION, { replace: true, update: false }],
    ["no new connection", VALID_CONNECTION, undefined, { replace: true, update: false }],
    [
      "host and user both changed: replace only",
      VALID_CONNECTION,
      { ...VALID_CONNECTION, host: "h", user: "u" },
      { replace: true, update: false },
    ],
    [
      "undefined and null fields: nothing",
      { ...VALID_CONNECTION, sudo: null },
      { ...VALID_CONNECTION, agentSocketPath: undefined },
      { replace: false, update: false },
    ],
  ];
  for (const [what, olds, news, expected] of rows)
    it(what, () => assert.deepEqual(diffConnection(olds as never, news as never), expected));
});
