/**
 * The shape of a parameter definition, as PVE's JSONSchema dialect spells it (the subset the
 * simulator's endpoints use). Kept close to apidoc.json so the contract test can compare.
 */
export type ParamType = "string" | "integer" | "number" | "boolean";

export interface ParamSchema {
  type: ParamType;
  optional?: true;
  enum?: readonly string[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  /** A Perl-stringified regex as PVE prints it, e.g. `(?^:\d+)`; matched whole. */
  pattern?: string;
  /** A named format (`pve-vmid`) or, for property strings (`k=v,k=v`), their keys. */
  format?: string | PropertyStringFormat;
  /** In a property string: the key that may appear without `key=`. */
  default_key?: true;
}

export type PropertyStringFormat = Readonly<Record<string, ParamSchema>>;

/** Parameters of one operation; `net[n]` stands for `net0`, `net1`, … */
export type ParamTable = Readonly<Record<string, ParamSchema>>;
