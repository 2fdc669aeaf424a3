import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { LabHost, OperationResult } from "../../provider/testing";
import { testingKit, writeProgram } from "../integration/harness";
import { CONFIGURED_PROGRAM, strayKey } from "./support";

describe("security: secrets never leave the secret path (runner, state, logs, trace, errors)", function () {
  this.timeout(300_000);
  let lab: LabHost;
  let dir: string;
  const passphrase = `pp-SECRET-${randomBytes(6).toString("hex")}`;
  const password = `pw-SECRET-${randomBytes(6).toString("hex")}`;
  let encryptedKey: string;
  const seen: string[] = [];
  const traceFile = () => path.join(dir, "trace.jsonl");

  const stack = (name: string, extra: Record<string, string>) =>
    new (testingKit().LocalStack)({
      programDir: dir,
      stateFile: path.join(dir, `.state-${name}.json`),
      config: {
        host: lab.connection.host,
        port: String(lab.connection.port),
        kind: "Namespace",
        args: JSON.stringify({ name: "sec" }),
        ...extra,
      },
      log: (l) => seen.push(l),
      env: { PULUMI_NETNS_TRACE: traceFile() },
    });

  /** The distinctive texts of every secret used here. */
  const secrets = () => {
    const body = (k: string) => k.split("\n").filter((l) => l && !l.startsWith("-----"));
    return [passphrase, password, ...body(encryptedKey).slice(1, 3), ...body(lab.connection.privateKey).slice(1, 3)];
  };

  const assertClean = (what: string, text: string) => {
    for (const s of secrets()) assert.ok(!text.includes(s), `${what} holds a secret (${s.slice(0, 12)}...)`);
  };

  const assertResultClean = (r: OperationResult) => {
    assertClean("error", r.error ?? "");
    assertClean("outputs", JSON.stringify(r.outputs));
    assertClean("steps", JSON.stringify(r.steps));
  };

  before(async () => {
    const kit = testingKit();
    lab = await kit.startLabHost({ name: `sec-secrets-${process.pid}` });
    encryptedKey = await lab.addClientKey(passphrase);
    assert.match(encryptedKey, /BEGIN OPENSSH PRIVATE KEY/);
    dir = writeProgram("secrets", CONFIGURED_PROGRAM);
  });

  after(async () => {
    if (lab) await lab.stop();
  });

  it("up with privateKey + privateKeyPassword + password: works, outputs show the connection as secret", async () => {
    const s = stack("main", { privateKey: encryptedKey, privateKeyPassword: passphrase, password });
    const result = await s.up();
    assert.ok(result.ok, result.error);
    assert.equal(result.outputs.connectionOut, "[secret]");
    assertResultClean(result);
    // The connection output is stored encrypted, as are the inputs that were secret.
    const raw = await s.rawState();
    const res = raw.resources.find((r) => r.type.endsWith("Namespace"));
    assert.ok(res);
    assert.ok(
      res.secretPaths.some((p) => p.join(".") === "connection"),
      JSON.stringify(res.secretPaths),
    );
    assert.ok(JSON.stringify(res.outputs.connection).includes("__encrypted"));
    assertClean("state file", fs.readFileSync(s.stateFile, "utf8"));
    // Completed steps go to a journal beside the state file first (compacted at the end of the operation).
    const journal = `${s.stateFile}.journal`;
    if (fs.existsSync(journal)) {
      assertClean("state journal", fs.readFileSync(journal, "utf8"));
    }
    const destroyed = await s.destroy();
    assert.ok(destroyed.ok, destroyed.error);
    assertResultClean(destroyed);
  });

  it("a wrong key passphrase fails cleanly, without the passphrase or the key in the message", async () => {
    const r = await stack("badpp", { privateKey: encryptedKey, privateKeyPassword: "wrong-SECRET-pp" }).up();
    assert.equal(r.ok, false);
    assert.ok(r.error && r.error.length > 0);
    assert.ok(!r.error.includes("wrong-SECRET-pp"), r.error);
    // Not retried: a wrong passphrase does not get better (it once took 10 dials, ~24 s).
    assert.match(r.error, /cannot use the private key for root@\S+: .*passphrase/);
    assert.doesNotMatch(r.error, /after \d+ attempts/);
    assertResultClean(r);
  });

  it("a wrong password (the lab allows keys only) fails as an authentication error, without the password", async () => {
    const r = await stack("badpw", {
      privateKey: encryptedKey,
      conn: JSON.stringify({ privateKey: null }),
      password,
    }).up();
    assert.equal(r.ok, false);
    assert.match(r.error ?? "", /authentication to root@\S+ failed/);
    assertResultClean(r);
  });

  it("an unauthorized private key fails as an authentication error, without the key", async () => {
    const stray = strayKey();
    const r = await stack("badkey", { privateKey: stray.privateKey }).up();
    assert.equal(r.ok, false);
    assert.match(r.error ?? "", /authentication to root@\S+ failed/);
    const strayBody = stray.privateKey.split("\n")[2];
    assert.ok(!(r.error ?? "").includes(strayBody));
    assert.ok(!seen.some((l) => l.includes(strayBody)));
  });

  it("no log line the runner printed and no trace line holds a secret", () => {
    assert.ok(seen.length > 0);
    assertClean("runner log", seen.join("\n"));
    assert.ok(fs.existsSync(traceFile()));
    const trace = fs.readFileSync(traceFile(), "utf8");
    assert.match(trace, /"event":"command"/);
    assertClean("trace", trace);
  });
});
