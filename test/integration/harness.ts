import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/**
 * Integration tests use the package the way users get it: `npm pack`, then the
 * tarball installed into a scratch Pulumi program (not a symlink, not a
 * relative import), and the runner and lab host from that installed copy.
 */
const REPO = path.resolve(__dirname, "..", "..");
const SCRATCH = path.join(REPO, ".scratch", `it-${process.pid}`);

let installed: string | undefined;

function run(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8", maxBuffer: 64 << 20 });
}

/** Packs the repo and installs the tarball into a scratch project (once per test run). */
export function scratchProject(): string {
  if (installed) return installed;
  fs.mkdirSync(SCRATCH, { recursive: true });
  const packed = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", SCRATCH], REPO))[0].filename as string;
  const tarball = path.join(SCRATCH, path.basename(packed));
  const repoPkg = JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8"));
  fs.writeFileSync(
    path.join(SCRATCH, "package.json"),
    JSON.stringify(
      {
        name: "pulumi-netns-scratch",
        private: true,
        dependencies: {
          "pulumi-netns": `file:${tarball}`,
          "@pulumi/pulumi": repoPkg.dependencies["@pulumi/pulumi"],
          typescript: repoPkg.devDependencies.typescript,
          "ts-node": repoPkg.devDependencies["ts-node"],
          "@types/node": repoPkg.devDependencies["@types/node"],
        },
      },
      null,
      2,
    ),
  );
  run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], SCRATCH);
  const real = fs.realpathSync(path.join(SCRATCH, "node_modules", "pulumi-netns"));
  if (!real.startsWith(path.join(SCRATCH, "node_modules")))
    throw new Error(
      `pulumi-netns in the scratch project resolves outside it (${real}): not installed from the tarball`,
    );
  installed = SCRATCH;
  return SCRATCH;
}

/** The installed package's testing kit, loaded from the scratch project. */
export function testingKit(): typeof import("../../provider/testing") {
  return require(require.resolve("pulumi-netns/testing", { paths: [scratchProject()] }));
}

let programCount = 0;

/** Writes a Pulumi program (Pulumi.yaml + index.ts) into the scratch project; returns its directory. */
export function writeProgram(name: string, source: string): string {
  const dir = path.join(scratchProject(), "programs", `${name}-${++programCount}`);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "Pulumi.yaml"), `name: ${name}\nruntime: nodejs\n`);
  fs.writeFileSync(path.join(dir, "index.ts"), source);
  return dir;
}

/** Replaces a program's index.ts (the user editing their program between runs). */
export function rewriteProgram(dir: string, source: string): void {
  fs.writeFileSync(path.join(dir, "index.ts"), source);
}

export function removeScratch(): void {
  fs.rmSync(SCRATCH, { recursive: true, force: true });
  installed = undefined;
}

/** The installed testing kit if a test already installed it (for cleanup hooks). */
export function installedKit(): typeof import("../../provider/testing") | undefined {
  return installed ? testingKit() : undefined;
}
