import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { packAndInstall, REPO } from "../../examples/demo/scratch";

/**
 * Integration tests use the package the way users get it: `npm pack`, then the
 * tarball installed into a scratch Pulumi program (not a symlink, not a
 * relative import), and the runner and lab host from that installed copy.
 */
const SCRATCH = path.join(REPO, ".scratch", `it-${process.pid}`);

let installed: string | undefined;

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

/** Packs the repo and installs the tarball into a scratch project (once per test run). */
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
