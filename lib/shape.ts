/**
 * Small runtime shapes for JSON payloads, with their TypeScript types inferred. Enough to
 * check stored event payloads cheaply; not a general validation library.
 */
export interface Shape<T> {
  /** A readable description for docs and errors: "string", "{ name: string }". */
  readonly description: string;
  /** The first problem found as "path: problem", or undefined when the value fits. */
  check(value: unknown, path: string): string | undefined;
  /** Type carrier only; never set. */
  readonly _type?: T;
}

interface OptionalShape<T> extends Shape<T | undefined> {
  readonly optional: true;
}

export type Infer<S> = S extends Shape<infer T> ? T : never;

type Fields = Record<string, Shape<unknown>>;
type OptionalKeys<F extends Fields> = {
  [K in keyof F]: F[K] extends OptionalShape<unknown> ? K : never;
}[keyof F];
type ObjectOf<F extends Fields> =
  & { [K in Exclude<keyof F, OptionalKeys<F>>]: Infer<F[K]> }
  & { [K in OptionalKeys<F>]?: Exclude<Infer<F[K]>, undefined> };

function primitive<T>(name: string, test: (value: unknown) => boolean): Shape<T> {
  return {
    description: name,
    check: (value, path) => test(value) ? undefined : `${path}: expected ${name}`,
  };
}

export const string: Shape<string> = primitive("string", (v) => typeof v === "string");
export const number: Shape<number> = primitive(
  "number",
  (v) => typeof v === "number" && Number.isFinite(v),
);
export const integer: Shape<number> = primitive("integer", (v) => Number.isInteger(v));
export const boolean: Shape<boolean> = primitive("boolean", (v) => typeof v === "boolean");
/** Any JSON value; for opaque parts such as a CNI result. */
export const json: Shape<unknown> = { description: "JSON", check: () => undefined };

export function literal<const T extends string>(...values: T[]): Shape<T> {
  return primitive(
    values.map((v) => JSON.stringify(v)).join(" | "),
    (v) => values.includes(v as T),
  );
}

export function optional<T>(shape: Shape<T>): OptionalShape<T> {
  return {
    description: `${shape.description}?`,
    optional: true,
    check: (value, path) => value === undefined ? undefined : shape.check(value, path),
  };
}

export function array<T>(item: Shape<T>): Shape<T[]> {
  return {
    description: `${item.description}[]`,
    check(value, path) {
      if (!Array.isArray(value)) return `${path}: expected an array`;
      for (let i = 0; i < value.length; i++) {
        const problem = item.check(value[i], `${path}[${i}]`);
        if (problem !== undefined) return problem;
      }
      return undefined;
    },
  };
}

export function record<T>(item: Shape<T>): Shape<Record<string, T>> {
  return {
    description: `{ [key]: ${item.description} }`,
    check(value, path) {
      if (!isPlainObject(value)) return `${path}: expected an object`;
      for (const [key, v] of Object.entries(value)) {
        const problem = item.check(v, `${path}.${key}`);
        if (problem !== undefined) return problem;
      }
      return undefined;
    },
  };
}

/** An object with these fields; other fields are allowed (newer writers may add some). */
export function object<F extends Fields>(fields: F): Shape<ObjectOf<F>> {
  const entries = Object.entries(fields);
  return {
    description: `{ ${entries.map(([k, s]) => `${k}: ${s.description}`).join("; ")} }`,
    check(value, path) {
      if (!isPlainObject(value)) return `${path}: expected an object`;
      for (const [key, shape] of entries) {
        const v = (value as Record<string, unknown>)[key];
        if (v === undefined && !("optional" in shape)) return `${path}.${key}: missing`;
        const problem = shape.check(v, `${path}.${key}`);
        if (problem !== undefined) return problem;
      }
      return undefined;
    },
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
