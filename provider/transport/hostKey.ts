import { createHash } from "node:crypto";

/** A server's public host key as seen during the SSH handshake. */
export interface HostKey {
  type: string;
  /** "ssh-ed25519 AAAA..." as in known_hosts. */
  text: string;
  /** "SHA256:..." as `ssh-keygen -l` prints it. */
  fingerprint: string;
}

export function hostKeyFromBlob(blob: Buffer): HostKey {
  const typeLength = blob.readUInt32BE(0);
  const type = blob.subarray(4, 4 + typeLength).toString();
  return { type, text: `${type} ${blob.toString("base64")}`, fingerprint: fingerprintOfBlob(blob) };
}

function fingerprintOfBlob(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** The fingerprint of an expected key given in either accepted form. */
export function fingerprintOf(expected: string): string {
  if (expected.startsWith("SHA256:")) return expected.replace(/=+$/, "");
  return fingerprintOfBlob(Buffer.from(expected.split(" ")[1] ?? "", "base64"));
}

/** The key type an expectation names, when it names one (fingerprints do not). */
export function typeOf(expected: string): string | undefined {
  return expected.startsWith("SHA256:") ? undefined : expected.split(" ")[0];
}

export function hostKeyMatches(expected: string, actual: HostKey): boolean {
  return fingerprintOf(expected) === actual.fingerprint;
}

/**
 * Puts the expected key's algorithm first so a server holding several host
 * keys presents the one that was pinned or recorded.
 */
export function preferredAlgorithms(expected: string | undefined): string[] {
  const type = expected ? typeOf(expected) : undefined;
  if (!type) return [];
  return type === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [type];
}
