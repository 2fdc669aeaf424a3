import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";

/**
 * Running commands for the lab kit: on this machine, with a fixed environment
 * (the lab must not depend on the caller's PATH or locale), and the namespace
 * links of processes, by which teardown recognizes what belongs to a lab.
 */

export const LAB_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
export const LAB_ENV: NodeJS.ProcessEnv = { PATH: LAB_PATH, HOME: "/root", LANG: "C" };

export interface LabExecOptions {
  /** A named network namespace inside the lab (run through `ip netns exec`). */
  namespace?: string;
  /** Resolve with the result instead of rejecting when the exit code is not 0. */
  allowFailure?: boolean;
  /** Kill the command after this long and reject. Default 30 s. */
  timeoutMs?: number;
  /** Written to the command's stdin. */
  input?: string;
}

/** What a finished command gave back: from a lab's exec and execLan, and from PulumiStack.cli. */
export interface LabExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `argv` on this machine; rejects on a non-zero exit unless `allowFailure`. */
export function runCommand(argv: string[], opts: Omit<LabExecOptions, "namespace"> = {}): Promise<LabExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { env: LAB_ENV, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.stdin.on("error", () => {}); // the command may exit without reading its stdin
    child.stdin.end(opts.input ?? "");
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, opts.timeoutMs ?? 30_000);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`${argv.join(" ")}: ${err.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const result = { code: code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0), stdout, stderr };
      if (timedOut) {
        reject(new Error(`${argv.join(" ")}: timed out after ${opts.timeoutMs ?? 30_000} ms`));
      } else if (result.code !== 0 && !opts.allowFailure) {
        reject(new Error(`${argv.join(" ")} exited with ${result.code}: ${stderr.trim() || stdout.trim()}`));
      } else {
        resolve(result);
      }
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Blocks the thread: for the teardown that runs in an `exit` handler, where nothing asynchronous runs. */
export const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** The `mnt:[...]` / `net:[...]` link of a process, or undefined when it is gone or a zombie. */
export function namespaceLink(pid: number, kind: "mnt" | "net"): string | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/${kind}`);
  } catch {
    return undefined;
  }
}
