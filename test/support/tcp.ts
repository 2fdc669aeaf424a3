import { strict as assert } from "node:assert";

/**
 * A one-line TCP server and a client printing its reply, as argv for a lab's
 * spawn and exec: node is on every lab host, since a lab host is this machine.
 */

/** A TCP server in a lab namespace that answers every connection with one line; bound to "::" it takes IPv6 and IPv4. */
export const SERVER = (text: string, port: number, bind = "0.0.0.0") => [
  process.execPath,
  "-e",
  `require("net").createServer((s) => s.end(${JSON.stringify(`${text}\n`)})).listen(${port}, ${JSON.stringify(bind)}, () => console.log("listening"))`,
];

/** A TCP server that answers every connection with the address it came from (to see a NAT), on IPv6 and IPv4. */
export const WHO_SERVER = (port: number) => [
  process.execPath,
  "-e",
  `require("net").createServer((s) => s.end(s.remoteAddress + "\\n")).listen(${port}, "::", () => console.log("listening"))`,
];

/** A TCP client that prints what the server says (gives up after 3 s). */
export const CLIENT = (host: string, port: number) => [
  process.execPath,
  "-e",
  `const s = require("net").connect(${port}, ${JSON.stringify(host)}); let d = ""; s.on("data", (c) => (d += c)); s.on("end", () => { process.stdout.write(d); }); s.on("error", (e) => { console.error(e.message); process.exit(1); }); setTimeout(() => { console.error("timeout"); process.exit(2); }, 3000);`,
];

/** Waits (5 s at most) until a SERVER says it is listening. */
export async function waitListening(proc: { stdout(): string }): Promise<void> {
  for (let i = 0; i < 50 && !proc.stdout().includes("listening"); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(proc.stdout().includes("listening"), "the test server did not start");
}
