import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/**
 * The package the way users get it: `npm pack` of this repository (which
 * builds it), then the tarball installed into a scratch project (not a
 * symlink, not a relative import). The integration tests, the bench and
 * `npm run demo` run the installed copy: its resources, lab host and PulumiStack.
 */
export const REPO = path.resolve(__dirname, "..", "..");

const SCRATCH = path.join(REPO, ".scratch", `it-${process.pid}`);

let installed: string | undefined;

function run(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8", maxBuffer: 64 << 20 });
}

/**
 * Packs the repository into `dir` and installs the tarball there, with
 * @pulumi/pulumi, typescript, ts-node and @types/node at the repository's
 * versions (what a Pulumi TypeScript program has). Returns `dir`.
 */
export function packAndInstall(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const packed = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", dir], REPO))[0].filename as string;
  const tarball = path.join(dir, path.basename(packed));
  const repoPkg = JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8"));
  fs.writeFileSync(
    path.join(dir, "package.json"),
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
  run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], dir);
  const real = fs.realpathSync(path.join(dir, "node_modules", "pulumi-netns"));
  if (!real.startsWith(path.join(dir, "node_modules")))
    throw new Error(
      `pulumi-netns in the scratch project resolves outside it (${real}): not installed from the tarball`,
    );
  return dir;
}

/**
 * The Pulumi CLI the tests drive: `npm run pulumi:install` finds a compatible
 * one on PATH or builds the pinned release into the repository's cache (and
 * prints where). The stacks pick it up from PULUMI_NETNS_PULUMI_ROOT.
 */
export function pulumiRoot(): string {
  if (!process.env.PULUMI_NETNS_PULUMI_ROOT) {
    const out = execFileSync("bash", [path.join(REPO, ".ci", "pulumi", "install.sh")], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    });
    process.env.PULUMI_NETNS_PULUMI_ROOT = out.trim().split("\n").pop();
  }
  return process.env.PULUMI_NETNS_PULUMI_ROOT as string;
}

/** Packs the repo and installs the tarball into this process's scratch project (once per run). */
export function scratchProject(): string {
  pulumiRoot();
  if (installed) return installed;
  installed = packAndInstall(SCRATCH);
  return SCRATCH;
}

/** The installed package's testing kit, loaded from the scratch project. */
export function testingKit(): typeof import("../../provider/testing") {
  return require(require.resolve("pulumi-netns/testing", { paths: [scratchProject()] }));
}

let programCount = 0;

/**
 * A program directory inside the scratch project, laid out as a user's: its
 * own `node_modules` (a link to the scratch project's, where the tarball is
 * installed), since the CLI starts the dynamic-provider host as
 * `node ./node_modules/@pulumi/pulumi/cmd/dynamic-provider` in it.
 */
export function programDir(name: string): string {
  const dir = path.join(scratchProject(), "programs", `${name}-${++programCount}`);
  fs.mkdirSync(dir, { recursive: true });
  fs.symlinkSync(path.join("..", "..", "node_modules"), path.join(dir, "node_modules"));
  return dir;
}

/** Writes a Pulumi program (Pulumi.yaml + index.ts) into the scratch project; returns its directory. */
export function writeProgram(name: string, source: string): string {
  const dir = programDir(name);
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
