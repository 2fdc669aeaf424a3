import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { trace } from "../../../../provider/transport/trace";

// The trace is for tests and benchmarks: when its file cannot be written, the
// event is dropped (with one warning), never the connection or command it is about.
describe("transport/trace: a trace file that cannot be written never breaks what it traces", () => {
  const saved = { file: process.env.PULUMI_NETNS_TRACE, debug: process.env.PULUMI_NETNS_DEBUG };
  const warnings: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  beforeEach(() => {
    warnings.length = 0;
    delete process.env.PULUMI_NETNS_DEBUG;
    process.stderr.write = ((chunk: string) => {
      warnings.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
  });
  afterEach(() => {
    process.stderr.write = write;
    for (const [k, v] of [
      ["PULUMI_NETNS_TRACE", saved.file],
      ["PULUMI_NETNS_DEBUG", saved.debug],
    ] as const)
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  });

  // Paths of their own: trace() warns once per file per process, and other suites share this process.
  const unique = `${process.pid}-${Date.now()}`;
  for (const [what, file] of [
    ["a directory that does not exist", () => path.join(os.tmpdir(), `no-such-dir-unit-${unique}`, "trace.jsonl")],
    ["a directory in place of the file", () => fs.mkdtempSync(path.join(os.tmpdir(), "trace-dir-"))],
  ] as const)
    it(`${what}: trace() returns, and warns once for that file`, () => {
      const target = file();
      process.env.PULUMI_NETNS_TRACE = target;
      assert.doesNotThrow(() => trace({ event: "handshake", host: "h" }));
      assert.doesNotThrow(() => trace({ event: "command", host: "h" }));
      const about = warnings.filter((w) => w.includes(target));
      assert.equal(about.length, 1, JSON.stringify(warnings));
      assert.match(about[0], /cannot write the trace/);
      if (fs.existsSync(target)) fs.rmSync(target, { recursive: true, force: true });
    });

  it("a writable file still gets one JSON line per event", () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "trace-ok-")), "trace.jsonl");
    process.env.PULUMI_NETNS_TRACE = file;
    trace({ event: "handshake", host: "h" });
    trace({ event: "command", host: "h" });
    const lines = fs.readFileSync(file, "utf8").trim().split("\n");
    assert.deepEqual(
      lines.map((l) => JSON.parse(l).event),
      ["handshake", "command"],
    );
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  });
});
