/**
 * Content digests (`sha256:<64 hex>`): computed whole or while data streams, and checked
 * against what a descriptor or a reference pinned.
 */
import { createHash, type Hash } from "node:crypto";
import { DataLossError, InvalidArgumentError } from "../../lib/errors.ts";

export const digestPattern = /^sha256:[a-f0-9]{64}$/;

export function isDigest(value: unknown): value is string {
  return typeof value === "string" && digestPattern.test(value);
}

/** A digest as found in a document: InvalidArgument-free, but a clear error when malformed. */
export function requireDigest(value: unknown, where: string): string {
  if (isDigest(value)) return value;
  const text = typeof value === "string" ? value : JSON.stringify(value);
  if (
    typeof value === "string" && /^[a-z0-9]+([+._-][a-z0-9]+)*:/.test(value) &&
    !value.startsWith("sha256:")
  ) {
    throw new DataLossError(
      `${where}: digest "${text}" is not sha256 (the only algorithm supported)`,
    );
  }
  throw new DataLossError(`${where}: "${text}" is not a digest`);
}

/** The 64 hex characters of a digest. */
export function digestHex(digest: string): string {
  if (!isDigest(digest)) throw new InvalidArgumentError(`Not a sha256 digest: "${digest}"`);
  return digest.slice("sha256:".length);
}

export function sha256Digest(data: Uint8Array): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** Hashes data as it passes, counting bytes. */
export class Digester {
  readonly #hash: Hash = createHash("sha256");
  bytes = 0;

  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    this.bytes += chunk.length;
  }

  digest(): string {
    return `sha256:${this.#hash.digest("hex")}`;
  }
}
