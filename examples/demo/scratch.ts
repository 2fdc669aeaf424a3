import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/**
 * The package the way users get it: `npm pack` of this repository (which
 * builds it), then the tarball installed into a scratch project (not a
 * symlink, not a relative import). Used by the integration tests' harness and
 * by `npm run demo`.
 */
export const REPO = path.resolve(__dirname, "..", "..");

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
