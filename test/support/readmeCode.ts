/**
 * The TypeScript in a Markdown file, as programs a reader could copy.
 *
 * Every ```ts block is a whole program unless an HTML comment on the line
 * right before its fence says otherwise (GitHub does not render it):
 *
 *   <!-- ts: NAME -->                 names a whole program, so others can continue it
 *   <!-- ts: NAME continues BASE -->  the program BASE (named earlier) followed by this block,
 *                                     for text that shows a program in parts with prose between
 *
 * A block with no comment is a whole program too, known by its line.
 * Pure code: text in, programs out.
 */

export interface CodePart {
  /** The Markdown line of the part's first code line (1-based). */
  line: number;
  code: string;
}

export interface TsProgram {
  /** Its name, or "the block at line N". */
  label: string;
  name?: string;
  /** The blocks it is made of, in order. */
  parts: CodePart[];
}

const FENCE_TS = /^```(ts|typescript)\s*$/;
const FENCE_ANY = /^```/;
const MARKER = /^<!--\s*ts:\s*(.*?)\s*-->\s*$/;
const NAMED = /^([\w-]+)(?:\s+continues\s+([\w-]+))?$/;

/** Every ```ts block of the text as a program (a continuation includes the program it continues). */
export function tsPrograms(markdown: string): TsProgram[] {
  const lines = markdown.split("\n");
  const programs: TsProgram[] = [];
  const named = new Map<string, TsProgram>();
  for (let i = 0; i < lines.length; i++) {
    if (!FENCE_ANY.test(lines[i])) continue;
    const isTs = FENCE_TS.test(lines[i]);
    const end = lines.findIndex((l, j) => j > i && /^```\s*$/.test(l));
    if (end < 0) throw new Error(`line ${i + 1}: a code block that is never closed`);
    const marker = i > 0 ? MARKER.exec(lines[i - 1]) : null;
    if (isTs) {
      const part = { line: i + 2, code: lines.slice(i + 1, end).join("\n") };
      const m = marker ? NAMED.exec(marker[1]) : null;
      if (marker && !m)
        throw new Error(
          `line ${i}: "${lines[i - 1]}" is not "<!-- ts: NAME -->" nor "<!-- ts: NAME continues BASE -->"`,
        );
      const [name, base] = m ? [m[1], m[2]] : [undefined, undefined];
      if (name && named.has(name)) throw new Error(`line ${i}: a program named "${name}" already exists`);
      const baseProgram = base ? named.get(base) : undefined;
      if (base && !baseProgram) throw new Error(`line ${i}: continues "${base}", which no block above is named`);
      const program: TsProgram = {
        label: name ? `"${name}" (line ${part.line})` : `the block at line ${part.line}`,
        name,
        parts: [...(baseProgram?.parts ?? []), part],
      };
      programs.push(program);
      if (name) named.set(name, program);
    } else if (marker) {
      throw new Error(`line ${i}: "${lines[i - 1]}" stands before a block that is not TypeScript`);
    }
    i = end;
  }
  return programs;
}

/** A program's source text, and where each of its lines comes from in the Markdown file. */
export function sourceOf(program: TsProgram): { text: string; markdownLine: (fileLine: number) => number } {
  const origin = program.parts.flatMap((part) => part.code.split("\n").map((_, k) => part.line + k));
  return {
    text: `${program.parts.map((p) => p.code).join("\n")}\n`,
    markdownLine: (fileLine) => origin[fileLine - 1] ?? origin[origin.length - 1],
  };
}

/** The inline code spans of a section's table rows that construct a resource (`new netns.X(...)`). */
export function tableResourceCells(markdown: string, heading: string): CodePart[] {
  const lines = markdown.split("\n");
  const start = lines.findIndex((l) => l.trim() === heading);
  if (start < 0) throw new Error(`no heading "${heading}"`);
  const cells: CodePart[] = [];
  for (let i = start + 1; i < lines.length && !/^#{1,2} /.test(lines[i]); i++) {
    if (!lines[i].startsWith("|")) continue;
    for (const m of lines[i].matchAll(/`([^`]*\bnew netns\.[^`]*)`/g)) cells.push({ line: i + 1, code: m[1] });
  }
  return cells;
}

/** Code compared as text, without the layout: whitespace, semicolons and trailing commas dropped. */
export const withoutLayout = (code: string) =>
  code
    .replace(/\s+/g, "")
    .replace(/;/g, "")
    .replace(/,(?=[}\])])/g, "");
