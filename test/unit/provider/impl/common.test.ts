import { strict as assert } from "node:assert";
import { diffConnection } from "../../../../provider/impl/common";
import { setProgressSink } from "../../../../provider/transport/progress";
import { UNKNOWN } from "../../../../provider/validate";
import { VALID_CONNECTION } from "../../../security/cases";
import { checkedInputs, type DiffRow, diffTable, implOf, RESOURCE_KINDS } from "./support";

const JUMP = { host: "198.18.0.1", user: "jump" };

/** The connection's part of every resource's diff: another host is another object, the rest is how it is reached. */
const CONNECTION_ROWS: DiffRow[] = [
  { what: "the same values", expect: "none" },
  {
    what: "another host (created there first: nothing on two hosts can collide)",
    news: { connection: { ...VALID_CONNECTION, host: "198.18.0.3" } },
    expect: ["connection"],
    createFirst: true,
  },
  {
    what: "another port on the same host (deleted first: it may be the same machine, issue #10 item 3)",
    news: { connection: { ...VALID_CONNECTION, port: 2222 } },
    expect: ["connection"],
  },
  {
    what: "another host and another port (created there first)",
    news: { connection: { ...VALID_CONNECTION, host: "198.18.0.3", port: 2222 } },
    expect: ["connection"],
    createFirst: true,
  },
  {
    what: "the host name in other case with a trailing dot (the same name: how it is reached)",
    olds: { connection: { ...VALID_CONNECTION, host: "lab.example" } },
    news: { connection: { ...VALID_CONNECTION, host: "LAB.Example." } },
    expect: "update",
  },
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
  const rows: Array<[string, unknown, unknown, { replace: boolean; update: boolean; moves: boolean }]> = [
    [
      "no connection in state (an old state)",
      undefined,
      VALID_CONNECTION,
      { replace: true, update: false, moves: false },
    ],
    ["no new connection", VALID_CONNECTION, undefined, { replace: true, update: false, moves: false }],
    [
      "host and user both changed: replace only, a move",
      VALID_CONNECTION,
      { ...VALID_CONNECTION, host: "h", user: "u" },
      { replace: true, update: false, moves: true },
    ],
    [
      "only the port changed: replace, not a move (the same host may answer on both)",
      VALID_CONNECTION,
      { ...VALID_CONNECTION, port: 2222 },
      { replace: true, update: false, moves: false },
    ],
    [
      "the host in upper case with a trailing dot: the same host, an update",
      { ...VALID_CONNECTION, host: "lab.example" },
      { ...VALID_CONNECTION, host: "Lab.Example." },
      { replace: false, update: true, moves: false },
    ],
    [
      "the host unknown: replace, not known to be a move",
      VALID_CONNECTION,
      { ...VALID_CONNECTION, host: UNKNOWN },
      { replace: true, update: false, moves: false },
    ],
    [
      "undefined and null fields: nothing",
      { ...VALID_CONNECTION, sudo: null },
      { ...VALID_CONNECTION, agentSocketPath: undefined },
      { replace: false, update: false, moves: false },
    ],
  ];
  for (const [what, olds, news, expected] of rows)
    it(what, () => assert.deepEqual(diffConnection(olds as never, news as never), expected));
});

describe("impl/common: a move to another host is told as the diff sees it", () => {
  it("one line naming the object, both hosts and the order; no secret in it", async () => {
    const lines: string[] = [];
    const previous = setProgressSink((l) => lines.push(l));
    try {
      const olds = { ...(await checkedInputs("namespace")), adopted: false, knownHostKeys: {} };
      const news = { ...olds, connection: { ...VALID_CONNECTION, host: "198.18.0.3" } };
      await implOf("namespace").diff(`netns/red@${VALID_CONNECTION.host}:22`, olds, news);
    } finally {
      setProgressSink(previous);
    }
    assert.deepEqual(lines, [
      `netns/red moves from root@${VALID_CONNECTION.host}:22 to root@198.18.0.3:22: created on the new host first, deleted from the old one only after the whole update succeeded`,
    ]);
    assert.ok(!lines[0].includes(String(VALID_CONNECTION.privateKey)));
  });
});
