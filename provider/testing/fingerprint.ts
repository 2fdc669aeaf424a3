import type { LabHost } from "./labHost";

/**
 * Everything a lab's network consists of, as comparable text: the namespace
 * list, links, addresses and routes of the host and every named namespace,
 * the iptables rules (without counters), the nftables ruleset, and the
 * sysctls this package may change. Taken before `up` and after `destroy`,
 * two fingerprints must be equal.
 */
export async function fingerprint(lab: LabHost): Promise<string> {
  const parts: string[] = [];
  const ok = async (cmd: string[], namespace?: string) =>
    (await lab.exec(cmd, { namespace, allowFailure: true })).stdout;
  const netnsText = (await ok(["ip", "-j", "netns", "list"])).trim();
  const names: string[] = netnsText
    ? JSON.parse(netnsText)
        .map((n: { name: string }) => n.name)
        .sort()
    : [];
  parts.push(`netns: ${JSON.stringify(names)}`);
  for (const ns of [undefined, ...names]) {
    const label = ns ?? "(host)";
    await settled(lab, ns);
    parts.push(`${label} link: ${await ok(["ip", "-j", "link", "show"], ns)}`);
    parts.push(`${label} addr: ${await ok(["ip", "-j", "addr", "show"], ns)}`);
    parts.push(`${label} route: ${await ok(["ip", "-j", "route", "show", "table", "all"], ns)}`);
    // Plain `ip route show table all` lists IPv4 routes only.
    parts.push(`${label} route6: ${await ok(["ip", "-6", "-j", "route", "show", "table", "all"], ns)}`);
    const saved = await ok(["iptables-save"], ns);
    parts.push(
      `${label} iptables: ${saved
        .split("\n")
        .filter((l) => !l.startsWith("#"))
        .map((l) => l.replace(/\[\d+:\d+\]/g, ""))
        .join("\n")}`,
    );
    parts.push(`${label} nft: ${await ok(["nft", "list", "ruleset"], ns)}`);
    parts.push(
      `${label} sysctl: ${await ok(["sh", "-c", "cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/all/route_localnet"], ns)}`,
    );
    // IPv6 forwarding (MasqueradeRule and PortForward over IPv6); a host with IPv6 disabled has no such file.
    parts.push(
      `${label} sysctl6: ${await ok(["sh", "-c", "cat /proc/sys/net/ipv6/conf/all/forwarding 2>/dev/null || echo none"], ns)}`,
    );
    // Each interface's own forwarding (and default's): writing the global switch rewrites them all.
    parts.push(
      `${label} forwarding: ${await ok(["sh", "-c", "grep -H . /proc/sys/net/ipv4/conf/*/forwarding /proc/sys/net/ipv6/conf/*/forwarding 2>/dev/null"], ns)}`,
    );
  }
  return parts.join("\n");
}

/** Waits (up to 5 s) until no IPv6 address is still tentative (in duplicate address detection). */
async function settled(lab: LabHost, namespace: string | undefined): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const out = (await lab.exec(["ip", "-j", "addr", "show"], { namespace, allowFailure: true })).stdout;
    if (!out.includes('"tentative"')) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}
