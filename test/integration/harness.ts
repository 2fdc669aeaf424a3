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

/** Packs the repo and installs the tarball into a scratch project (once per test run). */
export function scratchProject(): string {
  if (installed) return installed;
  installed = packAndInstall(SCRATCH);
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
