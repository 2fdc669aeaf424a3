import { strict as assert } from "node:assert";
import type * as pulumi from "@pulumi/pulumi";
import * as bridge from "../../../../provider/impl/bridge";
import * as masqueradeRule from "../../../../provider/impl/masqueradeRule";
import * as namespace from "../../../../provider/impl/namespace";
import * as portForward from "../../../../provider/impl/portForward";
import * as route from "../../../../provider/impl/route";
import * as vethPair from "../../../../provider/impl/vethPair";
import * as vxlan from "../../../../provider/impl/vxlan";
import { type ResourceKind, VALID_ARGS, VALID_CONNECTION } from "../../../security/cases";

export type Values = Record<string, unknown>;

/** The part of a resource's provider these tests call: no connection, no host. */
export interface PureImpl {
  check(olds: unknown, news: Values): Promise<pulumi.dynamic.CheckResult>;
  diff(id: string, olds: any, news: any): Promise<pulumi.dynamic.DiffResult>;
}

const IMPLS: Record<ResourceKind, PureImpl> = {
  namespace,
  vethPair,
  bridge,
  route,
  masqueradeRule,
  portForward,
  vxlan,
};

/** The one place the unit tests reach an impl module: adapt here when its shape changes. */
export function implOf(kind: ResourceKind): PureImpl {
  return IMPLS[kind];
}

export const RESOURCE_KINDS = Object.keys(IMPLS) as ResourceKind[];

/** A resource's valid inputs, as check hands them to diff (defaults filled in). */
export async function checkedInputs(kind: ResourceKind, args: Values = VALID_ARGS[kind]): Promise<Values> {
  const result = await implOf(kind).check({}, { connection: VALID_CONNECTION, ...args });
  assert.equal(result.failures, undefined, JSON.stringify(result.failures));
  return result.inputs as Values;
}

/** What each resource's create adds to its inputs in state (the values are what a host could have said). */
export const OUTPUT_EXTRAS: Record<ResourceKind, Values> = {
  namespace: { adopted: false },
  vethPair: { adopted: false },
  bridge: {
    mac: "02:00:00:00:0a:01",
    ifindex: 2,
    adopted: false,
    ruleId: "0a1b2c3d",
    comment: "c",
    rules: [],
    missingRules: [],
  },
  route: { observedDevice: "veth-blue" },
  masqueradeRule: { ruleId: "0a1b2c3d", comment: "c", rules: [], missingRules: [], ipForwardOn: true },
  portForward: { ruleId: "4e5f6a7b", comment: "c", rules: [], missingRules: [], sysctlsOn: true },
  vxlan: {
    mac: "02:00:00:00:0b:01",
    ifindex: 5,
    adopted: false,
    mark: "pulumi-netns:vxlan/0a1b2c3d",
    missingRemotes: [],
  },
};

/** Whether a replace deletes first, per resource, as each diff says today (the same for every row). */
export const DELETE_BEFORE_REPLACE: Record<ResourceKind, boolean | undefined> = {
  namespace: true,
  vethPair: true,
  bridge: true,
  route: true,
  masqueradeRule: undefined,
  portForward: true,
  vxlan: true,
};

/** A diff row: what differs between state (olds) and the new inputs, and the verdict. */
export interface DiffRow {
  what: string;
  /** Merged into the baseline state. */
  olds?: Values;
  /** Merged into the baseline inputs. */
  news?: Values;
  /** "none", "update" (changes, nothing replaced), or the fields that force a replace. */
  expect: "none" | "update" | string[];
  /** The replacement goes on another host: created there first, even for a kind that deletes first. */
  createFirst?: boolean;
}

/**
 * One test per row: the baseline (the valid inputs after check, and as state
 * those inputs plus the create's extra outputs) with the row's differences.
 */
export function diffTable(kind: ResourceKind, rows: DiffRow[]): void {
  for (const row of rows)
    it(`${kind}: ${row.what} → ${Array.isArray(row.expect) ? `replace ${row.expect.join(", ")}` : row.expect}`, async () => {
      const inputs = await checkedInputs(kind);
      const olds = { ...inputs, ...OUTPUT_EXTRAS[kind], knownHostKeys: {}, ...row.olds };
      const news = { ...inputs, ...row.news };
      const replaces = Array.isArray(row.expect) ? row.expect : [];
      const result = await implOf(kind).diff("id", olds, news);
      assert.deepEqual(result, {
        changes: row.expect !== "none",
        replaces,
        ...(DELETE_BEFORE_REPLACE[kind] === undefined
          ? {}
          : { deleteBeforeReplace: row.createFirst ? false : DELETE_BEFORE_REPLACE[kind] }),
      });
    });
}

/** A check row: arguments (with a valid connection added) and fields of the inputs check hands back. */
export interface DefaultsRow {
  what: string;
  args: Values;
  /** Fields the checked inputs must hold, exactly. */
  expect: Values;
  /** Fields the checked inputs must not hold at all. */
  absent?: string[];
}

export function defaultsTable(kind: ResourceKind, rows: DefaultsRow[]): void {
  for (const row of rows)
    it(`${kind} check: ${row.what}`, async () => {
      const inputs = await checkedInputs(kind, row.args);
      for (const [key, value] of Object.entries(row.expect)) assert.deepEqual(inputs[key], value, key);
      for (const key of row.absent ?? []) assert.ok(!(key in inputs), `${key} is in ${JSON.stringify(inputs)}`);
    });
}
