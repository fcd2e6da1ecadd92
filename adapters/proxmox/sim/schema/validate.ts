/**
 * Validates one request's parameters against its operation's table the way PVE's
 * `PVE::JSONSchema::validate` does: every key known, every required key present, types,
 * ranges, lengths, enums, patterns and formats checked, property strings parsed. The errors
 * map and its texts are PVE's, so a 400 from here reads like one from a real node.
 */
import { formats } from "./formats.ts";
import { perlPatternToRegExp } from "./perl_regex.ts";
import type { ParamSchema, ParamTable, PropertyStringFormat } from "./types.ts";

export type ParamValue = string | number;

export interface ValidationResult {
  /** Typed values: integers and booleans (as 1/0) become numbers, the rest stay strings. */
  values: Record<string, ParamValue>;
  errors: Record<string, string>;
}

export interface ValidateOptions {
  /** JSON bodies may carry true/false and numbers; forms and query strings carry text only. */
  json: boolean;
}

/** Highest index of the indexed keys, from pve-container `LXC/Config.pm`. */
const maxIndex: Readonly<Record<string, number>> = { net: 31, mp: 255, unused: 255, dev: 255 };

/** The table entry a key stands for: `net3` → `net[n]`. */
export function schemaKey(table: ParamTable, key: string): string | undefined {
  if (Object.hasOwn(table, key)) return key;
  const match = /^([a-z]+)(\d+)$/.exec(key);
  if (match === null) return undefined;
  const [, prefix, digits] = match as unknown as [string, string, string];
  const indexed = `${prefix}[n]`;
  if (!Object.hasOwn(table, indexed)) return undefined;
  if (digits.length > 1 && digits.startsWith("0")) return undefined;
  return Number(digits) <= (maxIndex[prefix] ?? 255) ? indexed : undefined;
}

export function validateParams(
  table: ParamTable,
  input: Readonly<Record<string, unknown>>,
  options: ValidateOptions,
): ValidationResult {
  const values: Record<string, ParamValue> = {};
  const errors: Record<string, string> = {};
  for (const [key, raw] of Object.entries(input)) {
    const name = schemaKey(table, key);
    if (name === undefined) {
      errors[key] =
        "property is not defined in schema and the schema does not allow additional properties";
      continue;
    }
    const result = checkValue(table[name]!, raw, options);
    if ("error" in result) errors[key] = result.error;
    else values[key] = result.value;
  }
  for (const [name, schema] of Object.entries(table)) {
    if (schema.optional || name.endsWith("[n]") || Object.hasOwn(input, name)) continue;
    errors[name] = "property is missing and it is not optional";
  }
  return { values, errors };
}

type Checked = { value: ParamValue } | { error: string };

function checkValue(schema: ParamSchema, raw: unknown, options: ValidateOptions): Checked {
  switch (schema.type) {
    case "boolean":
      return checkBoolean(raw, options);
    case "integer":
    case "number":
      return checkNumber(schema, raw);
    case "string":
      return checkString(schema, raw);
  }
}

function checkBoolean(raw: unknown, options: ValidateOptions): Checked {
  if (raw === "1" || raw === 1 || (options.json && raw === true)) return { value: 1 };
  if (raw === "0" || raw === 0 || (options.json && raw === false)) return { value: 0 };
  return { error: `type check ('boolean') failed - got '${String(raw)}'` };
}

const integerText = /^[+-]?\d+$/;
const numberText = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

function checkNumber(schema: ParamSchema, raw: unknown): Checked {
  const text = typeof raw === "number" ? String(raw) : raw;
  const syntax = schema.type === "integer" ? integerText : numberText;
  if (typeof text !== "string" || !syntax.test(text)) {
    return { error: `type check ('${schema.type}') failed - got '${String(raw)}'` };
  }
  const value = Number(text);
  if (schema.minimum !== undefined && value < schema.minimum) {
    return { error: `value must have a minimum value of ${schema.minimum}` };
  }
  if (schema.maximum !== undefined && value > schema.maximum) {
    return { error: `value must have a maximum value of ${schema.maximum}` };
  }
  return { value: schema.type === "integer" ? value : text };
}

function checkString(schema: ParamSchema, raw: unknown): Checked {
  if (typeof raw !== "string" && typeof raw !== "number") {
    return { error: `type check ('string') failed - got '${String(raw)}'` };
  }
  const value = String(raw);
  if (schema.maxLength !== undefined && value.length > schema.maxLength) {
    return { error: `value may only be ${schema.maxLength} characters long` };
  }
  if (schema.minLength !== undefined && value.length < schema.minLength) {
    return { error: `value must be at least ${schema.minLength} characters long` };
  }
  if (schema.pattern !== undefined && !perlPatternToRegExp(schema.pattern).test(value)) {
    return { error: "value does not match the regex pattern" };
  }
  if (schema.enum !== undefined && !schema.enum.includes(value)) {
    return {
      error: `value '${value}' does not have a value in the enumeration '${
        schema.enum.join(", ")
      }'`,
    };
  }
  const formatError = checkFormat(schema.format, value);
  if (formatError !== undefined) return { error: `invalid format - ${formatError}` };
  return { value };
}

function checkFormat(format: ParamSchema["format"], value: string): string | undefined {
  if (format === undefined) return undefined;
  if (typeof format === "string") {
    const check = formats[format];
    if (check === undefined) throw new TypeError(`Unknown PVE format "${format}"`);
    return check(value);
  }
  const parsed = parsePropertyString(format, value);
  return "error" in parsed ? parsed.error : undefined;
}

export type ParsedPropertyString = { values: Record<string, ParamValue> } | { error: string };

/**
 * Parses `k=v,k=v` against its format (one key may come bare, as the default key) and checks
 * each value like a parameter.
 */
export function parsePropertyString(
  format: PropertyStringFormat,
  text: string,
): ParsedPropertyString {
  const values: Record<string, ParamValue> = {};
  const defaultKey = Object.entries(format).find(([, s]) => s.default_key)?.[0];
  const errors: string[] = [];
  for (const part of text.split(",")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    let key: string;
    let raw: string;
    if (eq === -1) {
      if (defaultKey === undefined || Object.hasOwn(values, defaultKey)) {
        return { error: `value without key, but schema does not define a default key` };
      }
      key = defaultKey;
      raw = part;
    } else {
      key = part.slice(0, eq);
      raw = part.slice(eq + 1);
    }
    const schema = format[key];
    if (schema === undefined) {
      return { error: `invalid key in comma-separated list property: ${key}` };
    }
    if (Object.hasOwn(values, key)) {
      return { error: `duplicate key in comma-separated list property: ${key}` };
    }
    const checked = checkValue(schema, raw, { json: false });
    if ("error" in checked) errors.push(`${key}: ${checked.error}`);
    else values[key] = checked.value;
  }
  for (const [key, schema] of Object.entries(format)) {
    if (!schema.optional && !Object.hasOwn(values, key)) {
      errors.push(`${key}: property is missing and it is not optional`);
    }
  }
  if (errors.length > 0) return { error: `format error\n${errors.join("\n")}` };
  return { values };
}

/** Prints a parsed property string back, default key first without `key=`. */
export function printPropertyString(
  format: PropertyStringFormat,
  values: Readonly<Record<string, ParamValue>>,
): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(values)) {
    if (format[key]?.default_key) parts.unshift(String(value));
    else parts.push(`${key}=${value}`);
  }
  return parts.join(",");
}
