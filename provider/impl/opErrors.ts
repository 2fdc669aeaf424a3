import { type Connection, describe } from "../connection";
import { ConnectError } from "../transport";
import { hostGoneAdvice } from "../transport/dialErrors";
import { trace } from "../transport/trace";

/**
 * What an operation's failure says depends on the operation. The transport
 * knows only that the host could not be reached (ConnectError.hostMayBeGone);
 * whether the stack's state is the way out is known here:
 *
 * - create: nothing is in the state yet, so the program's connection is what
 *   to check;
 * - read, update, delete of a resource in the state: if the host is gone for
 *   good, its resources go from the state by hand (`pulumi state delete`).
 *
 * Either way the failure reaches the user once, as the resource's error: the
 * dynamic provider host also prints `${e}: ${e.stack}` on its stderr for a
 * failed read or delete, and the engine shows that line next to the error, the
 * message again with Node's stack frames. That line is not printed (the stack
 * goes to the trace, PULUMI_NETNS_TRACE).
 */
type Op<A extends unknown[], R> = (...args: A) => Promise<R>;

/** An operation that makes a new resource: no advice about the state. */
export function forNew<A extends unknown[], R>(op: Op<A, R>): Op<A, R> {
  return async (...args) => {
    try {
      return await op(...args);
    } catch (e) {
      throw told(e instanceof ConnectError && e.hostMayBeGone ? withAdvice(e, checkTheProgram(e.message)) : e);
    }
  };
}

/** An operation on a resource in the state (read, update, delete): `conn` picks its connection from the arguments. */
function forExisting<A extends unknown[], R>(op: Op<A, R>, conn: (...args: A) => Connection): Op<A, R> {
  return async (...args) => {
    try {
      return await op(...args);
    } catch (e) {
      throw told(
        e instanceof ConnectError && e.hostMayBeGone ? withAdvice(e, hostGoneAdvice(describe(conn(...args)))) : e,
      );
    }
  };
}

function checkTheProgram(message: string): string {
  return /connection\.(host|port)\b/.test(message)
    ? ""
    : "Check that connection.host and connection.port in the program name the host you mean.";
}

function withAdvice(e: ConnectError, advice: string): ConnectError {
  return advice ? new ConnectError(`${e.message} ${advice}`, e.retryable, e.hostMayBeGone) : e;
}

/** The provider host's echo of each error to swallow, as it prints it. */
const echoes = new Set<string>();
let filtering = false;

function told(e: unknown): unknown {
  if (!(e instanceof Error)) return e;
  trace({ event: "operation-failed", name: e.name, stack: e.stack });
  if (!filtering) {
    filtering = true;
    const original = console.error;
    console.error = (...args: unknown[]) => {
      if (args.length === 1 && typeof args[0] === "string" && echoes.delete(args[0])) return;
      original.apply(console, args);
    };
  }
  echoes.add(`${e}: ${e.stack}`);
  // Operations called directly (tests, tools) are never echoed: keep the set small.
  if (echoes.size > 64) echoes.delete(echoes.values().next().value as string);
  return e;
}

/** read or delete of a resource in the state: (id, its stored outputs). */
export function onStored<O extends { connection: Connection }, R>(
  op: (id: string, props: O) => Promise<R>,
): (id: string, props: O) => Promise<R> {
  return forExisting(op, (_id, props) => props.connection);
}

/** update of a resource in the state: (id, its stored outputs, the new inputs). */
export function onStoredUpdate<O, I extends { connection: Connection }, R>(
  op: (id: string, olds: O, news: I) => Promise<R>,
): (id: string, olds: O, news: I) => Promise<R> {
  return forExisting(op, (_id, _olds, news) => news.connection);
}

/** A resource's four host operations, each saying what to do for its operation (see above). */
export function advised<I, O extends { connection: Connection }, N extends { connection: Connection }, C, R, U>(ops: {
  create: (inputs: I) => Promise<C>;
  read: (id: string, props: O) => Promise<R>;
  update: (id: string, olds: O, news: N) => Promise<U>;
  remove: (id: string, props: O) => Promise<void>;
}) {
  return {
    create: forNew(ops.create),
    read: onStored(ops.read),
    update: onStoredUpdate(ops.update),
    remove: onStored(ops.remove),
  };
}
