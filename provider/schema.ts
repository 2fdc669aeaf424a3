import type * as pulumi from "@pulumi/pulumi";
import { type Checker, isUnknown, show, unknownFieldReason } from "./validate";

/**
 * A resource's fields declared once, in the spirit of @pulumi/command's tagged
 * args: per field its rule, whether it is required or has a default, and
 * whether a change replaces the resource or updates it in place. Check, diff
 * and every type of the resource (its public args, the inputs the provider
 * receives, the outputs it stores, the class's properties) are derived from
 * that one declaration.
 */

/** A rule of provider/validate.ts: the reason a value is refused, or undefined. */
export type Rule = (value: unknown) => string | undefined;

/** The inputs as the engine hands them to check: nothing about them is known yet. */
export type RawInputs = Record<string, unknown>;

/** What a field's change asks of the resource; undefined when it did not change. */
type Change = "replace" | "update" | undefined;

/**
 * required: the program must give it. defaulted: check fills it in when
 * absent. resourceName: required at check, and the resource's constructor
 * fills it in with the resource's name. optional: it may stay absent. option:
 * not an arg: the resource's class fills it in from the resource option of the
 * field's name (e.g. `retainOnDelete`), its default when not set.
 */
type Presence = "required" | "defaulted" | "resourceName" | "optional" | "option";

/**
 * The input under which a resource class hands check the names of the fields
 * it was given and does not have (their values stay in the program).
 */
export const OTHER_FIELDS = "__otherFields";

/** One input field. T: its checked value; A: its type in the public args; O: its type in the outputs. */
export interface Field<T = unknown, A = unknown, O = unknown, P extends Presence = Presence> {
  readonly presence: P;
  /** Records the value's failures and returns the value to keep, its defaults filled in. */
  check(checker: Checker, property: string, value: unknown, news: RawInputs): unknown;
  /** What the change from the old value to the new one asks for. */
  diff(olds: unknown, news: unknown): Change;
  /** Never set: only carries the field's types. */
  readonly types?: { checked: T; arg: A; output: O };
}

export type Fields = Record<string, Field<any, any, any>>;

type Validate = (checker: Checker, property: string, value: unknown, required: boolean) => void;

interface ValueSpec {
  validate: Validate;
  presence: Presence;
  replaceOnChange: boolean;
  defaultTo?: (news: RawInputs) => unknown;
  normalize?: (value: unknown) => unknown;
  same: (olds: any, news: any) => boolean;
}

/** A field holding one value (a string, number, boolean or list), built up by its modifiers. */
export class ValueField<T, A, P extends Presence> implements Field<T, A, T, P> {
  declare readonly types?: { checked: T; arg: A; output: T };

  constructor(private readonly spec: ValueSpec) {}

  get presence(): P {
    return this.spec.presence as P;
  }

  /** Check fails without it. */
  required(): ValueField<T, A, "required"> {
    return new ValueField({ ...this.spec, presence: "required" });
  }

  /** Absent from the args, it is the resource's name. */
  orResourceName(): ValueField<T, A, "resourceName"> {
    return new ValueField({ ...this.spec, presence: "resourceName" });
  }

  /** What an absent (or null) value becomes at check; a function of the other inputs when it depends on them. */
  default(value: T | ((news: RawInputs) => unknown)): ValueField<T, A, "defaulted"> {
    const defaultTo = typeof value === "function" ? (value as (news: RawInputs) => unknown) : () => value;
    return new ValueField({ ...this.spec, presence: "defaulted", defaultTo });
  }

  /** Not an arg: the class passes the resource option of the field's name (its default when not set). */
  fromOption(): ValueField<T, A, "option"> {
    return new ValueField({ ...this.spec, presence: "option" });
  }

  /** A change replaces the resource (otherwise it is updated in place); so does a value not known yet. */
  replaceOnChange(): ValueField<T, A, P> {
    return new ValueField({ ...this.spec, replaceOnChange: true });
  }

  /** How diff tells an old value from a new one (otherwise ===). */
  comparedBy(same: (olds: T | undefined, news: T | undefined) => boolean): ValueField<T, A, P> {
    return new ValueField({ ...this.spec, same });
  }

  /** The value kept is `normalize(value)`, one spelling for values that mean the same. */
  normalizedBy(normalize: (value: unknown) => unknown): ValueField<T, A, P> {
    return new ValueField({ ...this.spec, normalize });
  }

  check(checker: Checker, property: string, value: unknown, news: RawInputs): unknown {
    const { validate, presence, defaultTo, normalize } = this.spec;
    validate(checker, property, value, presence === "required" || presence === "resourceName");
    if (normalize) return normalize(value);
    return defaultTo ? (value ?? defaultTo(news)) : value;
  }

  diff(olds: unknown, news: unknown): Change {
    const { replaceOnChange, same } = this.spec;
    if (replaceOnChange) return isUnknown(news) || !same(olds, news) ? "replace" : undefined;
    return same(olds, news) ? undefined : "update";
  }
}

/** A field whose value `rule` validates; optional and updated in place until a modifier says otherwise. */
export function field<T, A = pulumi.Input<T>>(rule: Rule): ValueField<T, A, "optional"> {
  return checkedBy<T, A>((checker, property, value, required) => checker.field(property, value, rule, required));
}

/** A field validated by a procedure that may record several failures (a list, item by item). */
export function checkedBy<T, A = pulumi.Input<T>>(validate: Validate): ValueField<T, A, "optional"> {
  return new ValueField({ validate, presence: "optional", replaceOnChange: false, same: (a, b) => a === b });
}

/** An output-only field: what the provider observed or recorded. */
export interface OutputField<T = unknown, Declared extends boolean = boolean, Optional extends boolean = boolean> {
  readonly declared: Declared;
  /** Never set: only carries the output's type and whether state may lack it. */
  readonly types?: { value: T; optional: Optional };
}

export type OutputFields = Record<string, OutputField>;

/** An output the class declares as a property. */
export function output<T>(): OutputField<T, true, false> {
  return { declared: true };
}

/** An output kept in state for the provider's own use, not declared on the class. */
export function stateOnly<T>(): OutputField<T, false, false> {
  return { declared: false };
}

/** Declared on the class as always there, though the provider's state may lack it. */
export function optionalInState<T>(): OutputField<T, true, true> {
  return { declared: true };
}

/** The fields of a resource (or of an object inside one) and the outputs the provider adds to them. */
export interface Schema<F extends Fields = Fields, X extends OutputFields = OutputFields> {
  readonly fields: F;
  readonly outputs: X;
}

export function schema<F extends Fields, X extends OutputFields>(fields: F, outputs: X): Schema<F, X> {
  return { fields, outputs };
}

/** A field holding an object with fields of its own, such as one end of a veth pair. */
export class ObjectField<T, A, O, P extends Presence> implements Field<T, A, O, P> {
  declare readonly types?: { checked: T; arg: A; output: O };

  constructor(
    private readonly of: Schema,
    readonly presence: P,
  ) {}

  required(): ObjectField<T, A, O, "required"> {
    return new ObjectField(this.of, "required");
  }

  check(checker: Checker, property: string, value: unknown): unknown {
    const isObject = (v: unknown) =>
      typeof v === "object" && !Array.isArray(v) ? undefined : `${show(v)} is not an object`;
    checker.field(property, value, isObject, this.presence === "required");
    if (typeof value !== "object" || value === null) return value;
    const given = value as RawInputs;
    for (const key of Object.keys(given))
      if (!Object.hasOwn(this.of.fields, key))
        checker.fail(`${property}.${key}`, unknownFieldReason(key, Object.keys(this.of.fields)));
    const checked: RawInputs = { ...given };
    for (const [key, f] of Object.entries(this.of.fields))
      checked[key] = f.check(checker, `${property}.${key}`, given[key], given);
    return checked;
  }

  /** Replaced when one of its replace-on-change fields changes (or it is not known yet), else updated if any changed. */
  diff(olds: unknown, news: unknown): Change {
    if (isUnknown(news)) return "replace";
    let change: Change;
    for (const [key, f] of Object.entries(this.of.fields)) {
      const c = f.diff((olds as RawInputs)[key], (news as RawInputs)[key]);
      if (c === "replace") return c;
      change ??= c;
    }
    return change;
  }
}

/** An optional object field with the fields of `of`; T, A and O name its checked, argument and output types. */
export function objectField<T, A, O>(of: Schema): ObjectField<T, A, O, "optional"> {
  return new ObjectField(of, "optional");
}

type CheckedType<F> = F extends Field<infer T, any, any> ? T : never;
type ArgType<F> = F extends Field<any, infer A, any> ? A : never;
type OutputType<F> = F extends Field<any, any, infer O> ? O : never;
type KeysWith<F extends Fields, P extends Presence> = {
  [K in keyof F]: F[K] extends Field<any, any, any, P> ? K : never;
}[keyof F];
type OutputValue<X> = X extends OutputField<infer T> ? T : never;
type OutputKeysWith<X extends OutputFields, Optional extends boolean> = {
  [K in keyof X]: X[K] extends OutputField<any, any, Optional> ? K : never;
}[keyof X];

/** T with the keys K optional. (Pick keeps each property's doc comment, from the field's declaration.) */
type WithOptional<T, K extends keyof T> = Pick<T, Exclude<keyof T, K>> & Partial<Pick<T, K>>;

/** The public args: each field as the program passes it, optional unless the program must give it; no resource option. */
export type ArgsOf<F extends Fields> = WithOptional<
  Omit<{ [K in keyof F]: ArgType<F[K]> }, KeysWith<F, "option">>,
  Exclude<Exclude<keyof F, KeysWith<F, "option">>, KeysWith<F, "required">>
>;

/** The checked inputs: what check returns, with defaults filled in. */
export type CheckedOf<F extends Fields> = WithOptional<{ [K in keyof F]: CheckedType<F[K]> }, KeysWith<F, "optional">>;

/** What the provider stores: each field as observed, and the outputs it adds. */
export type StoredOf<S extends Schema> = WithOptional<
  { [K in keyof S["fields"]]: OutputType<S["fields"][K]> },
  KeysWith<S["fields"], "optional">
> &
  WithOptional<{ [K in keyof S["outputs"]]: OutputValue<S["outputs"][K]> }, OutputKeysWith<S["outputs"], true>>;

type DeclaredKeys<X extends OutputFields> = {
  [K in keyof X]: X[K] extends OutputField<any, true> ? K : never;
}[keyof X];

/** The properties a resource's class declares: every field but a resource option, and the outputs that are declared. */
export type PropertiesOf<S extends Schema> = Omit<
  {
    readonly [K in keyof S["fields"]]: pulumi.Output<
      OutputType<S["fields"][K]> | (S["fields"][K] extends Field<any, any, any, "optional"> ? undefined : never)
    >;
  },
  KeysWith<S["fields"], "option">
> &
  Pick<{ readonly [K in keyof S["outputs"]]: pulumi.Output<OutputValue<S["outputs"][K]>> }, DeclaredKeys<S["outputs"]>>;
