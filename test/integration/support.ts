import { strict as assert } from "node:assert";
import type { LabHost, OperationResult } from "../../provider/testing";

/** Creates, updates, replaces and deletes an operation made (0 for a no-op). */
export const changes = (r: OperationResult) => r.counts.create + r.counts.update + r.counts.replace + r.counts.delete;

/** Asserts an operation succeeded, showing the CLI's last lines when it did not. */
export const ok = (r: OperationResult, log: string[]) => assert.ok(r.ok, `${r.error}\n${log.slice(-40).join("\n")}`);

/** Operations on the provider's resources only (the engine also counts the stack and component resources). */
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

/** The stack config that points a test program (see programs.ts HEADER) at a lab host: its address, port and key. */
export const labConfig = (lab: LabHost, suffix = "") => ({
  [`host${suffix}`]: lab.connection.host,
  [`port${suffix}`]: String(lab.connection.port),
  [`privateKey${suffix}`]: lab.connection.privateKey,
});

/** One ping (2 s at most), from the lab host or from one of its namespaces. */
export function ping(lab: LabHost, address: string, namespace?: string) {
  return lab.exec(["ping", "-c", "1", "-W", "2", address], { namespace, allowFailure: true });
}

/** The lab's named namespaces, from `ip -j netns list`. */
export async function netnsList(lab: LabHost): Promise<string[]> {
  const text = (await lab.exec(["ip", "-j", "netns", "list"])).stdout.trim();
  return text ? JSON.parse(text).map((n: { name: string }) => n.name) : [];
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
