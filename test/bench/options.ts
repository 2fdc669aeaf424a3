// The bench's options, from the command line and BENCH_* variables (listed in run.ts).

import * as path from "node:path";

export type Program = "ts" | "ts-check" | "js" | "js-nosm";
/**
 * auto: PulumiStack (the test kit's Automation API wrapper: config set-all, the operation, its outputs);
 * lean: the Automation API's Stack itself, config set once, no outputs beyond what the operation returns;
 * cli: `pulumi up/refresh/destroy` run directly (PulumiStack.cli).
 */
export type Driver = "auto" | "lean" | "cli";
export interface Variant {
  program: Program;
  driver: Driver;
  /** PULUMI_SKIP_CHECKPOINTS=true: the engine writes the state once at the end instead of at every step. */
  noCheckpoints?: boolean;
}
export const variantLabel = (v: Variant) =>
  `${v.program}${v.driver === "auto" ? "" : ` ${v.driver}`}${v.noCheckpoints ? " +nocp" : ""}`;
export const variantKey = (v: Variant) => `${v.program}-${v.driver}${v.noCheckpoints ? "-nocp" : ""}`;

export interface Options {
  counts: number[];
  repeats: number;
  variants: Variant[];
  hosts: number[];
  hostsVariants: Variant[];
  parallel?: number;
  profile?: string;
  json?: string;
  nice?: number;
  /** The PodNetwork case (test/bench/pods.ts): pods per node on three nodes; none: the case is not run. */
  pods?: number;
}

function parseList(text: string): string[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

const QUICK = { n: "10,50", repeats: "1", variants: "ts,js,ts-cli", hosts: "1,20", "hosts-variants": "ts" };
/** Only the PodNetwork case: 3 nodes × 50 pods, 3 rounds, `pulumi up`/`destroy` run directly. */
const POD_NETWORK = { n: "", hosts: "", pods: "50", repeats: "3", variants: "ts-cli" };
const FULL = {
  n: "10,50,200",
  repeats: "3",
  variants: "ts,js,ts-cli,js-cli",
  hosts: "1,20",
  "hosts-variants": "ts",
};

function parseVariant(x: string): Variant {
  const m = /^(ts|ts-check|js|js-nosm)(?:-(cli|lean))?(\+nocp)?$/.exec(x);
  if (!m) throw new Error(`variant: not ts, ts-check, js or js-nosm, optionally with -cli or -lean, and +nocp: ${x}`);
  return { program: m[1] as Program, driver: (m[2] ?? "auto") as Driver, ...(m[3] ? { noCheckpoints: true } : {}) };
}

export function parseOptions(argv: string[]): Options {
  const env = process.env;
  const o: Record<string, string | undefined> = {
    n: env.BENCH_N ?? QUICK.n,
    repeats: env.BENCH_REPEATS ?? QUICK.repeats,
    variants: env.BENCH_VARIANTS ?? QUICK.variants,
    hosts: env.BENCH_HOSTS ?? QUICK.hosts,
    "hosts-variants": env.BENCH_HOSTS_VARIANTS ?? "ts",
    parallel: env.BENCH_PARALLEL,
    nice: env.BENCH_NICE,
    profile: env.BENCH_PROFILE,
    json: env.BENCH_JSON,
    pods: env.BENCH_PODS,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--quick") Object.assign(o, QUICK);
    else if (a === "--full") Object.assign(o, FULL);
    else if (a === "--pod-network") Object.assign(o, POD_NETWORK);
    else if (a.startsWith("--")) {
      const [k, v] = a.includes("=")
        ? [a.slice(2, a.indexOf("=")), a.slice(a.indexOf("=") + 1)]
        : [a.slice(2), argv[++i]];
      if (!(k in o)) throw new Error(`unknown option --${k}`);
      o[k] = v ?? "";
    } else throw new Error(`unexpected argument ${a}`);
  }
  const ints = (s: string | undefined, max: number, what: string) =>
    parseList(s ?? "").map((x) => {
      const n = Number(x);
      if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`not a ${what} (1-${max}): ${x}`);
      return n;
    });
  const parallel = o.parallel ? ints(o.parallel, 256, "parallelism")[0] : undefined;
  return {
    counts: ints(o.n, 999, "namespace count"),
    repeats: Math.max(1, Number(o.repeats) || 1),
    variants: parseList(o.variants ?? "").map(parseVariant),
    hosts: ints(o.hosts, 40, "host count"),
    hostsVariants: parseList(o["hosts-variants"] ?? "").map(parseVariant),
    ...(parallel ? { parallel } : {}),
    ...(o.profile ? { profile: path.resolve(o.profile) } : {}),
    ...(o.json ? { json: o.json } : {}),
    ...(o.nice ? { nice: Number(o.nice) } : {}),
    ...(o.pods ? { pods: ints(o.pods, 250, "pods per node")[0] } : {}),
  };
}
