import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import type { LabHost, OperationResult } from "../../provider/testing";

/** Creates, updates, replaces and deletes an operation made (0 for a no-op). */
export const changes = (r: OperationResult) => r.counts.create + r.counts.update + r.counts.replace + r.counts.delete;

/** Asserts an operation succeeded, showing the runner's last lines when it did not. */
export const ok = (r: OperationResult, log: string[]) => assert.ok(r.ok, `${r.error}\n${log.slice(-40).join("\n")}`);

/** Operations on the provider's resources only (the runner also counts the stack and component resources). */
export function providerCounts(r: OperationResult): {
  create: number;
  update: number;
  replace: number;
  delete: number;
} {
  const out = { create: 0, update: 0, replace: 0, delete: 0 };
  for (const s of r.steps)
    if (s.type.startsWith("pulumi-nodejs:dynamic/") && s.op in out) out[s.op as keyof typeof out]++;
  return out;
}

/** The LocalStack config that points a test program (see programs.ts HEADER) at a lab host. */
export const labConfig = (lab: LabHost, suffix = "") => ({
  [`host${suffix}`]: lab.connection.host,
  [`port${suffix}`]: String(lab.connection.port),
  [`privateKey${suffix}`]: lab.connection.privateKey,
});

/** A TCP server in a lab namespace that answers every connection with one line. */
export const SERVER = (text: string, port: number) => [
  process.execPath,
  "-e",
  `require("net").createServer((s) => s.end(${JSON.stringify(`${text}\n`)})).listen(${port}, "0.0.0.0", () => console.log("listening"))`,
];

/** A TCP client that prints what the server says (gives up after 3 s). */
export const CLIENT = (host: string, port: number) => [
  process.execPath,
  "-e",
  `const s = require("net").connect(${port}, ${JSON.stringify(host)}); let d = ""; s.on("data", (c) => (d += c)); s.on("end", () => { process.stdout.write(d); }); s.on("error", (e) => { console.error(e.message); process.exit(1); }); setTimeout(() => { console.error("timeout"); process.exit(2); }, 3000);`,
];

export async function waitListening(proc: { stdout(): string }): Promise<void> {
  for (let i = 0; i < 50 && !proc.stdout().includes("listening"); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(proc.stdout().includes("listening"), "the test server did not start");
}

/** One ping (2 s at most), from the lab host or from one of its namespaces. */
export function ping(lab: LabHost, address: string, namespace?: string) {
  return lab.exec(["ping", "-c", "1", "-W", "2", address], { namespace, allowFailure: true });
}

/** The lab's named namespaces, from `ip -j netns list`. */
export async function netnsList(lab: LabHost): Promise<string[]> {
  const text = (await lab.exec(["ip", "-j", "netns", "list"])).stdout.trim();
  return text ? JSON.parse(text).map((n: { name: string }) => n.name) : [];
}

/** The events of a PULUMI_NETNS_TRACE file (one JSON object per line). */
export function traceEvents(file: string): Array<Record<string, unknown>> {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/**
 * Kills the lab's sshd session processes (SIGKILL): every client connection
 * drops, while the remote shells they started live on. Returns how many.
 */
export async function dropSshSessions(lab: LabHost): Promise<number> {
  const script =
    'n=0; for p in $(pgrep -f "^sshd: root"); do if [ "$(readlink /proc/$p/ns/net)" = "$(readlink /proc/self/ns/net)" ]; then kill -9 $p && n=$((n+1)); fi; done; echo $n';
  return Number((await lab.exec(["sh", "-c", script])).stdout.trim());
}
