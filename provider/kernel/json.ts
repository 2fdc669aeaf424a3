/**
 * Parses `ip -j` output. Some iproute2 versions print nothing instead of "[]"
 * for an empty list.
 */
export function parseIpJson<T>(text: string, what: string): T[] {
  const trimmed = text.trim();
  if (trimmed === "") return [];
  try {
    const parsed = JSON.parse(trimmed);
    return Array.isArray(parsed) ? parsed : [parsed];
  } catch {
    throw new Error(`cannot parse the JSON of ${what}: ${trimmed.slice(0, 200)}`);
  }
}
