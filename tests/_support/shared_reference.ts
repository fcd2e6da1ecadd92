/**
 * Where the reference definitions (`../shared`: the CRI proto, the PVE API schema) are:
 * `$PVE_CRI_SHARED`, or `shared` beside the repository. CI's clean clone sits elsewhere, so
 * `.ci/run` points the variable at the `shared` beside the repository it was cloned from.
 */
const sharedDir = Deno.env.get("PVE_CRI_SHARED") ??
  new URL("../../../shared", import.meta.url).pathname;

export function sharedPath(relative: string): string {
  return `${sharedDir.replace(/\/$/, "")}/${relative}`;
}
