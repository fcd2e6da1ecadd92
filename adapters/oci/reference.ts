/**
 * Image references as containerd and CRI-O read them: `busybox` is
 * `docker.io/library/busybox:latest`; a tag, a digest, or both.
 */
import { InvalidArgumentError } from "../../lib/errors.ts";

export interface ImageReference {
  /** Registry host (and port): `docker.io`, `registry.local:5000`. */
  domain: string;
  /** Repository path: `library/busybox`. */
  path: string;
  tag: string | null;
  /** `sha256:…` when pinned by digest. */
  digest: string | null;
}

const component = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const domainPart = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const domainPattern = new RegExp(
  `^(?:${domainPart}(?:\\.${domainPart})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?$`,
);
const pathPattern = new RegExp(`^${component}(?:/${component})*$`);
const tagPattern = /^[\w][\w.-]{0,127}$/;
const digestPattern = /^sha256:[a-f0-9]{64}$/;

/** Parses a reference; a malformed one is InvalidArgument naming what is wrong. */
export function parseImageReference(reference: string, field = "image.image"): ImageReference {
  const bad = (why: string) =>
    new InvalidArgumentError(`${field}: "${reference}" is not a valid image reference: ${why}`, {
      details: { field },
    });
  if (reference === "") throw bad("it is empty");
  if (reference.length > 255) throw bad("it is longer than 255 characters");
  let rest = reference;
  let digest: string | null = null;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!digestPattern.test(digest)) throw bad(`bad digest "${digest}"`);
  }
  let tag: string | null = null;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!tagPattern.test(tag)) throw bad(`bad tag "${tag}"`);
  }
  let domain = "docker.io";
  let path = rest;
  const firstSlash = rest.indexOf("/");
  if (firstSlash >= 0) {
    const head = rest.slice(0, firstSlash);
    if (head.includes(".") || head.includes(":") || head === "localhost") {
      domain = head;
      path = rest.slice(firstSlash + 1);
      if (!domainPattern.test(domain)) throw bad(`bad registry "${domain}"`);
    }
  }
  if (domain === "index.docker.io") domain = "docker.io";
  if (domain === "docker.io" && !path.includes("/")) path = `library/${path}`;
  if (!pathPattern.test(path)) throw bad(`bad repository "${path}"`);
  if (tag === null && digest === null) tag = "latest";
  return { domain, path, tag, digest };
}

/** The full form: `docker.io/library/busybox:latest` (tag and digest when both are given). */
export function canonicalReference(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}${ref.tag === null ? "" : `:${ref.tag}`}` +
    (ref.digest === null ? "" : `@${ref.digest}`);
}

/** `domain/path`: what RepoTags and RepoDigests are made from. */
export function repository(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}`;
}

/** `repo:tag` for RepoTags, `repo@digest` for RepoDigests. */
export function repoTag(ref: ImageReference): string | null {
  return ref.tag === null ? null : `${ref.domain}/${ref.path}:${ref.tag}`;
}

export function repoDigest(ref: ImageReference): string | null {
  return ref.digest === null ? null : `${ref.domain}/${ref.path}@${ref.digest}`;
}
