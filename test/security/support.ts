import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** The events of a PULUMI_NETNS_TRACE file (empty when nothing was written). */
export function traceEvents(file: string): Array<{ event: string; host?: string; command?: string }> {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

export function countEvents(file: string, event: string): number {
  return traceEvents(file).filter((e) => e.event === event).length;
}

/**
 * A program whose one resource comes from config: `kind` (class name), `args`
 * (JSON) and `conn` (JSON merged over the lab connection; null removes a field).
 * Exports every output of the resource.
 */
export const CONFIGURED_PROGRAM = `
import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";

const cfg = new pulumi.Config();
const overrides = JSON.parse(cfg.get("conn") ?? "{}");
const connection: Record<string, unknown> = {
  host: cfg.require("host"),
  port: cfg.requireNumber("port"),
  user: cfg.get("user") ?? "root",
  privateKey: cfg.requireSecret("privateKey"),
  ...overrides,
};
// Credentials from config stay secret outputs, as a user's would.
for (const k of ["password", "privateKeyPassword"]) if (cfg.get(k) !== undefined) connection[k] = cfg.requireSecret(k);
for (const [k, v] of Object.entries(overrides)) if (v === null) delete connection[k];
const Kind = (netns as unknown as Record<string, new (n: string, a: unknown) => pulumi.CustomResource>)[cfg.require("kind")];
const res = new Kind(cfg.get("resourceName") ?? "subject", { ...JSON.parse(cfg.require("args")), connection }) as unknown as Record<string, pulumi.Output<unknown>>;
export const connectionOut = res.connection;
export const knownHostKeys = res.knownHostKeys;
export const name = res.name;
`;

/** A fresh ed25519 key pair that no lab authorizes. */
export function strayKey(): { privateKey: string; publicKey: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-netns-stray-"));
  try {
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "stray", "-f", path.join(dir, "k")]);
    return {
      privateKey: fs.readFileSync(path.join(dir, "k"), "utf8"),
      publicKey: fs.readFileSync(path.join(dir, "k.pub"), "utf8").trim().split(" ").slice(0, 2).join(" "),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
