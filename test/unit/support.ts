import * as fs from "node:fs";
import * as path from "node:path";

const FIXTURES = path.join(__dirname, "fixtures");

/** A captured fixture (see fixtures/README.md), byte for byte as the tool printed it. */
export function fixture(relativePath: string): string {
  return fs.readFileSync(path.join(FIXTURES, relativePath), "utf8");
}

/** The fixture files of one tool's directory whose names end with `extension`, as paths relative to fixtures/. */
export function fixturesOf(tool: string, extension: string): string[] {
  return fs
    .readdirSync(path.join(FIXTURES, tool))
    .filter((name) => name.endsWith(extension))
    .sort()
    .map((name) => `${tool}/${name}`);
}
