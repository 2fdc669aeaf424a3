/**
 * A one-line UDP echo server and a client printing its reply, as argv for a
 * lab's spawn and exec (node is on every lab host, since a lab host is this
 * machine). The UDP counterpart of tcp.ts; a SERVER says "listening" once bound
 * (see tcp.ts waitListening).
 */

/** A UDP server in a lab namespace that answers every datagram with `text` followed by what it got. */
export const UDP_ECHO = (text: string, port: number) => [
  process.execPath,
  "-e",
  `const s = require("dgram").createSocket("udp4"); s.on("message", (m, r) => s.send(${JSON.stringify(text)} + m, r.port, r.address)); s.bind(${port}, "0.0.0.0", () => console.log("listening"))`,
];

/** Sends one datagram and prints the first reply (gives up after 3 s, exit 2). */
export const UDP_CLIENT = (host: string, port: number, payload: string) => [
  process.execPath,
  "-e",
  `const s = require("dgram").createSocket("udp4"); s.on("message", (m) => { process.stdout.write(String(m)); process.exit(0); }); s.send(${JSON.stringify(payload)}, ${port}, ${JSON.stringify(host)}); setTimeout(() => { console.error("timeout"); process.exit(2); }, 3000);`,
];
