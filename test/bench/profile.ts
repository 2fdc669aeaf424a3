// Summaries of the profiles `npm run bench -- --profile dir` collects: the V8
// CPU profiles (.cpuprofile) that `node --cpu-prof` writes for the language
// host, the program (cmd/run) and the provider host, and the Go CPU profiles
// that `pulumi --profiling` writes for the CLI (cli variants only).

import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: CpuProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** node_modules/<package> (scoped packages keep their scope), node's own code, or the file. */
function bucketOf(url: string, fn: string): string {
  if (!url) return fn.startsWith("(") ? fn : "(native)";
  if (url.startsWith("node:")) return "node internals";
  const i = url.lastIndexOf("node_modules/");
  if (i >= 0) {
    const rest = url.slice(i + "node_modules/".length).split("/");
    return rest[0].startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  return path.basename(url);
}

function roleOf(file: string, p: CpuProfile): string {
  const prefix = path.basename(file).split("-")[0];
  const named: Record<string, string> = {
    provider: "provider host",
    program: "program (cmd/run)",
    langhost: "language host",
  };
  if (named[prefix]) return named[prefix];
  const urls = p.nodes.map((n) => n.callFrame.url);
  if (urls.some((u) => u.includes("cmd/dynamic-provider"))) return "provider host";
  if (urls.some((u) => u.includes("cmd/run"))) return "program (cmd/run)";
  if (urls.some((u) => u.includes("language-host.js"))) return "language host";
  return "other node process";
}

const top = (m: Map<string, number>, total: number, k: number) =>
  [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, k)
    .map(([name, us]) => `${(us / 1000).toFixed(0)} ms ${((100 * us) / total).toFixed(0)}% ${name}`);

/** Self time by package and by function, and inclusive time by function, of one V8 profile. */
export function summarizeCpuProfile(file: string, k = 10): string {
  const p = JSON.parse(fs.readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfByBucket = new Map<string, number>();
  const selfByFn = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  let idle = 0;
  const name = (n: CpuProfileNode) =>
    `${n.callFrame.functionName || "(anonymous)"} ${bucketOf(n.callFrame.url, n.callFrame.functionName)}${
      n.callFrame.url && !n.callFrame.url.startsWith("node:") ? `:${n.callFrame.lineNumber + 1}` : ""
    }`;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? 0;
    const node = byId.get(p.samples[i]);
    if (!node) continue;
    if (node.callFrame.functionName === "(idle)") {
      idle += dt;
      continue;
    }
    total += dt;
    const b = bucketOf(node.callFrame.url, node.callFrame.functionName);
    selfByBucket.set(b, (selfByBucket.get(b) ?? 0) + dt);
    selfByFn.set(name(node), (selfByFn.get(name(node)) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const n = byId.get(id) as CpuProfileNode;
      const key = name(n);
      if (seen.has(key) || n.callFrame.functionName === "(root)") continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + dt);
    }
  }
  const wall = (p.endTime - p.startTime) / 1000;
  return [
    `${roleOf(file, p)} — ${path.basename(file)}: ${(total / 1000).toFixed(0)} ms on CPU of ${wall.toFixed(0)} ms (idle ${(idle / 1000).toFixed(0)} ms)`,
    "  self, by package:",
    ...top(selfByBucket, total, k).map((l) => `    ${l}`),
    "  self, by function:",
    ...top(selfByFn, total, k).map((l) => `    ${l}`),
    "  inclusive, by function:",
    ...top(inclusive, total, k + 5).map((l) => `    ${l}`),
  ].join("\n");
}

/** The top of a Go CPU profile (`go tool pprof -top`), if Go is at hand. */
export function summarizeGoProfile(file: string, k = 20): string {
  const goBins = ["go", "/usr/local/go/bin/go", "/usr/lib/go/bin/go"];
  for (const go of goBins) {
    try {
      const out = execFileSync(go, ["tool", "pprof", "-top", `-nodecount=${k}`, file], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      });
      const cum = execFileSync(go, ["tool", "pprof", "-top", "-cum", `-nodecount=${k}`, file], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      });
      return `pulumi CLI — ${path.basename(file)}:\n${out.trimEnd()}\n  by cumulative:\n${cum.trimEnd()}`;
    } catch {
      // next
    }
  }
  return `pulumi CLI — ${path.basename(file)}: (go tool pprof not available)`;
}

/** Every profile in `dir`, summarized. */
export function profileSummary(dir: string): string {
  if (!fs.existsSync(dir)) return `${dir}: no profiles`;
  const files = fs.readdirSync(dir).sort();
  const parts = [`## ${dir}`];
  for (const f of files) {
    const file = path.join(dir, f);
    if (f.endsWith(".cpuprofile")) parts.push(summarizeCpuProfile(file));
    else if (/\.\d+\.cpu$/.test(f)) parts.push(summarizeGoProfile(file));
  }
  return parts.join("\n\n");
}

// `npx ts-node --transpile-only bench/profile.ts dir...`: summarize profiles collected earlier.
if (require.main === module) {
  for (const dir of process.argv.slice(2)) process.stdout.write(`${profileSummary(dir)}\n\n`);
}
