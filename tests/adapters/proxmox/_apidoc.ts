/**
 * Checks requests and answers against the official PVE API schema (`../shared/pve/apidoc.json`
 * beside the repository): the operation exists, every parameter is known and well-typed, the
 * required ones are there, and the answer's JSON types match `returns`. Absent in checkouts
 * without `../shared`; the contract tests then say they were skipped.
 */
import { validateParams } from "../../../adapters/proxmox/sim/schema/validate.ts";
import type { ParamTable } from "../../../adapters/proxmox/sim/schema/types.ts";
import { sharedPath } from "../../_support/shared_reference.ts";

/** `$PVE_APIDOC` (as schema-query.js reads it), or `pve/apidoc.json` in the shared references. */
export const apidocPath = Deno.env.get("PVE_APIDOC") ?? sharedPath("pve/apidoc.json");

export interface ApidocOperation {
  path: string;
  method: string;
  parameters: { properties?: Record<string, Record<string, unknown>> };
  returns: Record<string, unknown>;
  allowtoken?: number;
}

interface ApidocNode {
  path: string;
  info?: Record<string, Omit<ApidocOperation, "path" | "method">>;
  children?: ApidocNode[];
}

export interface Apidoc {
  find(
    method: string,
    path: string,
  ): { operation: ApidocOperation; pathParams: Record<string, string> } | undefined;
}

let cached: Apidoc | undefined | null = null;

export function loadApidoc(): Apidoc | undefined {
  if (cached !== null) return cached;
  let tree: ApidocNode[];
  try {
    tree = JSON.parse(Deno.readTextFileSync(apidocPath));
  } catch {
    return cached = undefined;
  }
  const operations: ApidocOperation[] = [];
  const walk = (nodes: ApidocNode[]) => {
    for (const node of nodes) {
      for (const [method, info] of Object.entries(node.info ?? {})) {
        operations.push({ ...info, path: node.path, method });
      }
      walk(node.children ?? []);
    }
  };
  walk(tree);
  return cached = {
    find(method, path) {
      const parts = path.split("/").slice(1);
      for (const operation of operations) {
        if (operation.method !== method) continue;
        const segments = operation.path.split("/").slice(1);
        if (segments.length !== parts.length) continue;
        const pathParams: Record<string, string> = {};
        const ok = segments.every((segment, i) => {
          const part = decodeURIComponent(parts[i]!);
          if (segment.startsWith("{")) {
            pathParams[segment.slice(1, -1)] = part;
            return true;
          }
          return segment === part;
        });
        if (ok) return { operation, pathParams };
      }
      return undefined;
    },
  };
}

/** Problems of one request against the schema (empty when it is a valid request); `path` as sent. */
export function checkRequest(
  apidoc: Apidoc,
  request: { method: string; path: string; params: Record<string, unknown>; json: boolean },
): string[] {
  const found = apidoc.find(request.method, request.path);
  if (found === undefined) return [`${request.method} ${request.path}: not in apidoc.json`];
  const table = (found.operation.parameters.properties ?? {}) as unknown as ParamTable;
  const { errors } = validateParams(table, { ...request.params, ...found.pathParams }, {
    json: request.json,
  });
  return Object.entries(errors).map(([key, reason]) =>
    `${request.method} ${found.operation.path}: ${key}: ${reason}`
  );
}

/** Problems of an answer's `data` against the operation's `returns` schema. */
export function checkResponse(
  apidoc: Apidoc,
  method: string,
  path: string,
  data: unknown,
): string[] {
  const found = apidoc.find(method, path);
  if (found === undefined) return [];
  const problems: string[] = [];
  checkValue(found.operation.returns, data, `${method} ${found.operation.path} → data`, problems);
  return problems;
}

function checkValue(
  schema: Record<string, unknown>,
  value: unknown,
  where: string,
  problems: string[],
) {
  if (value === null || value === undefined) {
    if (schema.type !== "null" && !schema.optional) problems.push(`${where}: missing`);
    return;
  }
  // PVE's own JSON sends some integers and numbers as strings (nextid, cpulimit).
  const numeric = typeof value === "number" ||
    (typeof value === "string" && /^-?\d+(\.\d+)?$/.test(value));
  switch (schema.type) {
    case "integer":
      if (!numeric || !Number.isInteger(Number(value))) problems.push(`${where}: not an integer`);
      return;
    case "number":
      if (!numeric) problems.push(`${where}: not a number`);
      return;
    case "boolean":
      if (typeof value !== "boolean" && value !== 0 && value !== 1) {
        problems.push(`${where}: not a boolean`);
      }
      return;
    case "string":
      if (typeof value !== "string") problems.push(`${where}: not a string`);
      return;
    case "array": {
      if (!Array.isArray(value)) return void problems.push(`${where}: not an array`);
      const items = schema.items as Record<string, unknown> | undefined;
      if (items !== undefined) {
        value.forEach((item, i) => checkValue(items, item, `${where}[${i}]`, problems));
      }
      return;
    }
    case "object": {
      if (typeof value !== "object" || Array.isArray(value)) {
        return void problems.push(`${where}: not an object`);
      }
      const properties = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
      const record = value as Record<string, unknown>;
      for (const [key, sub] of Object.entries(properties)) {
        const indexed = key.endsWith("[n]") ? key.slice(0, -3) : undefined;
        const keys = indexed === undefined
          ? [key]
          : Object.keys(record).filter((k) => new RegExp(`^${indexed}\\d+$`).test(k));
        if (keys.length === 0 && !sub.optional && indexed === undefined) {
          problems.push(`${where}.${key}: missing`);
        }
        for (const k of keys) {
          if (k in record) checkValue(sub, record[k], `${where}.${k}`, problems);
        }
      }
      return;
    }
  }
}
