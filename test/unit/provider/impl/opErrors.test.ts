import { strict as assert } from "node:assert";
import { forNew, onStored, onStoredUpdate } from "../../../../provider/impl/opErrors";
import { CommandError, ConnectError } from "../../../../provider/transport";

const connection = { host: "h.example", port: 2222, user: "ops" };
const unreachable = () =>
  new ConnectError(
    "cannot connect to ops@h.example:2222 after 3 attempts: the last one failed: Connection lost before handshake.",
    false,
    true,
  );
const rejects = async (p: Promise<unknown>): Promise<Error> => {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  assert.fail("expected a rejection");
};

// Finding: the state-delete advice came with every unreachable host, also when creating (nothing in the state yet).
describe("impl/opErrors: what a connection failure advises depends on the operation", () => {
  it("read, update and delete of a resource in the state: the pulumi state delete advice, naming the resource's host", async () => {
    const read = onStored(async (_id: string, _props: { connection: typeof connection }) => {
      throw unreachable();
    });
    const update = onStoredUpdate(async (_id: string, _olds: unknown, _news: { connection: typeof connection }) => {
      throw unreachable();
    });
    for (const e of [await rejects(read("id", { connection })), await rejects(update("id", {}, { connection }))]) {
      assert.ok(e instanceof ConnectError);
      assert.match(e.message, /Connection lost before handshake\. If ops@h\.example:2222 is gone for good/);
      assert.match(e.message, /`pulumi state delete '<urn>' --target-dependents --yes`/);
    }
  });

  it("create: check the program's connection.host and connection.port, no state advice", async () => {
    const create = forNew(async (_inputs: unknown) => {
      throw unreachable();
    });
    const e = await rejects(create({}));
    assert.match(e.message, /Check that connection\.host and connection\.port in the program name the host you mean\./);
    assert.doesNotMatch(e.message, /gone for good|state delete/);
    // A message that already names the field is not told twice.
    const named = forNew(async () => {
      throw new ConnectError(
        'cannot connect: the name "x.invalid" does not resolve. Check connection.host for a typo.',
        false,
        true,
      );
    });
    assert.equal(
      (await rejects(named())).message,
      'cannot connect: the name "x.invalid" does not resolve. Check connection.host for a typo.',
    );
  });

  it("other failures (a refused login, a failed command) pass unchanged", async () => {
    const auth = new ConnectError("authentication to ops@h.example:2222 failed: ...", false);
    const cmd = new CommandError("ops@h.example:2222", "ip link", 1, "", "boom");
    for (const err of [auth, cmd]) {
      const remove = onStored(async (_id: string, _props: { connection: typeof connection }) => {
        throw err;
      });
      assert.equal(await rejects(remove("id", { connection })), err);
    }
  });

  it("the provider host's echo of a failed operation (the error and its stack, on console.error) is not printed; other lines are", async () => {
    const err = new CommandError("h", "true", 1, "", "x");
    const remove = onStored(async (_id: string, _props: { connection: typeof connection }) => {
      throw err;
    });
    const e = await rejects(remove("id", { connection }));
    const printed: unknown[][] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: unknown) => printed.push([chunk]) > 0) as typeof process.stderr.write;
    try {
      console.error(`${e}: ${e.stack}`);
      console.error("something else");
      console.error(`${e}: ${e.stack}`);
    } finally {
      process.stderr.write = write;
    }
    assert.equal(printed.length, 2, JSON.stringify(printed));
    assert.match(String(printed[0][0]), /something else/);
    assert.match(String(printed[1][0]), /CommandError/, "echoed once only: a second identical line is printed");
  });
});
