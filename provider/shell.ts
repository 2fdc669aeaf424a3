/**
 * Quotes one word for a POSIX shell. Every value is validated before it gets
 * here; quoting anyway means a validation gap can never become an injection.
 */
export function quote(word: string | number): string {
  const text = String(word);
  if (/^[A-Za-z0-9_./:=@%+-]+$/.test(text) && !text.startsWith("-")) return text;
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** Joins argv into a shell command line, quoting every word. */
export function command(...argv: Array<string | number>): string {
  return argv.map(quote).join(" ");
}
