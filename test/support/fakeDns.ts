import * as fs from "node:fs";
import * as path from "node:path";

/**
 * Preloaded into the CLI's processes (NODE_OPTIONS): names under .invalid do
 * not resolve, without a query leaving this machine (tests talk to loopback
 * and their own namespaces only).
 */
const FAKE_DNS = `
const dns = require("dns");
const lookup = dns.lookup;
dns.lookup = function (host, ...rest) {
  if (typeof host === "string" && host.endsWith(".invalid")) {
    const cb = rest[rest.length - 1];
    const e = Object.assign(new Error("getaddrinfo ENOTFOUND " + host), { code: "ENOTFOUND", syscall: "getaddrinfo", hostname: host });
    process.nextTick(() => cb(e));
    return;
  }
  return lookup.call(this, host, ...rest);
};
`;

/** Writes the preload into `dir`; returns the NODE_OPTIONS that load it. */
export function fakeDnsNodeOptions(dir: string): string {
  const file = path.join(dir, "fake-dns.js");
  fs.writeFileSync(file, FAKE_DNS);
  return `--require ${file}`;
}
