/**
 * The node's TLS identity, made as a fresh PVE node makes it: a cluster CA
 * (`pve-root-ca.pem`) signing the node certificate (`pve-ssl.pem`). Kept in the state dir, so
 * a restarted simulator serves the same certificate and pinned fingerprints stay valid.
 */
import { join } from "node:path";
import { readTextIfExists, writeFileAtomic } from "./files.ts";

export interface NodePki {
  /** `pve-root-ca.pem`: what a client trusts. */
  caPem: string;
  certPem: string;
  keyPem: string;
  /** SHA-256 of the node certificate, `AA:BB:…` as PVE shows it. */
  fingerprint: string;
}

const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
const day = 86_400_000;

export async function loadOrCreatePki(
  dir: string,
  names: { node: string; hosts: readonly string[] },
): Promise<NodePki> {
  Deno.mkdirSync(dir, { recursive: true });
  const paths = {
    ca: join(dir, "pve-root-ca.pem"),
    cert: join(dir, "pve-ssl.pem"),
    key: join(dir, "pve-ssl.key"),
  };
  const caPem = readTextIfExists(paths.ca);
  const certPem = readTextIfExists(paths.cert);
  const keyPem = readTextIfExists(paths.key);
  if (caPem !== undefined && certPem !== undefined && keyPem !== undefined) {
    return { caPem, certPem, keyPem, fingerprint: await certificateFingerprint(certPem) };
  }
  const made = await createPki(names);
  writeFileAtomic(paths.ca, made.caPem);
  writeFileAtomic(paths.cert, made.certPem);
  writeFileAtomic(paths.key, made.keyPem, 0o600);
  return made;
}

async function createPki(names: { node: string; hosts: readonly string[] }): Promise<NodePki> {
  // Loaded only to make the identity (once per state dir): it costs ~0.1 s of every start.
  await import("reflect-metadata"); // @peculiar/x509 resolves its ASN.1 codecs through tsyringe
  const x509 = await import("@peculiar/x509");
  const now = Date.now();
  const caKeys = await crypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=Proxmox Virtual Environment, OU=${crypto.randomUUID()}, O=PVE Cluster Manager CA`,
    notBefore: new Date(now - day),
    notAfter: new Date(now + 3650 * day),
    keys: caKeys,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const nodeKeys = await crypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
  const altNames = names.hosts.map((host) =>
    /^[\d.]+$|:/.test(host)
      ? { type: "ip" as const, value: host }
      : { type: "dns" as const, value: host }
  );
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${names.node}, OU=PVE Cluster Node, O=Proxmox Virtual Environment`,
    issuer: ca.subject,
    notBefore: new Date(now - day),
    notAfter: new Date(now + 730 * day),
    signingKey: caKeys.privateKey,
    publicKey: nodeKeys.publicKey,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(altNames),
      await x509.AuthorityKeyIdentifierExtension.create(ca),
    ],
  });
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", nodeKeys.privateKey));
  const certPem = cert.toString("pem");
  return {
    caPem: ca.toString("pem"),
    certPem,
    keyPem: pem("PRIVATE KEY", pkcs8),
    fingerprint: await certificateFingerprint(certPem),
  };
}

/** SHA-256 over the DER of a PEM certificate, as `AA:BB:…`. */
export async function certificateFingerprint(certPem: string): Promise<string> {
  const body = /-----BEGIN CERTIFICATE-----([^-]+)-----END CERTIFICATE-----/.exec(certPem)?.[1];
  if (body === undefined) throw new TypeError("not a PEM certificate");
  const der = Uint8Array.from(atob(body.replace(/\s+/g, "")), (c) => c.charCodeAt(0));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", der));
  return [...digest].map((b) => b.toString(16).padStart(2, "0").toUpperCase()).join(":");
}

function pem(label: string, der: Uint8Array): string {
  const base64 = btoa(String.fromCharCode(...der)).replace(/.{64}/g, "$&\n").trimEnd();
  return `-----BEGIN ${label}-----\n${base64}\n-----END ${label}-----\n`;
}

function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  bytes[0] = bytes[0]! & 0x7f; // positive
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}
