import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { LAB_ENV, runCommand, sleep } from "./commands";

/**
 * The lab's sshd: its throwaway keys, its config (everything in the lab's
 * directory, nothing of the machine's /etc/ssh), its start and readiness.
 */

export const SSHD = "/usr/sbin/sshd";
/** sshd's ed25519 host key pair in the lab's directory: the one `connection.hostKey` pins. */
export const HOST_KEY_FILE = "ssh_host_ed25519_key";
/**
 * Every host key sshd holds, as ssh-keygen's type and the file: several types,
 * as a real host has, so that pinning a key other than the one a client
 * prefers (ed25519) can be tried. RSA at 2048 bits keeps the lab's start short.
 */
export const HOST_KEY_FILES: ReadonlyArray<{ keygenType: string; bits?: string; file: string }> = [
  { keygenType: "ed25519", file: HOST_KEY_FILE },
  { keygenType: "ecdsa", bits: "256", file: "ssh_host_ecdsa_key" },
  { keygenType: "rsa", bits: "2048", file: "ssh_host_rsa_key" },
];
/** The lab's first client key pair: the one its connection carries. */
export const CLIENT_KEY_FILE = "id_ed25519";

/** A throwaway key pair (ed25519 unless told) in OpenSSH format: `file` (private) and `file.pub`. */
export function generateKey(
  file: string,
  comment: string,
  passphrase = "",
  kind: { keygenType: string; bits?: string } = { keygenType: "ed25519" },
): Promise<unknown> {
  const bits = kind.bits ? ["-b", kind.bits] : [];
  return runCommand(
    ["ssh-keygen", "-q", "-t", kind.keygenType, ...bits, "-N", passphrase, "-C", comment, "-f", file],
    {},
  );
}

/** `ssh-ed25519 AAAA...` (or another type) of the key pair at `file` (its comment left out). */
export function publicKeyOf(file: string): string {
  return fs.readFileSync(`${file}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
}

/** Lets the key pair at `keyFile` log in, as any user. */
export function authorizeKey(dir: string, keyFile: string): void {
  fs.appendFileSync(path.join(dir, "authorized_keys"), fs.readFileSync(`${keyFile}.pub`));
}

/** Writes the lab's authorized_keys (the client key) and sshd_config, listening on `address` only. */
export function configureSshd(dir: string, address: string): void {
  fs.copyFileSync(path.join(dir, `${CLIENT_KEY_FILE}.pub`), path.join(dir, "authorized_keys"));
  // sshd reads authorized_keys as the user logging in: let non-root users of the lab (sudo
  // tests) reach it. The directory can be traversed, not listed; private keys stay 0600.
  fs.chmodSync(dir, 0o711);
  fs.chmodSync(path.join(dir, "authorized_keys"), 0o644);
  fs.writeFileSync(
    path.join(dir, "sshd_config"),
    [
      `ListenAddress ${address}`,
      "Port 22",
      ...HOST_KEY_FILES.map((k) => `HostKey ${path.join(dir, k.file)}`),
      `AuthorizedKeysFile ${path.join(dir, "authorized_keys")}`,
      "PidFile none",
      "UsePAM no",
      "StrictModes no",
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "MaxSessions 10",
      "MaxStartups 100:30:200",
      "LogLevel ERROR",
      "",
    ].join("\n"),
  );
}

export interface SshdStart {
  /** `guard` prefixes the command (pdeathsig for labs tied to this process). */
  guard: string[];
  holderPid: number;
  dir: string;
  detached: boolean;
  name: string;
  log: (line: string) => void;
}

/** Starts sshd in the lab's namespaces; `failure()` says why once it has exited. */
export function spawnSshd(s: SshdStart): { sshd: ChildProcess; failure: () => string | undefined } {
  const sshdLog = fs.openSync(path.join(s.dir, "sshd.log"), "a");
  const argv = [
    ...s.guard,
    "nsenter",
    "-t",
    String(s.holderPid),
    "-n",
    "-m",
    "--",
    SSHD,
    "-D",
    "-e",
    "-f",
    path.join(s.dir, "sshd_config"),
  ];
  const sshd = spawn(argv[0], argv.slice(1), {
    env: LAB_ENV,
    stdio: ["ignore", sshdLog, s.detached ? sshdLog : "pipe"],
    detached: s.detached,
  });
  fs.closeSync(sshdLog);
  let sshdErr = "";
  let sshdExited = false;
  sshd.stderr?.setEncoding("utf8").on("data", (d: string) => {
    sshdErr += d;
    for (const l of d.split("\n")) if (l.trim()) s.log(`lab ${s.name} sshd: ${l}`);
  });
  (sshd.stderr as net.Socket | null)?.unref?.();
  sshd.on("exit", () => (sshdExited = true));
  sshd.unref();
  return { sshd, failure: () => (sshdExited ? `sshd exited: ${sshdErr.trim()}` : undefined) };
}

/** Waits until sshd on `host:port` answers, or `failed()` says why it never will. */
export async function waitForSshd(
  host: string,
  port: number,
  timeoutMs: number,
  failed: () => string | undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const why = failed();
    if (why) throw new Error(why);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host, port, timeout: 500 });
      // Completing the identification exchange keeps sshd from logging a
      // "kex_exchange_identification" error for every probe.
      s.once("data", () => {
        s.end("SSH-2.0-pulumi-netns-lab-probe\r\n");
        s.destroy();
        resolve(true);
      });
      s.once("timeout", () => {
        s.destroy();
        resolve(false);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline)
      throw new Error(`sshd on ${host}:${port} not accepting connections after ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** Waits until sshd at `host` presents `hostKey` (after a reload). */
export async function waitForHostKey(host: string, hostKey: string, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const scan = await runCommand(["ssh-keyscan", "-T", "2", "-t", "ed25519", host], { allowFailure: true });
    if (scan.stdout.includes(hostKey.split(" ")[1])) return;
    if (Date.now() > deadline) throw new Error(`${what}: sshd did not present its new host key`);
    await sleep(50);
  }
}
