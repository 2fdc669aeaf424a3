import { NodeSSH } from "node-ssh";
import type { Client } from "ssh2";

export interface ScriptTiming {
  /** TCP connect + SSH handshake + authentication. */
  handshakeMs: number;
  /** The one exec, from channel request to exit status. */
  execMs: number;
  totalMs: number;
}

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  privateKey: string;
  /** "ssh-ed25519 AAAA...": the script pins it too, so it does the same checks as the provider. */
  hostKey: string;
}

/**
 * Runs a script the way one would by hand: `ssh root@host sh -s < script`.
 * One connection, one exec channel of `sh -s`, the whole script on its stdin.
 */
export async function runScriptOverSsh(target: SshTarget, script: string): Promise<ScriptTiming> {
  const t0 = performance.now();
  const ssh = new NodeSSH();
  const pinned = Buffer.from(target.hostKey.split(" ")[1] ?? "", "base64");
  await ssh.connect({
    host: target.host,
    port: target.port,
    username: target.user,
    privateKey: target.privateKey,
    hostVerifier: (key: Buffer) => key.equals(pinned),
  });
  const t1 = performance.now();
  try {
    const client = ssh.connection as Client;
    const { code, stderr } = await new Promise<{ code: number; stderr: string }>((resolve, reject) => {
      client.exec("sh -s", (err, channel) => {
        if (err) return reject(err);
        let stderr = "";
        channel.on("data", () => {});
        channel.stderr.on("data", (d: Buffer) => {
          stderr += d.toString();
        });
        channel.on("exit", (c: number | null) => {
          channel.on("close", () => resolve({ code: c ?? -1, stderr }));
        });
        channel.on("error", reject);
        channel.end(script);
      });
    });
    const t2 = performance.now();
    if (code !== 0) throw new Error(`script exited with ${code}: ${stderr.trim().split("\n").slice(-5).join("\n")}`);
    return { handshakeMs: t1 - t0, execMs: t2 - t1, totalMs: t2 - t0 };
  } finally {
    ssh.dispose();
  }
}
