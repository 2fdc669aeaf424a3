import { strict as assert } from "node:assert";
import { recordHostKeys } from "../../../../provider/impl/common";
import { fingerprintOf, hostKeyAlgorithms, mayHoldAnotherType } from "../../../../provider/transport/hostKey";
import {
  expectationFor,
  forgetHostKeys,
  hopPath,
  rememberHostKey,
  rememberRecordedKeys,
} from "../../../../provider/transport/knownKeys";

// Public keys in known_hosts form (their blobs only need the type prefix for these functions).
const blob = (type: string, body: string) => {
  const t = Buffer.from(type);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(t.length);
  return `${type} ${Buffer.concat([len, t, Buffer.from(body)]).toString("base64")}`;
};
const ED = blob("ssh-ed25519", "one");
const ED2 = blob("ssh-ed25519", "two");
const ECDSA = blob("ecdsa-sha2-nistp256", "three");
const RSA = blob("ssh-rsa", "four");

describe("host key expectations (pure)", () => {
  afterEach(() => forgetHostKeys());

  it("offers the expected key's type first, as an exact list (ssh2's prepend would skip it)", () => {
    assert.deepEqual(hostKeyAlgorithms({ keys: [ECDSA], source: "pin" }).slice(0, 2), [
      "ecdsa-sha2-nistp256",
      "ssh-ed25519",
    ]);
    assert.deepEqual(hostKeyAlgorithms({ keys: [RSA], source: "state" }).slice(0, 4), [
      "rsa-sha2-512",
      "rsa-sha2-256",
      "ssh-rsa",
      "ssh-ed25519",
    ]);
    assert.equal(hostKeyAlgorithms(undefined)[0], "ssh-ed25519");
  });

  it("a bare fingerprint asks again without the types already refused, until none is left", () => {
    const pin = { keys: [fingerprintOf(RSA)], source: "pin" as const };
    assert.deepEqual(hostKeyAlgorithms(pin, ["ssh-ed25519", "ecdsa-sha2-nistp256"]), [
      "ecdsa-sha2-nistp384",
      "ecdsa-sha2-nistp521",
      "rsa-sha2-512",
      "rsa-sha2-256",
      "ssh-rsa",
    ]);
    assert.equal(mayHoldAnotherType(pin, ["ssh-ed25519"]), true);
    const all = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"];
    assert.equal(mayHoldAnotherType(pin, all), false);
    assert.equal(
      mayHoldAnotherType({ keys: [ECDSA], source: "pin" }, ["ssh-ed25519"]),
      false,
      "a typed key was asked for first",
    );
  });

  it("expects the caller's pin, else its own recorded key, else what the stack knows of that host, else nothing", () => {
    const conn = { host: "198.18.0.2" };
    assert.equal(expectationFor(conn, {}), undefined);
    rememberRecordedKeys({ host: "198.18.0.2", port: 22 }, { "198.18.0.2:22": ED });
    assert.deepEqual(expectationFor(conn, {}), { keys: [ED], source: "stack" });
    assert.deepEqual(expectationFor(conn, { "198.18.0.2:22": ED2 }), { keys: [ED2], source: "state" });
    assert.deepEqual(expectationFor({ ...conn, hostKey: ECDSA }, { "198.18.0.2:22": ED2 }), {
      keys: [ECDSA],
      source: "pin",
    });
  });

  it("keeps the stack's keys per hop path: the same address behind another jump host is another host", () => {
    const viaA = { host: "10.0.0.5", proxy: { host: "198.18.0.1" } };
    const viaB = { host: "10.0.0.5", proxy: { host: "198.18.0.9" } };
    assert.equal(hopPath(viaA), "198.18.0.1:22 > 10.0.0.5:22");
    rememberRecordedKeys(viaA, { "10.0.0.5:22": ED, "198.18.0.1:22": RSA });
    assert.deepEqual(expectationFor(viaA, {})?.keys, [ED]);
    assert.deepEqual(expectationFor(viaA.proxy, {})?.keys, [RSA]);
    assert.equal(expectationFor(viaB, {}), undefined);
    rememberHostKey(hopPath(viaA), ED2);
    assert.deepEqual(expectationFor(viaA, {})?.keys, [ED, ED2], "a verified new key joins the old one");
  });

  it("records what this contact verified over what state had: a new pin replaces the recorded key", () => {
    const remote = {
      label: "x",
      run: async () => ({ code: 0, stdout: "", stderr: "" }),
      hostKeys: () => ({ "h:22": ED2 }),
    };
    assert.deepEqual(recordHostKeys(remote, { "h:22": ED, "j:22": RSA }), { "h:22": ED2, "j:22": RSA });
  });
});
