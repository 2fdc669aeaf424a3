// Child process for one LocalStack operation (see runner.ts). A fresh process per
// operation keeps the SDK's global state clean, as with the real language host.
//
// argv[2]: JSON ChildRequest. Progress lines go to stdout; protocol messages
// (one JSON object per line) go to fd 3: {type:"host",pid} and {type:"result",...}.

import * as fs from "node:fs";
import * as path from "node:path";
import { Engine, loadSdk, type Op, ProviderHost, resolveSdkDir } from "./engineMonitor";
import { StateStore } from "./runnerState";

export interface ChildRequest {
  op: Op;
  programDir: string;
  stateFile: string;
  stack: string;
  project: string;
  parallel: number;
  /** Fully qualified keys ("project:key"). */
  config: Record<string, string>;
}

export interface ChildResult {
  type: "result";
  ok: boolean;
  error?: string;
  counts: Engine["counts"];
  outputs: Record<string, unknown>;
  steps: Engine["steps"];
  timings: {
    sdkLoadMs: number /** wait for the host's port + Configure, after the SDK load (they overlap) */;
    hostStartMs: number;
    programMs: number;
    totalMs: number;
  };
}

function send(msg: unknown): void {
  fs.writeSync(3, `${JSON.stringify(msg)}\n`);
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

function programEntry(programDir: string): { file: string; ts: boolean } {
  const pkgFile = path.join(programDir, "package.json");
  if (fs.existsSync(pkgFile)) {
    const main = JSON.parse(fs.readFileSync(pkgFile, "utf8")).main;
    if (typeof main === "string") {
      const file = path.resolve(programDir, main);
      return { file, ts: /\.[cm]?tsx?$/.test(file) };
    }
  }
  for (const f of ["index.ts", "index.js"]) {
    if (fs.existsSync(path.join(programDir, f))) {
      return { file: path.join(programDir, f), ts: f.endsWith(".ts") };
    }
  }
  throw new Error(`no index.ts or index.js in ${programDir}`);
}

function registerTsNode(programDir: string): void {
  if ((process as unknown as Record<symbol, unknown>)[Symbol.for("ts-node.register.instance")]) {
    return; // already running under ts-node (the runner itself is .ts)
  }
  let mod: string;
  try {
    mod = require.resolve("ts-node", { paths: [programDir] });
  } catch {
    mod = require.resolve("ts-node");
  }
  require(mod).register({
    transpileOnly: true,
    dir: programDir,
    compilerOptions: { module: "commonjs", esModuleInterop: true },
  });
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const req = JSON.parse(process.argv[2]) as ChildRequest;
  const preview = req.op === "preview";
  process.env.PULUMI_CONFIG = JSON.stringify(req.config);
  process.env.PULUMI_NODEJS_PROJECT = req.project;
  process.env.PULUMI_NODEJS_STACK = req.stack;
  process.env.PULUMI_NODEJS_ROOT_DIRECTORY = req.programDir;
  process.chdir(req.programDir);

  // Start the provider host first: it loads the SDK too, so the two loads overlap.
  const sdkDir = resolveSdkDir(req.programDir);
  const spawned = ProviderHost.spawn(sdkDir, req.programDir, process.env, log);
  process.on("exit", () => {
    if (spawned.proc.exitCode === null && spawned.proc.signalCode === null) {
      spawned.proc.kill("SIGKILL");
    }
  });
  send({ type: "host", pid: spawned.proc.pid });
  const sdk = loadSdk(sdkDir);
  const sdkLoadMs = Date.now() - t0;

  // State file + journal; a journal left by an interrupted operation is compacted here.
  const store = new StateStore(req.stateFile);
  const state = store.load();
  const t1 = Date.now();
  const host = await ProviderHost.connect(sdk, spawned);
  await host.configure(req.config);
  const hostStartMs = Date.now() - t1;

  const engine = new Engine({
    sdk,
    host,
    state,
    preview,
    parallel: req.parallel,
    project: req.project,
    stack: req.stack,
    log,
    save: (s, changes) => store.record(changes, s.seq ?? 0),
  });

  let programError: string | undefined;
  const t2 = Date.now();
  if (req.op === "up" || req.op === "preview") {
    const unhandled: string[] = [];
    process.on("unhandledRejection", (e) => {
      unhandled.push(e instanceof Error ? e.message : String(e));
    });
    sdk.settings.setMockOptions(engine.monitor(), req.project, req.stack, preview);
    // The same store flags as runtime/mocks.js setMocks().
    const store = sdk.state.getStore();
    store.supportsSecrets = true;
    store.supportsResourceReferences = true;
    store.supportsOutputValues = false;
    store.supportsDeletedWith = true;
    store.supportsReplaceWith = true;
    store.supportsAliasSpecs = true;
    store.supportsTransforms = false;
    store.supportsParameterization = true;
    store.supportsResourceHooks = true;
    store.supportsErrorHooks = true;

    const program = (async () => {
      try {
        const entry = programEntry(req.programDir);
        if (entry.ts) {
          registerTsNode(req.programDir);
        }
        await sdk.stack.runInPulumiStack(async () => {
          const m = require(entry.file);
          return typeof m.default === "function" ? await m.default() : m;
        });
      } catch (e) {
        programError = e instanceof Error ? (e.stack ?? e.message) : String(e);
      }
      try {
        await sdk.settings.waitForRPCs();
      } catch (e) {
        programError ??= e instanceof Error ? e.message : String(e);
      }
    })();
    // Resources waiting on a failed one's outputs never register: stop like the engine does.
    await Promise.race([program, engine.settledAfterFailure()]);
    if (!programError && unhandled.length > 0 && engine.errors.length === 0) {
      programError = unhandled.join("\n");
    }
    if (programError && engine.errors.length === 0) {
      log(`! program failed: ${programError}`);
    }
    await engine.finishUp(!!programError);
  } else if (req.op === "refresh") {
    await engine.refresh();
  } else if (req.op === "destroy") {
    await engine.destroy();
  }
  const programMs = Date.now() - t2;
  if (!preview) {
    store.compact(engine.state); // a no-op when no step changed anything
  }

  const errors = [...engine.errors];
  if (programError && errors.length === 0) {
    errors.push(`program failed: ${programError}`);
  }
  const result: ChildResult = {
    type: "result",
    ok: errors.length === 0,
    ...(errors.length ? { error: errors.join("\n") } : {}),
    counts: engine.counts,
    outputs: engine.stackOutputs,
    steps: engine.steps,
    timings: { sdkLoadMs, hostStartMs, programMs, totalMs: Date.now() - t0 },
  };
  send(result);
  host.kill();
  process.exit(0);
}

main().catch((e) => {
  process.stderr.write(`runner child crashed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(70);
});
