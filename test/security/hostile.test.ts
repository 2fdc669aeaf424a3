import { strict as assert } from "node:assert";
import { generateKeyPairSync } from "node:crypto";
import {
  CHECKS,
  connectionOf,
  type HostileCase,
  hostileCases,
  type ResourceKind,
  secretText,
  shownValue,
  VALID_ARGS,
  VALID_CONNECTION,
} from "./cases";

/** Checks one row; returns what is wrong with the outcome, or undefined. */
function judge(c: HostileCase, failures: Array<{ property: string; reason: string }>): string | undefined {
  const hit = failures.find((f) => f.property === c.property);
  if (!hit) return `no failure for ${c.property}; got ${JSON.stringify(failures)}`;
  if (c.secret) {
    const hidden = c.hidden ?? secretText(c.value);
    const leak = failures.find((f) => f.reason.includes(hidden) || f.property.includes(hidden));
    if (leak) return `secret ${JSON.stringify(hidden)} shown: ${leak.reason}`;
  }
  if (c.expect !== undefined) {
    if (!hit.reason.includes(c.expect)) return `reason lacks ${JSON.stringify(c.expect)}: ${hit.reason}`;
  } else if (!c.secret && !hit.reason.includes(shownValue(c.value))) {
    return `reason does not show the value ${shownValue(c.value)}: ${hit.reason}`;
  }
  if (!hit.reason.startsWith(`${c.property}:`)) return `reason does not name the field: ${hit.reason}`;
  return undefined;
}

/** The first 12 characters of the key's body found in `text` (a base64 body has no escapes), if any. */
function keyPiece(text: string, body: string[]): string | undefined {
  const whole = body.join("");
  for (let i = 0; i + 12 <= whole.length; i++) if (text.includes(whole.slice(i, i + 12))) return whole.slice(i, i + 12);
  return undefined;
}

const label = (c: HostileCase) =>
  `${c.resource} ${c.property} = ${c.value === undefined ? "(missing)" : JSON.stringify(c.value).slice(0, 50)}`;

describe("security: hostile and impossible input fails at check (unit layer)", () => {
  const cases = hostileCases();

  it(`has at least 150 rows covering every resource (${cases.length} rows)`, () => {
    assert.ok(cases.length >= 150, String(cases.length));
    for (const kind of Object.keys(CHECKS))
      assert.ok(
        cases.some((c) => c.resource === kind),
        kind,
      );
    const distinct = new Set(cases.map((c) => JSON.stringify([typeof c.value, c.value])));
    assert.ok(distinct.size >= 150, `only ${distinct.size} distinct values`);
  });

  it("accepts the valid baseline of every resource (so each row fails for its own field)", async () => {
    for (const [kind, check] of Object.entries(CHECKS)) {
      const result = await check({}, { connection: VALID_CONNECTION, ...VALID_ARGS[kind as ResourceKind] });
      assert.equal(result.failures, undefined, `${kind}: ${JSON.stringify(result.failures)}`);
    }
  });

  it("fails every row at check, naming the field and showing the value (never a secret)", async () => {
    const wrong: string[] = [];
    for (const c of cases) {
      const news = { ...c.args, connection: connectionOf(c) };
      if (news.connection === undefined) delete news.connection;
      const result = await CHECKS[c.resource]({}, news);
      const why = judge(c, result.failures ?? []);
      if (why) wrong.push(`${label(c)}: ${why}`);
    }
    assert.deepEqual(wrong, [], `${wrong.length} of ${cases.length} rows wrong:\n${wrong.join("\n")}`);
  });

  it("keeps the private key out of every failure, whatever else is wrong", async () => {
    // A real key (its body is what must never show), valid and in broken forms, on the host and on a jump host.
    const key = generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString();
    const body = key.split("\n").filter((l) => l && !l.startsWith("-----"));
    const keys = {
      valid: key,
      "body only": body.join("\n"),
      "header misspelt": key.replace("BEGIN PRIVATE KEY", "BEGIN PRIVATE KYE"),
      "in a list": [key],
    };
    const leaks: string[] = [];
    let failures = 0;
    for (const [form, privateKey] of Object.entries(keys))
      for (const c of cases)
        for (const base of [
          { ...VALID_CONNECTION, privateKey },
          { ...VALID_CONNECTION, proxy: { ...VALID_CONNECTION, privateKey } },
        ]) {
          const connection = connectionOf(c, base);
          const result = await CHECKS[c.resource](
            {},
            { ...c.args, ...(connection === undefined ? {} : { connection }) },
          );
          for (const f of result.failures ?? []) {
            failures++;
            const piece = keyPiece(`${f.property} ${f.reason}`, body);
            if (piece) leaks.push(`${form} key, ${label(c)}: ${f.property}: ${f.reason} (holds ${piece})`);
          }
        }
    assert.ok(failures >= cases.length * 8, `only ${failures} failures looked at`);
    assert.deepEqual(leaks, [], `${leaks.length} failures show the key:\n${leaks.slice(0, 5).join("\n")}`);
  });

  it("accepts awkward but valid values (no over-blocking)", async () => {
    const ok: Array<[ResourceKind, Record<string, unknown>]> = [
      ["namespace", { name: "a" }],
      ["namespace", { name: "x".repeat(64) }],
      ["namespace", { name: "A.b_c-9" }],
      ["bridge", { name: "a".repeat(15), addresses: ["255.255.255.255/32", "1.2.3.4/1", "10.0.0.0/8"] }],
      ["route", { destination: "0.0.0.0/0", via: "192.168.15.5" }],
      ["route", { destination: "default", device: "eth0" }],
      ["route", { destination: "0.0.0.0/1", device: "eth0", metric: 4294967295 }],
      // IPv6 (issue #13 item 5): interface addresses, networks, the IPv6 default route, a link-local gateway with its device.
      [
        "bridge",
        { name: "v-net-0", addresses: ["fd00:15::5/64", "192.168.15.5/24", "2001:db8::1/128", "fd00:0:0:1::1/1"] },
      ],
      ["vethPair", { a: { name: "veth-red", addresses: ["fd00:15::1/64"] }, b: { name: "veth-red-br" } }],
      ["vxlan", { name: "vx0", vni: 5, remotes: ["10.0.0.2"], addresses: ["fd00:44::1/64"] }],
      ["route", { destination: "::/0", via: "fd00:15::5" }],
      ["route", { destination: "default6", device: "eth0" }],
      ["route", { destination: "fd00:16::/64", via: "fd00:15::5", metric: 7 }],
      ["route", { destination: "fd00:16::5/128", device: "eth0" }],
      ["route", { destination: "default6", via: "fe80::1", device: "eth0" }],
      ["portForward", { hostPort: 1, toAddress: "10.0.0.1", toPort: 65535, protocol: "udp" }],
      ["masqueradeRule", { source: "10.0.0.0/8", excludeOutInterface: "v-net-0" }],
    ];
    const conns: Array<Record<string, unknown>> = [
      VALID_CONNECTION,
      { ...VALID_CONNECTION, host: "::1" },
      { ...VALID_CONNECTION, host: "fe80::1%eth0" },
      { ...VALID_CONNECTION, host: "lab-1.example.com" },
      { ...VALID_CONNECTION, host: "1.2.3.example" },
      { ...VALID_CONNECTION, hostKey: "SHA256:0OB9hZpFyn3HYoo66AYx037q2Dtv0oX3/KLKy1nF1pI" },
    ];
    for (const [kind, args] of ok)
      for (const connection of conns) {
        const result = await CHECKS[kind]({}, { connection, ...args });
        assert.equal(result.failures, undefined, `${kind} ${JSON.stringify(args)}: ${JSON.stringify(result.failures)}`);
      }
  });
});
