import { strict as assert } from "node:assert";
import { sourceOf, tableResourceCells, tsPrograms, withoutLayout } from "../../support/readmeCode";

// The reader of README.md's TypeScript (test/integration/readmeCode.test.ts relies on it).
const FENCE = "```";
const md = (...lines: string[]) => lines.join("\n");

describe("readmeCode: README's ```ts blocks as programs", () => {
  const text = md(
    "# t", //                                  1
    "<!-- ts: base -->", //                    2
    `${FENCE}ts`, //                           3
    "const a = 1;", //                         4
    FENCE, //                                  5
    `${FENCE}sh`, //                           6
    "echo not ts", //                          7
    FENCE, //                                  8
    "<!-- ts: more continues base -->", //     9
    `${FENCE}ts`, //                          10
    "const b = a;", //                        11
    "const c = b;", //                        12
    FENCE, //                                 13
    `${FENCE}typescript`, //                  14
    "export {};", //                          15
    FENCE, //                                 16
  );

  it("makes each block a program; a continuation is its base followed by itself", () => {
    const programs = tsPrograms(text);
    assert.deepEqual(
      programs.map((p) => [p.label, sourceOf(p).text]),
      [
        ['"base" (line 4)', "const a = 1;\n"],
        ['"more" (line 11)', "const a = 1;\nconst b = a;\nconst c = b;\n"],
        ["the block at line 15", "export {};\n"],
      ],
    );
  });

  it("maps a line of a program's file back to the Markdown line", () => {
    const more = tsPrograms(text)[1];
    assert.deepEqual([1, 2, 3].map(sourceOf(more).markdownLine), [4, 11, 12]);
  });

  it("refuses a marker it cannot read, an unknown base, a reused name and a marker before another language", () => {
    const block = [`${FENCE}ts`, "x", FENCE];
    assert.throws(() => tsPrograms(md("<!-- ts: two words -->", ...block)), /line 1: .* is not "<!-- ts: NAME -->"/);
    assert.throws(() => tsPrograms(md("<!-- ts: b continues a -->", ...block)), /line 1: continues "a", which no/);
    assert.throws(
      () => tsPrograms(md("<!-- ts: a -->", ...block, "<!-- ts: a -->", ...block)),
      /line 5: a program named "a" already exists/,
    );
    assert.throws(() => tsPrograms(md("<!-- ts: a -->", `${FENCE}sh`, "x", FENCE)), /not TypeScript/);
    assert.throws(() => tsPrograms(md(`${FENCE}ts`, "x")), /never closed/);
  });

  it("finds the resource cells of a section's table, and compares code without its layout", () => {
    const table = md(
      "## Lesson",
      "| step | code |",
      '| `ip netns add red` | `const red = new netns.Namespace("red", { connection })` (and blue) |',
      "## Next",
      '| x | `new netns.Bridge("b", {})` |',
    );
    assert.deepEqual(tableResourceCells(table, "## Lesson"), [
      { line: 3, code: 'const red = new netns.Namespace("red", { connection })' },
    ]);
    assert.equal(withoutLayout("f({ a: 1, b: [2,\n 3,] },\n);"), withoutLayout("f({a:1,b:[2,3]})"));
    assert.notEqual(withoutLayout('f({ a: "red" })'), withoutLayout("f({ a: red.name })"));
  });
});
