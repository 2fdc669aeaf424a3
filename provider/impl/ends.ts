import { boolean, type Checker, interfaceName, ipv4Interface, isUnknown, namespaceName, show } from "../validate";

/** Checks a list of interface addresses in CIDR form, with no duplicates. */
export function checkAddresses(checker: Checker, property: string, value: unknown): void {
  checker.field(property, value, (v) => (Array.isArray(v) ? undefined : `${show(v)} is not a list of addresses`));
  if (!Array.isArray(value)) return;
  const seen = new Set<string>();
  value.forEach((a, i) => {
    checker.field(`${property}[${i}]`, a, ipv4Interface, true);
    if (typeof a === "string" && !isUnknown(a)) {
      if (seen.has(a)) checker.fail(`${property}[${i}]`, `${show(a)} is listed twice`);
      seen.add(a);
    }
  });
}

export interface InterfaceEnd {
  name: string;
  namespace?: string;
  bridge?: string;
  addresses: string[];
  up: boolean;
}

/** Checks one end of a veth pair and fills in its defaults. */
export function checkEnd(checker: Checker, property: string, value: unknown): unknown {
  checker.field(
    property,
    value,
    (v) => (typeof v === "object" && !Array.isArray(v) ? undefined : `${show(v)} is not an object`),
    true,
  );
  if (typeof value !== "object" || value === null || isUnknown(value)) return value;
  const end = value as Record<string, unknown>;
  for (const key of Object.keys(end))
    if (!["name", "namespace", "bridge", "addresses", "up"].includes(key))
      checker.fail(`${property}.${key}`, "unknown field");
  checker.field(`${property}.name`, end.name, interfaceName, true);
  checker.field(`${property}.namespace`, end.namespace, namespaceName);
  checker.field(`${property}.bridge`, end.bridge, interfaceName);
  checkAddresses(checker, `${property}.addresses`, end.addresses);
  checker.field(`${property}.up`, end.up, boolean);
  return { ...end, addresses: end.addresses ?? [], up: end.up ?? true };
}
