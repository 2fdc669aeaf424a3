import { strict as assert } from "node:assert";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pulumiRoot, REPO } from "../support/harness";

/**
 * .ci/pulumi/install.sh against a cache shared by two checkouts, as git
 * worktrees share the main checkout's (`.cache/pulumi` a symlink to it): the
 * last checkout to run install.sh must not leave the cache depending on its own
 * files, or removing that checkout breaks every other checkout's Pulumi runs.
 */
describe(".ci/pulumi/install.sh", function () {
  this.timeout(180_000);
  let tmp: string;

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-netns-install-"));
  });
  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** A checkout with what install.sh reads: .ci/pulumi and package-lock.json. */
  function checkout(name: string): string {
    const dir = path.join(tmp, name);
    fs.mkdirSync(path.join(dir, ".ci"), { recursive: true });
    fs.cpSync(path.join(REPO, ".ci", "pulumi"), path.join(dir, ".ci", "pulumi"), { recursive: true });
    fs.copyFileSync(path.join(REPO, "package-lock.json"), path.join(dir, "package-lock.json"));
    return dir;
  }

  function install(dir: string): string {
    const out = execFileSync("bash", [path.join(dir, ".ci", "pulumi", "install.sh")], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      // The cache, never a pulumi found on PATH: that is the case under test.
      env: { ...process.env, PULUMI_NETNS_BUILD_CLI: "1" },
    });
    return out.trim().split("\n").pop() as string;
  }

  it("leaves the shared cache working after the checkout that last ran it is removed", () => {
    // The real CLI, so nothing is built: install.sh finds it cached and only (re)writes its scripts.
    const version = path.basename(pulumiRoot());
    const main = checkout("main");
    const bin = path.join(main, ".cache", "pulumi", version, "bin");
    fs.mkdirSync(bin, { recursive: true });
    fs.symlinkSync(path.join(pulumiRoot(), "bin", "pulumi"), path.join(bin, "pulumi"));
    install(main);

    const worktree = checkout("worktree");
    fs.mkdirSync(path.join(worktree, ".cache"));
    fs.symlinkSync(path.join(main, ".cache", "pulumi"), path.join(worktree, ".cache", "pulumi"));
    install(worktree);
    fs.rmSync(worktree, { recursive: true, force: true });

    // A tiny Node program previewed by the main checkout's CLI.
    const prog = path.join(tmp, "prog");
    fs.mkdirSync(prog);
    fs.symlinkSync(path.join(REPO, "node_modules"), path.join(prog, "node_modules"));
    fs.writeFileSync(path.join(prog, "Pulumi.yaml"), "name: install-check\nruntime: nodejs\n");
    fs.writeFileSync(path.join(prog, "package.json"), '{"name":"install-check","main":"index.js"}\n');
    fs.writeFileSync(path.join(prog, "index.js"), 'require("@pulumi/pulumi");\nexports.answer = 42;\n');
    const env = {
      ...process.env,
      PATH: `${bin}${path.delimiter}${process.env.PATH ?? ""}`,
      PULUMI_BACKEND_URL: `file://${path.join(tmp, "state")}`,
      PULUMI_HOME: path.join(tmp, "home"),
      PULUMI_CONFIG_PASSPHRASE: "install-check",
      PULUMI_SKIP_UPDATE_CHECK: "true",
      PULUMI_DIY_BACKEND_NO_LEGACY_WARNING: "true",
    };
    fs.mkdirSync(path.join(tmp, "state"));
    const pulumi = (...args: string[]) =>
      spawnSync(path.join(bin, "pulumi"), [...args, "--non-interactive"], { cwd: prog, env, encoding: "utf8" });
    const init = pulumi("stack", "init", "dev");
    assert.equal(init.status, 0, `pulumi stack init failed:\n${init.stdout}${init.stderr}`);
    const preview = pulumi("preview");
    assert.equal(
      preview.status,
      0,
      `pulumi preview through the shared cache failed once the worktree was gone:\n${preview.stdout}${preview.stderr}`,
    );
    assert.match(preview.stdout, /answer\s*:\s*42/);
  });
});
