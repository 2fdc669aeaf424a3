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
 * What one hop must present, for one caller: any one of `keys` (`<type> <base64>`
 * or `SHA256:...`), and where they come from (the error's advice depends on it).
 * The caller's pin wins over its state, which wins over the rest of the stack.
 */
export interface Expectation {
  keys: readonly string[];
  source: "pin" | "state" | "stack";
}

export function expectationMet(expected: Expectation, presented: HostKey): boolean {
  return expected.keys.some((k) => hostKeyMatches(k, presented));
}

/** Two callers that expect the same of a hop can share one dial. */
export function sameExpectation(a: Expectation | undefined, b: Expectation | undefined): boolean {
  const fingerprints = (e: Expectation | undefined) => (e ? e.keys.map(fingerprintOf).sort().join(",") : "");
  return fingerprints(a) === fingerprints(b);
}

/** The host key algorithms this package offers, in ssh2's order of preference. */
const HOST_KEY_ALGORITHMS = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "rsa-sha2-512",
  "rsa-sha2-256",
  "ssh-rsa",
] as const;

/** The signature algorithms that make a server present its key of `type`. */
function algorithmsOf(type: string): string[] {
  return type === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [type];
}

/**
 * The host key algorithms to offer, as an exact list (ssh2's `prepend` skips
 * what its default list already holds, so an ECDSA or RSA pin would still get
 * the ed25519 key). A server presents its key of the first algorithm offered
 * that it has: the expected keys' types come first, so a host that holds the
 * expected key presents it; one that lacks it presents another, and the check
 * refuses that with both fingerprints. `refusedTypes`: key types the host
 * already presented in vain to a bare fingerprint (which names no type), left
 * out so that the host presents its next one.
 */
export function hostKeyAlgorithms(expected: Expectation | undefined, refusedTypes: readonly string[] = []): string[] {
  const refused = refusedTypes.flatMap(algorithmsOf);
  const first = (expected?.keys ?? []).flatMap((k) => {
    const type = typeOf(k);
    return type ? algorithmsOf(type) : [];
  });
  return [...new Set([...first, ...HOST_KEY_ALGORITHMS])].filter((a) => !refused.includes(a));
}

/**
 * Whether the host may hold the expected key under another type than the one
 * it presented: only a bare fingerprint leaves the type open, and only while
 * some algorithm is left to offer.
 */
export function mayHoldAnotherType(expected: Expectation, refusedTypes: readonly string[]): boolean {
  return expected.keys.some((k) => typeOf(k) === undefined) && hostKeyAlgorithms(expected, refusedTypes).length > 0;
}
