/** Turns the client's typed parameters into the flat key/value form the API takes. */
import type { CtOptions, PveScalar } from "./api.ts";

export type WireParams = Record<string, PveScalar | undefined>;

/** Form/query encoding as PVE expects it: booleans as 1/0, absent values left out. */
export function encodeParams(params: WireParams): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined) continue;
    search.append(key, typeof value === "boolean" ? (value ? "1" : "0") : String(value));
  }
  return search.toString();
}

/** The config keys of `CtOptions`: `net[i]` → `net<i>`, tags `;`-joined, env NUL-joined. */
export function ctOptionsToParams(options: CtOptions): WireParams {
  const { net, tags, env, extra, ...plain } = options;
  const params: WireParams = { ...plain, ...extra };
  net?.forEach((value, index) => params[`net${index}`] = value);
  if (tags !== undefined) params.tags = tags.join(";");
  if (env !== undefined) params.env = env.join("\0");
  return params;
}
