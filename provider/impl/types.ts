import type * as pulumi from "@pulumi/pulumi";
import type { Connection } from "../connection";
import type { CheckedOf, Schema, StoredOf } from "../schema";

// The provider's side of the seam with the resource classes, as types only and
// free of the transport: the published declarations of the classes reach this
// file, and the transport's would need @types/ssh2 in every user's project.

/** Outputs every resource of this package carries, so delete and read need nothing else. */
export interface BaseOutputs {
  connection: Connection;
  /** Host keys seen at first contact, by "host:port" (trust on first use). */
  knownHostKeys: Record<string, string>;
}

/** A resource's inputs as check returns them and create receives them. */
export type InputsOf<S extends Schema> = { connection: Connection } & CheckedOf<S["fields"]>;

/** A resource's outputs as its provider stores them. */
export type OutputsOf<S extends Schema> = BaseOutputs & StoredOf<S>;

/**
 * What each impl module exports as `provider`: every operation the engine
 * calls, typed by the resource's schema. (read always gets the stored outputs;
 * the SDK's type has them optional.)
 */
export type ProviderOf<S extends Schema> = Required<
  Pick<pulumi.dynamic.ResourceProvider<InputsOf<S>, OutputsOf<S>>, "check" | "diff" | "create" | "update" | "delete">
> & { read: (id: string, props: OutputsOf<S>) => Promise<pulumi.dynamic.ReadResult<OutputsOf<S>>> };
