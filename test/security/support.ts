import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { OperationResult } from "../../provider/testing";
import { traceEvents } from "../support/trace";

/** How many events of one kind a PULUMI_NETNS_TRACE file holds. */
export function countEvents(file: string, event: string): number {
  return traceEvents(file).filter((e) => e.event === event).length;
}

/** The resource type prefix of every dynamic resource, as the real engine names it. */
export const DYNAMIC_TYPE = "pulumi-nodejs:dynamic/";

/** The steps of an operation on resources of this package (`pulumi-nodejs:dynamic/netns:Namespace`, ...). */
export const ownSteps = (r: OperationResult) => r.steps.filter((s) => s.type.startsWith(`${DYNAMIC_TYPE}netns:`));

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

/**
 * A program of several Namespaces on one host, from config: `resources` (JSON
 * list of `{ name, conn }`, `conn` merged over the lab connection), each one
 * depending on the one before (so that the engine meets them in that order).
 * Exports each one's `knownHostKeys` by name.
 */
export const NAMESPACES_PROGRAM = `
import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";

const cfg = new pulumi.Config();
const base = { host: cfg.require("host"), port: cfg.requireNumber("port"), privateKey: cfg.requireSecret("privateKey") };
const list = JSON.parse(cfg.require("resources")) as Array<{ name: string; conn?: Record<string, unknown> }>;
let previous: pulumi.Resource | undefined;
const keys: Record<string, pulumi.Output<Record<string, string>>> = {};
for (const r of list) {
  const ns = new netns.Namespace(r.name, { name: r.name, connection: { ...base, ...(r.conn ?? {}) } }, { dependsOn: previous ? [previous] : [] });
  keys[r.name] = ns.knownHostKeys;
  previous = ns;
}
export const knownHostKeys = keys;
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

/**
 * Every form in which a secret could leak into text: the value itself, its
 * JSON-escaped form (a key's newlines as `\n`), its base64, and for a PEM or
 * OpenSSH key each line of the base64 body (16 characters or more, so that a
 * short tail line cannot match by chance).
 */
export function secretForms(secret: string): Array<{ form: string; text: string }> {
  const out = [
    { form: "whole", text: secret },
    { form: "JSON-escaped", text: JSON.stringify(secret).slice(1, -1) },
    { form: "base64", text: Buffer.from(secret).toString("base64") },
  ];
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(secret)) {
    const body = secret.split("\n").filter((l) => l.trim() && !l.startsWith("-----"));
    body.forEach((l, i) => {
      if (l.trim().length >= 16) out.push({ form: `body line ${i + 1}`, text: l.trim() });
    });
  }
  return out;
}

/** `text` with every form of every secret replaced by `[name]` (for messages that show where a secret was). */
export function maskSecrets(text: string, secrets: Record<string, string>): string {
  let out = text;
  for (const [name, secret] of Object.entries(secrets))
    for (const { text: needle } of secretForms(secret)) out = out.split(needle).join(`[${name}]`);
  return out;
}

/**
 * Fails naming where, which secret and which form, if `text` holds any form of
 * any of `secrets`; the message shows the text around it, masked.
 */
export function assertNoSecret(where: string, text: string, secrets: Record<string, string>): void {
  for (const [name, secret] of Object.entries(secrets))
    for (const { form, text: needle } of secretForms(secret)) {
      const at = text.indexOf(needle);
      if (at < 0) continue;
      const masked = maskSecrets(text, secrets);
      const mark = Math.max(0, masked.indexOf(`[${name}]`));
      const around = masked.slice(Math.max(0, mark - 120), mark + name.length + 60).replace(/\s+/g, " ");
      assert.fail(`${where} holds ${name} (${form}): ...${around}...`);
    }
}
