/**
 * `npm run demo`: the lesson, live, on a throwaway lab host (run as root on Linux).
 *
 * Finds (or builds) the Pulumi CLI, packs this package and installs it into a
 * scratch project, starts a lab host (a network namespace with sshd, a LAN peer
 * and an "internet" behind it), takes examples/lesson-bridge up with the real
 * `pulumi up` (Automation API, local file backend), proves every lesson step on
 * the kernel, prints the topology as a Mermaid diagram, runs `pulumi destroy`,
 * shows the host is back exactly as it was, and removes everything it made,
 * also on failure and on Ctrl-C.
 *
 * Then, unless `--lesson-only` is given, the examples that take under a minute
 * each, the same way: examples/dual-stack on that lab host (IPv6 beside IPv4),
 * and examples/pod-network on two more lab hosts linked on one segment (pods
 * on two nodes reaching each other without NAT). Each is proven on the kernel
 * and destroyed, its hosts back as they were.
 */
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { checkLabPrerequisites } from "../../provider/testing/prerequisites";
import { packAndInstall, REPO } from "../../test/support/harness";
import { CLIENT, SERVER } from "../../test/support/tcp";

type Kit = typeof import("../../provider/testing");
type Pkg = typeof import("../../provider/index");
type Lab = import("../../provider/testing").LabHost;
type Stack = import("../../provider/testing").PulumiStack;
type Result = import("../../provider/testing").OperationResult;

const SCRATCH = path.join(REPO, ".scratch", `demo-${process.pid}`);
const EXAMPLES = path.join(REPO, "examples");
const LESSON_ONLY = process.argv.includes("--lesson-only");
for (const arg of process.argv.slice(2))
  if (arg !== "--lesson-only") {
    console.error(`npm run demo: unknown argument ${JSON.stringify(arg)} (the one option is --lesson-only)`);
    process.exit(2);
  }
const TOTAL = LESSON_ONLY ? 15 : 23;
const color = process.stdout.isTTY && !process.env.NO_COLOR;
const green = (s: string) => (color ? `\x1b[32m${s}\x1b[0m` : s);
const red = (s: string) => (color ? `\x1b[31m${s}\x1b[0m` : s);
const dim = (s: string) => (color ? `\x1b[2m${s}\x1b[0m` : s);

let lab: Lab | undefined;
/** Every lab host and stack the demo made, for cleanup (the lesson's lab first). */
const labs: Lab[] = [];
const stacks: Stack[] = [];

/**
 * The examples after the lesson (skipped with --lesson-only): examples/dual-stack on the lesson's
 * lab host, then examples/pod-network on two more lab hosts linked on one segment.
 */
async function beyondTheLesson(
  kit: Kit,
  theLab: Lab,
  before: string,
  exampleStack: (example: string, config: Record<string, string>) => Stack,
  connectionConfig: (l: Lab, suffix?: string) => Record<string, string>,
  upOf: (of: Stack) => Promise<Result>,
  destroyAndCompare: (of: Stack, hosts: Array<{ lab: Lab; before: string }>) => Promise<number>,
): Promise<void> {
  console.log(`\n${dim("beyond the lesson: the examples that take under a minute (skip them with --lesson-only)")}`);
  const dual = exampleStack("dual-stack", connectionConfig(theLab));
  const dualUp = await step(
    "pulumi up examples/dual-stack (the lesson with IPv6 beside IPv4, verify: true)",
    () => upOf(dual),
    (r) => `${r.counts.create} created; blue ${(r.outputs.addresses6 as Record<string, string> | undefined)?.blue}`,
  );
  await step(
    "red pings blue over IPv6 (fd00:15::a -> fd00:15::b), then the IPv6 'internet' 2001:db8:100::1 through NAT",
    async () => {
      expect(
        (dualUp.outputs.addresses6 as Record<string, string> | undefined)?.blue === "fd00:15::b",
        `addresses6: ${JSON.stringify(dualUp.outputs.addresses6)}`,
      );
      return `${await ping("red", "fd00:15::b")}; ${await ping("red", theLab.lan.internetAddress6)}`;
    },
    (t) => t,
  );
  await step(
    "pulumi destroy examples/dual-stack; the lab host is back exactly as it was",
    () => destroyAndCompare(dual, [{ lab: theLab, before }]),
    (n) => `${n} deleted`,
  );

  const [nodeA, nodeB] = await step(
    "start two more lab hosts and link them on one segment (eth1, 192.0.2.0/24)",
    async () => {
      // Both starts settle before either is judged, so cleanup knows every lab that did start.
      const started = await Promise.allSettled(
        ["a", "b"].map((x) => kit.startLabHost({ name: `demo-node-${x}-${process.pid}` })),
      );
      for (const r of started) if (r.status === "fulfilled") labs.push(r.value);
      const failed = started.find((r) => r.status === "rejected");
      if (failed) throw failed.reason;
      const made = started.map((r) => (r as PromiseFulfilledResult<Lab>).value);
      await kit.linkLabHosts(made, { subnet: "192.0.2.0/24" });
      return made;
    },
    (m) => m.map((l) => `${l.name} ssh ${l.connection.host}:${l.connection.port}`).join(", "),
  );
  const nodes = await step(
    "fingerprint both",
    () => Promise.all([kit.fingerprint(nodeA), kit.fingerprint(nodeB)]),
    (f) => f.map((x) => `${x.split("\n").length} lines`).join(", "),
  );
  const pods = exampleStack("pod-network", {
    ...connectionConfig(nodeA, "A"),
    ...connectionConfig(nodeB, "B"),
    nodeAddressA: "192.0.2.1",
    nodeAddressB: "192.0.2.2",
  });
  const podsUp = await step(
    "pulumi up examples/pod-network (PodNetwork, mode routes: web and api on node-a, db on node-b)",
    () => upOf(pods),
    (r) => `${r.counts.create} created; pod CIDRs ${JSON.stringify(r.outputs.podCidrs)}`,
  );
  await step(
    "web (node-a) pings db (node-b) across the nodes, and db pings web",
    async () => {
      const address = podsUp.outputs.addresses as Record<string, string>;
      return `${await ping("web", address.db, nodeA)}; ${await ping("db", address.web, nodeB)}`;
    },
    (t) => t,
  );
  await step(
    "pulumi destroy examples/pod-network; both lab hosts are back exactly as they were",
    () =>
      destroyAndCompare(pods, [
        { lab: nodeA, before: nodes[0] },
        { lab: nodeB, before: nodes[1] },
      ]),
    (n) => `${n} deleted`,
  );
}
let stepNo = 0;
let cleaning: Promise<string> | undefined;
let interrupted = false;
/** The Pulumi operation in flight, so Ctrl-C can cancel it (the CLI gets SIGINT, as from a terminal). */
let inFlight: { abort: AbortController; done: Promise<unknown> } | undefined;
const cliLog: string[] = [];

class StepFailed extends Error {}

/** Runs one numbered step: prints what it does, then ok with its result and time, or FAIL with the reason. */
async function step<T>(what: string, fn: () => Promise<T> | T, result?: (value: T) => string): Promise<T> {
  const n = ++stepNo;
  const t0 = Date.now();
  process.stdout.write(`[${String(n).padStart(2)}/${TOTAL}] ${what} ... `);
  try {
    const value = await fn();
    const detail = result ? result(value) : "";
    console.log(`${green("ok")} ${dim(`${Date.now() - t0} ms`)}${detail ? `  ${detail}` : ""}`);
    return value;
  } catch (err) {
    console.log(`${red("FAIL")} ${dim(`${Date.now() - t0} ms`)}`);
    const message = err instanceof Error ? err.message : String(err);
    throw new StepFailed(`step ${n} (${what}) failed: ${message}`);
  }
}

function expect(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/** Cancels the Pulumi operation in flight, if any, and waits (20 s at most) for the CLI to end. */
async function cancelInFlight(): Promise<void> {
  const op = inFlight;
  if (!op) return;
  op.abort.abort();
  await Promise.race([op.done.catch(() => undefined), new Promise((r) => setTimeout(r, 20_000).unref())]);
}

/** Ends the Pulumi operation in flight, stops the lab and removes the scratch project; safe to call twice. */
function cleanup(): Promise<string> {
  cleaning ??= (async () => {
    await cancelInFlight();
    const t0 = Date.now();
    for (const l of labs) await l.stop().catch((e) => console.error(`could not stop lab host ${l.name}: ${e}`));
    const t1 = Date.now();
    fs.rmSync(SCRATCH, { recursive: true, force: true });
    return `${labs.length} lab host${labs.length === 1 ? "" : "s"} stopped in ${t1 - t0} ms, scratch project removed in ${Date.now() - t1} ms`;
  })();
  return cleaning;
}

for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.on(signal, () => {
    interrupted = true;
    console.log(
      `\n${red("interrupted")}: cancelling pulumi, stopping the lab host and removing ${path.relative(REPO, SCRATCH)} ...`,
    );
    // The lab kit's own handler kills the lab synchronously right after this one; cleanup() ends the CLI and finishes the job.
    void cleanup().finally(() => process.exit(130));
  });

/** One ping; a second and third try only if the first is lost, and then the result says so. */
async function ping(from: string, to: string, on: Lab = lab!): Promise<string> {
  let r: { code: number; stdout: string; stderr: string } | undefined;
  for (let attempt = 1; attempt <= 3; attempt++) {
    r = await on.exec(["ping", "-c", "1", "-W", "2", to], { namespace: from, allowFailure: true });
    if (r.code === 0) {
      const rtt = /time=([\d.]+ ms)/.exec(r.stdout)?.[1] ?? "";
      return attempt === 1 ? rtt : `${rtt} (attempt ${attempt})`;
    }
    await new Promise((done) => setTimeout(done, 300));
  }
  throw new Error(`ping ${to} from ${from} exited with ${r?.code}: ${`${r?.stdout}\n${r?.stderr}`.trim()}`);
}

function ensureOk(r: Result): void {
  expect(r.ok, `${r.error}\n${cliLog.slice(-20).join("\n")}`);
}

/** Runs a Pulumi operation that Ctrl-C can cancel. */
function operation(run: (signal: AbortSignal) => Promise<Result>): Promise<Result> {
  const abort = new AbortController();
  const done = run(abort.signal);
  inFlight = { abort, done };
  return done.finally(() => {
    if (inFlight?.done === done) inFlight = undefined;
  });
}

/**
 * `npm run pulumi:install`: the Pulumi CLI matching @pulumi/pulumi in
 * package-lock.json, from PATH or the repository's cache, built from Go modules
 * when neither has it (its progress is shown). Returns the directory holding bin/pulumi.
 */
function installPulumi(): Promise<{ root: string; note: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [path.join(REPO, ".ci", "pulumi", "install.sh")], {
      cwd: REPO,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    let building = false;
    child.stdout.on("data", (c) => (out += c));
    child.stderr.on("data", (c: Buffer) => {
      err += c;
      const text = c.toString();
      // Only a build has progress worth showing live; "cached"/"from PATH" become the step's detail.
      if (!building && /building the Pulumi CLI/.test(text)) {
        building = true;
        process.stdout.write("\n");
      }
      if (building) process.stdout.write(text.replace(/^/gm, "       "));
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`.ci/pulumi/install.sh exited with ${code}:\n${err.trim()}`));
      const root = out.trim().split("\n").pop() ?? "";
      const note = (err.trim().split("\n").pop() ?? "").replace(/^pulumi:install: /, "");
      resolve({ root, note });
    });
  });
}

async function main(): Promise<void> {
  const started = Date.now();
  console.log("pulumi-netns demo: the network-namespaces lesson as code, on a throwaway lab host\n");

  await step("check prerequisites (Linux, root, ip, iptables, sshd, ping, nft, setpriv)", () => {
    const missing = checkLabPrerequisites();
    if (missing.length)
      throw new Error(
        `missing:\n  - ${missing.join("\n  - ")}\n` +
          "On Debian/Ubuntu, as root: sh .ci/install-system-packages.sh\n" +
          "  (= apt-get install -y iproute2 iptables openssh-server openssh-client iputils-ping nftables procps util-linux)",
      );
  });

  const cli = await step(
    "the Pulumi CLI (npm run pulumi:install: from PATH, the cache, or built from Go modules)",
    async () => {
      const { root, note } = await installPulumi();
      const bin = path.join(root, "bin", "pulumi");
      const version = execFileSync(bin, ["version"], { encoding: "utf8" }).trim();
      return { root, bin, version, note };
    },
    (c) => `pulumi ${c.version} at ${c.bin} (${c.note})`,
  );

  const dir = await step(
    "build, npm pack and install the tarball into a scratch project",
    () => packAndInstall(SCRATCH),
    (d) => path.relative(REPO, d),
  );
  const kit: Kit = require(require.resolve("pulumi-netns/testing", { paths: [dir] }));
  const pkg: Pkg = require(require.resolve("pulumi-netns", { paths: [dir] }));

  lab = await step(
    "start a throwaway lab host (netns + sshd + LAN peer)",
    async () => {
      const started = await kit.startLabHost({ name: `demo-${process.pid}` });
      labs.push(started);
      return started;
    },
    (l) => `ssh root@${l.connection.host}:${l.connection.port}, LAN peer ${l.lan.peerAddress}`,
  );
  const theLab = lab;
  const before = await step(
    "fingerprint the lab host (links, addresses, routes, iptables, nft, sysctls)",
    () => kit.fingerprint(theLab),
    (f) => `${f.split("\n").length} lines`,
  );

  /** An example as a user has it: Pulumi.yaml and index.ts, with node_modules (the installed tarball) beside them. */
  const exampleStack = (example: string, config: Record<string, string>): Stack => {
    const programDir = path.join(dir, "programs", example);
    fs.mkdirSync(programDir, { recursive: true });
    for (const f of ["Pulumi.yaml", "index.ts"])
      fs.copyFileSync(path.join(EXAMPLES, example, f), path.join(programDir, f));
    fs.symlinkSync(path.join("..", "..", "node_modules"), path.join(programDir, "node_modules"));
    const made = new kit.PulumiStack({
      programDir,
      pulumiRoot: cli.root,
      // Type-checked, as `pulumi up` does by default.
      typeCheck: true,
      config,
      log: (l) => {
        cliLog.push(l);
        if (cliLog.length > 200) cliLog.shift();
      },
    });
    stacks.push(made);
    return made;
  };
  /** A lab host's connection as an example's config, its keys suffixed (pod-network's hostA, ...). */
  const connectionConfig = (l: Lab, suffix = "") => ({
    [`host${suffix}`]: l.connection.host,
    [`port${suffix}`]: String(l.connection.port),
    [`privateKey${suffix}`]: l.connection.privateKey,
    [`hostKey${suffix}`]: l.connection.hostKey,
  });
  const theStack = exampleStack("lesson-bridge", { ...connectionConfig(theLab), lanSubnet: "203.0.113.0/24" });
  const up = await step(
    "pulumi up examples/lesson-bridge (the real CLI, local file backend, secrets by passphrase)",
    async () => {
      const r = await operation((signal) => theStack.up({ signal }));
      ensureOk(r);
      return r;
    },
    (r) => `${r.counts.create} created (stack, 2 namespaces, bridge, 2 veth pairs, 3 routes, NAT, port forward)`,
  );

  await step(
    "red pings blue across bridge v-net-0 (192.168.15.1 -> .2)",
    () => ping("red", "192.168.15.2"),
    (t) => t,
  );

  await step(
    "red's ARP table holds blue's MAC (the one the VethPair reports)",
    async () => {
      const neigh = JSON.parse((await theLab.exec(["ip", "-j", "neigh", "show"], { namespace: "red" })).stdout);
      const entry = neigh.find((n: { dst: string }) => n.dst === "192.168.15.2");
      expect(
        entry?.lladdr === up.outputs.blueMac,
        `red's entry for 192.168.15.2 is ${entry?.lladdr}, blue's MAC is ${up.outputs.blueMac}`,
      );
      return entry.lladdr as string;
    },
    (mac) => `192.168.15.2 lladdr ${mac}`,
  );

  await step(
    "NAT: blue pings the LAN peer 203.0.113.1, which has no route back to 192.168.15.0/24",
    async () => {
      const back = await theLab.execLan(["ip", "-j", "route", "get", "192.168.15.2"], { allowFailure: true });
      expect(back.code !== 0, "the LAN peer unexpectedly has a route to 192.168.15.0/24");
      const nat = (await theLab.exec(["iptables-save", "-t", "nat"])).stdout;
      const rule = nat
        .split("\n")
        .find((l) => /^-A POSTROUTING -s 192\.168\.15\.0\/24 ! -o v-net-0 .*-j MASQUERADE$/.test(l));
      expect(rule, `no MASQUERADE rule for 192.168.15.0/24 ! -o v-net-0 in:\n${nat}`);
      return `${await ping("blue", theLab.lan.peerAddress)}; ${rule.replace(/ -m comment --comment "[^"]*"/, "")}`;
    },
    (t) => t,
  );

  await step(
    "default route: red reaches the 'internet' 198.51.100.1 behind the LAN",
    () => ping("red", theLab.lan.internetAddress),
    (t) => t,
  );

  await step(
    "port forward: the LAN peer connects to 203.0.113.2:8080 and reaches a server on blue:80",
    async () => {
      const server = theLab.spawn(SERVER("hello from blue", 80), { namespace: "blue" });
      try {
        for (let i = 0; i < 50 && !server.stdout().includes("listening"); i++)
          await new Promise((r) => setTimeout(r, 100));
        const reply = await theLab.execLan(CLIENT(theLab.lan.hostAddress, 8080), { allowFailure: true });
        expect(reply.stdout === "hello from blue\n", `got ${JSON.stringify(reply.stdout)} ${reply.stderr.trim()}`);
        return reply.stdout.trim();
      } finally {
        await server.kill();
      }
    },
    (t) => JSON.stringify(t),
  );

  await step(
    "a second pulumi up changes nothing",
    async () => {
      const r = await operation((signal) => theStack.up({ signal }));
      ensureOk(r);
      const changed = r.counts.create + r.counts.update + r.counts.replace + r.counts.delete;
      expect(changed === 0, `${changed} changes: ${JSON.stringify(r.steps.filter((s) => s.op !== "same"))}`);
      return r.counts.same;
    },
    (same) => `${same} resources unchanged`,
  );

  const diagram = await step("the topology as a Mermaid diagram (planNetwork + diagramOf)", () =>
    pkg.diagramOf(
      pkg.planNetwork({
        bridge: "v-net-0",
        subnet: "192.168.15.0/24",
        gateway: "192.168.15.5",
        namespaces: [
          { name: "red", address: "192.168.15.1" },
          { name: "blue", address: "192.168.15.2" },
        ],
        outboundNat: true,
        portForwards: [{ namespace: "blue", hostPort: 8080, port: 80 }],
      }),
      `lab host ${theLab.connection.host}`,
    ),
  );
  console.log(`\n\`\`\`mermaid\n${diagram}\`\`\`\n`);

  /** `pulumi destroy`, then each lab's fingerprint must equal the one taken before the stack's first up. */
  const destroyAndCompare = async (of: Stack, hosts: Array<{ lab: Lab; before: string }>) => {
    const r = await operation((signal) => of.destroy({ signal }));
    ensureOk(r);
    // Destroyed: a failure later need not destroy it again.
    stacks.splice(stacks.indexOf(of), 1);
    for (const h of hosts) {
      const after = await kit.fingerprint(h.lab);
      if (after !== h.before) {
        const a = h.before.split("\n");
        const b = after.split("\n");
        const diff = b.filter((l, i) => l !== a[i]).slice(0, 5);
        throw new Error(`lab host ${h.lab.name} differs after destroy:\n  ${diff.join("\n  ")}`);
      }
    }
    return r.counts.delete;
  };
  /** `pulumi up` of a stack, which must succeed. */
  const upOf = async (of: Stack) => {
    const r = await operation((signal) => of.up({ signal }));
    ensureOk(r);
    return r;
  };

  await step(
    "pulumi destroy; the lab host is back exactly as it was (fingerprint equal)",
    () => destroyAndCompare(theStack, [{ lab: theLab, before }]),
    (n) => `${n} deleted`,
  );

  if (!LESSON_ONLY) await beyondTheLesson(kit, theLab, before, exampleStack, connectionConfig, upOf, destroyAndCompare);

  await step(
    `stop the lab host${labs.length > 1 ? "s" : ""} and remove the scratch project`,
    () => cleanup(),
    (t) => t,
  );
  console.log(`\n${green("demo passed")} in ${((Date.now() - started) / 1000).toFixed(1)} s; nothing left behind.`);
}

main().then(
  () => process.exit(0),
  async (err) => {
    if (interrupted) return; // the signal handler cleans up and exits 130
    console.error(`\n${red("demo failed")}: ${err instanceof StepFailed ? err.message : (err?.stack ?? err)}`);
    if (stacks.length && lab) {
      // Best effort: take the stacks down first so a failure report is about the failure, not leftovers.
      for (const s of stacks) await operation((signal) => s.destroy({ signal })).catch(() => undefined);
    }
    await cleanup();
    console.error("cleaned up: lab hosts stopped, scratch project removed.");
    process.exit(1);
  },
);
