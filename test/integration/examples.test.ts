import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import type { LabHost } from "../../provider/testing";
import { programDir, testingKit } from "../support/harness";
import { CLIENT, SERVER, waitListening } from "../support/tcp";
import { changes, labConfig, ok, ping, providerCounts } from "./support";

/**
 * Every directory under examples/ is an ordinary Pulumi program; here each one
 * runs through the real Pulumi CLI (type-checked, as `pulumi up` does by
 * default) against lab hosts, with the package from the packed tarball: up, a
 * check on the kernel specific to that example, a second up that changes
 * nothing, destroy, and the lab back exactly as it was.
 */
const EXAMPLES = path.resolve(__dirname, "..", "..", "examples");

/** The example's config for a lab host; the host key is pinned through config, as a user would. */
const exampleConfig = (lab: LabHost, suffix = "") => ({
  ...labConfig(lab, suffix),
  [`hostKey${suffix}`]: lab.connection.hostKey,
});

/**
 * Copies an example (Pulumi.yaml, package.json, index.ts, as a user has them)
 * into a program directory of the scratch project, whose node_modules holds the
 * installed tarball (what `npm install` in the example would give a user).
 */
function copyExample(name: string, as = name): string {
  const source = path.join(EXAMPLES, name);
  const dir = programDir(as);
  for (const f of ["Pulumi.yaml", "package.json", "index.ts"]) fs.copyFileSync(path.join(source, f), path.join(dir, f));
  return dir;
}

interface Case {
  /** The example's directory, when the case is a variant of one (its key is then not a directory). */
  example?: string;
  labs: number;
  /** The labs share a segment on this subnet (linkLabHosts): lab i is its (i+1)-th address, eth1. */
  linked?: string;
  /** And on this IPv6 subnet too (linkLabHosts subnet6). */
  linked6?: string;
  config?: (labs: LabHost[]) => Record<string, string>;
  check: (labs: LabHost[], outputs: Record<string, unknown>) => Promise<void>;
}

/** Each namespace's IPv4 addresses outside lo, as `ip -j` shows them on the lab host (space-separated). */
async function addressesOn(lab: LabHost, namespaces: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const ns of namespaces) {
    const links = JSON.parse((await lab.exec(["ip", "-j", "-4", "addr", "show"], { namespace: ns })).stdout) as Array<{
      ifname: string;
      addr_info: Array<{ local: string }>;
    }>;
    out[ns] = links
      .filter((l) => l.ifname !== "lo")
      .flatMap((l) => l.addr_info.map((a) => a.local))
      .join(" ");
  }
  return out;
}

const CASES: Record<string, Case> = {
  "lesson-direct": {
    labs: 1,
    async check([lab], outputs) {
      assert.equal((await ping(lab, "192.168.15.2", "red")).code, 0, "red -> blue over the cable");
      const neigh = JSON.parse((await lab.exec(["ip", "-j", "neigh", "show"], { namespace: "red" })).stdout);
      assert.equal(neigh.find((n: { dst: string }) => n.dst === "192.168.15.2")?.lladdr, outputs.blueMac);
      const links = JSON.parse((await lab.exec(["ip", "-j", "link", "show"], { namespace: "red" })).stdout);
      assert.deepEqual(links.map((l: { ifname: string }) => l.ifname).sort(), ["lo", "veth-red"]);
    },
  },
  "lesson-bridge": {
    labs: 1,
    config: ([lab]) => ({ lanSubnet: `${lab.lan.peerAddress.replace(/\.\d+$/, ".0")}/24` }),
    async check([lab]) {
      assert.equal((await ping(lab, "192.168.15.2", "red")).code, 0, "red -> blue over v-net-0");
      const master = JSON.parse((await lab.exec(["ip", "-j", "link", "show", "master", "v-net-0"])).stdout);
      assert.deepEqual(master.map((l: { ifname: string }) => l.ifname).sort(), ["veth-blue-br", "veth-red-br"]);
      const nat = (await lab.exec(["iptables-save", "-t", "nat"])).stdout;
      assert.match(nat, /^-A POSTROUTING -s 192\.168\.15\.0\/24 ! -o v-net-0 .*-j MASQUERADE$/m);
      const back = await lab.execLan(["ip", "-j", "route", "get", "192.168.15.2"], { allowFailure: true });
      assert.notEqual(back.code, 0, "the LAN peer must have no route back");
      assert.equal((await ping(lab, lab.lan.peerAddress, "blue")).code, 0, "blue -> LAN peer through NAT");
      assert.equal((await ping(lab, lab.lan.internetAddress, "red")).code, 0, "red -> internet by default route");
      const server = lab.spawn(SERVER("hello from blue", 80), { namespace: "blue" });
      try {
        await waitListening(server);
        const reply = await lab.execLan(CLIENT(lab.lan.hostAddress, 8080), { allowFailure: true });
        assert.equal(reply.stdout, "hello from blue\n", reply.stderr);
      } finally {
        await server.kill();
      }
    },
  },
  "isolated-network": {
    labs: 1,
    async check([lab], outputs) {
      const addresses = outputs.addresses as Record<string, string>;
      assert.deepEqual(Object.keys(addresses).sort(), ["blue", "green", "red"]);
      assert.equal(addresses.red, "192.168.15.1");
      assert.equal(outputs.bridgeName, "v-net-0");
      assert.equal(outputs.gateway, "192.168.15.5");
      assert.equal((await ping(lab, "192.168.15.1", "green")).code, 0, "green -> red");
      const addr = JSON.parse(
        (await lab.exec(["ip", "-j", "addr", "show", "dev", "veth-green"], { namespace: "green" })).stdout,
      );
      assert.equal(addr[0].addr_info.find((a: { family: string }) => a.family === "inet")?.local, addresses.green);
      assert.match(
        String(outputs.diagram),
        new RegExp(`netns green<br/>veth-green ${addresses.green.replace(/\./g, "\\.")}/24`),
      );
    },
  },
  "dual-stack": {
    labs: 1,
    async check([lab], outputs) {
      const six = outputs.addresses6 as Record<string, string>;
      assert.deepEqual(six, { red: "fd00:15::a", blue: "fd00:15::b" });
      assert.equal(outputs.gateway6, "fd00:15::1");
      // On the kernel: blue's veth holds both addresses, none tentative, and a default route per family.
      const addr = JSON.parse(
        (await lab.exec(["ip", "-j", "addr", "show", "dev", "veth-blue"], { namespace: "blue" })).stdout,
      )[0].addr_info as Array<{ family: string; local: string; scope: string; tentative?: boolean }>;
      assert.deepEqual(
        addr.filter((a) => a.scope === "global").map((a) => `${a.local}${a.tentative ? " tentative" : ""}`),
        ["192.168.15.2", "fd00:15::b"],
      );
      const route6 = JSON.parse(
        (await lab.exec(["ip", "-j", "-6", "route", "show", "default"], { namespace: "red" })).stdout,
      );
      assert.deepEqual(
        route6.map((r: { gateway?: string }) => r.gateway),
        ["fd00:15::1"],
      );
      assert.equal(
        (await lab.exec(["ping", "-6", "-c1", "-W2", "fd00:15::b"], { namespace: "red", allowFailure: true })).code,
        0,
        "red -> blue over IPv6",
      );
      // Out through IPv6 NAT: the LAN peer sees the lab's own address, not the namespace's.
      const out = await lab.exec(["ping", "-6", "-c1", "-W2", lab.lan.internetAddress6], {
        namespace: "blue",
        allowFailure: true,
      });
      assert.equal(out.code, 0, `blue -> ${lab.lan.internetAddress6}: ${out.stdout}${out.stderr}`);
      const nat6 = (await lab.exec(["ip6tables-save", "-t", "nat"])).stdout;
      assert.match(nat6, /^-A POSTROUTING -s fd00:15::\/64 ! -o v-net-0 .*-j MASQUERADE$/m);
      // The port forward, over IPv6 and IPv4, from the LAN peer to the lab's address.
      const server = lab.spawn(SERVER("hello from blue", 80, "::"), { namespace: "blue" });
      try {
        await waitListening(server);
        for (const host of [lab.lan.hostAddress6, lab.lan.hostAddress]) {
          const reply = await lab.execLan(CLIENT(host, 8080), { allowFailure: true });
          assert.equal(reply.stdout, "hello from blue\n", `${host}: ${reply.stderr}`);
        }
      } finally {
        await server.kill();
      }
      // The README's diagram is the one this run outputs.
      const readme = fs.readFileSync(path.join(EXAMPLES, "dual-stack", "README.md"), "utf8");
      assert.equal(
        /```mermaid\n([\s\S]*?)```/.exec(readme)?.[1],
        String(outputs.diagram).replace(/host [^"]*/, "host lab"),
      );
    },
  },
  "multi-host": {
    labs: 2,
    async check(labs, outputs) {
      const planned = outputs.addressesA as Record<string, string>;
      assert.deepEqual(outputs.addressesB, planned, "the same plan for both hosts");
      // What each host holds, read back from it: every namespace has exactly its planned address.
      for (const lab of labs)
        assert.deepEqual(await addressesOn(lab, Object.keys(planned)), planned, `${lab.name}: addresses on the host`);
      const { web, db } = planned;
      for (const lab of labs) {
        assert.equal((await ping(lab, db, "web")).code, 0, `${lab.name}: web -> db`);
        assert.equal((await ping(lab, lab.lan.peerAddress, "db")).code, 0, `${lab.name}: db -> LAN`);
        const links = JSON.parse((await lab.exec(["ip", "-j", "link", "show", "master", "v-net-0"])).stdout);
        assert.equal(links.length, 2, `${lab.name}: two ports on v-net-0`);
      }
      assert.ok(web);
    },
  },
  "pod-network": {
    labs: 2,
    linked: "192.0.2.0/24",
    config: () => ({ nodeAddressA: "192.0.2.1", nodeAddressB: "192.0.2.2" }),
    async check([a, b], outputs) {
      const cidrs = outputs.podCidrs as Record<string, string>;
      const addresses = outputs.addresses as Record<string, string>;
      assert.deepEqual(Object.keys(cidrs).sort(), ["node-a", "node-b"]);
      assert.deepEqual(Object.keys(addresses).sort(), ["api", "db", "web"]);
      // Each node routes the other's pod CIDR via the other's address on the segment, read back from the kernel.
      for (const [lab, other, via] of [
        [a, "node-b", "192.0.2.2"],
        [b, "node-a", "192.0.2.1"],
      ] as const) {
        const routes = JSON.parse((await lab.exec(["ip", "-j", "route", "show", cidrs[other]])).stdout);
        assert.deepEqual(
          routes.map((r: { dst: string; gateway?: string }) => [r.dst, r.gateway]),
          [[cidrs[other], via]],
          `${lab.name}: its route to ${other}'s pods`,
        );
      }
      assert.equal((await ping(a, addresses.db, "web")).code, 0, "web (node-a) -> db (node-b)");
      assert.equal((await ping(b, addresses.api, "db")).code, 0, "db (node-b) -> api (node-a)");
      assert.equal((await ping(a, addresses.api, "web")).code, 0, "web -> api on node-a's bridge");
      assert.equal((await ping(b, b.lan.internetAddress, "db")).code, 0, "db -> the lab's internet (NAT)");
      assert.match(String(outputs.diagram), new RegExp(`pod db<br/>${addresses.db.replace(/\./g, "\\.")}/24`));
      // The README's diagram is the one this run outputs (its nodes at 192.0.2.1 and .2, as here).
      const readme = fs.readFileSync(path.join(EXAMPLES, "pod-network", "README.md"), "utf8");
      assert.equal(
        /```mermaid\n([\s\S]*?)```/.exec(readme)?.[1],
        outputs.diagram,
        "examples/pod-network/README.md's diagram",
      );
    },
  },
  // The same example with its dual-stack config (examples/pod-network/README.md, "Dual stack").
  "pod-network-dual-stack": {
    example: "pod-network",
    labs: 2,
    linked: "192.0.2.0/24",
    linked6: "2001:db8:2::/64",
    config: () => ({
      nodeAddressA: "192.0.2.1",
      nodeAddressB: "192.0.2.2",
      clusterCidr6: "fd00:10:244::/56",
      nodeAddress6A: "2001:db8:2::1",
      nodeAddress6B: "2001:db8:2::2",
    }),
    async check([a, b], outputs) {
      const cidrs6 = outputs.podCidrs6 as Record<string, string>;
      const addresses6 = outputs.addresses6 as Record<string, string>;
      assert.deepEqual(cidrs6, { "node-a": "fd00:10:244:93::/64", "node-b": "fd00:10:244:26::/64" });
      assert.deepEqual(Object.keys(addresses6).sort(), ["api", "db", "web"]);
      assert.equal((await ping(a, addresses6.db, "web")).code, 0, "web (node-a) -> db (node-b) over IPv6");
      assert.equal((await ping(b, addresses6.api, "db")).code, 0, "db (node-b) -> api (node-a) over IPv6");
      assert.equal((await ping(b, b.lan.internetAddress6, "db")).code, 0, "db -> the lab's IPv6 internet (NAT)");
      const addresses = outputs.addresses as Record<string, string>;
      assert.equal((await ping(a, addresses.db, "web")).code, 0, "web -> db over IPv4 still");
    },
  },
};

describe("examples/ run as written, against lab hosts", function () {
  this.timeout(600_000);
  const labs: LabHost[] = [];
  const pristine: string[] = [];

  before(async () => {
    const kit = testingKit();
    labs.push(
      ...(await Promise.all(["a", "b"].map((s) => kit.startLabHost({ name: `it-examples-${s}-${process.pid}` })))),
    );
    for (const lab of labs) pristine.push(await kit.fingerprint(lab));
  });

  after(async () => {
    await Promise.all(labs.map((l) => l.stop()));
  });

  it("every example directory has Pulumi.yaml, package.json (with @pulumi/pulumi), index.ts, README.md and a case here; the top-level Pulumi.yaml runs lesson-bridge", () => {
    const dirs = fs
      .readdirSync(EXAMPLES, { withFileTypes: true })
      // examples/demo is the driver of `npm run demo`, not a Pulumi program.
      .filter((d) => d.isDirectory() && d.name !== "demo")
      .map((d) => d.name)
      .sort();
    assert.deepEqual(dirs, [...new Set(Object.entries(CASES).map(([key, c]) => c.example ?? key))].sort());
    for (const d of dirs) {
      for (const f of ["Pulumi.yaml", "package.json", "index.ts", "README.md"])
        assert.ok(fs.existsSync(path.join(EXAMPLES, d, f)), `examples/${d}/${f} is missing`);
      // `npm install` in the example must give it its own node_modules/@pulumi/pulumi: the CLI starts
      // the dynamic-provider host as `node ./node_modules/@pulumi/pulumi/cmd/dynamic-provider` there
      // (pulumi-netns, a link to the repository, brings none of its dependencies along).
      const deps = JSON.parse(fs.readFileSync(path.join(EXAMPLES, d, "package.json"), "utf8")).dependencies ?? {};
      assert.deepEqual(Object.keys(deps).sort(), ["@pulumi/pulumi", "pulumi-netns"], `examples/${d}/package.json`);
      const yaml = fs.readFileSync(path.join(EXAMPLES, d, "Pulumi.yaml"), "utf8");
      assert.match(yaml, new RegExp(`^name: ${d}$`, "m"));
      assert.match(yaml, /^runtime: nodejs$/m);
      assert.match(fs.readFileSync(path.join(EXAMPLES, d, "index.ts"), "utf8"), /from "pulumi-netns"/);
    }
    const top = fs.readFileSync(path.join(EXAMPLES, "..", "Pulumi.yaml"), "utf8");
    assert.match(top, /^main: examples\/lesson-bridge\/$/m);
    assert.match(top, /^runtime: nodejs$/m);
  });

  for (const [name, c] of Object.entries(CASES)) {
    it(`${name}: up, on the kernel as described, a second up changes nothing, destroy leaves the lab${c.labs > 1 ? "s" : ""} as before`, async () => {
      const kit = testingKit();
      const used = labs.slice(0, c.labs);
      const config: Record<string, string> =
        c.labs === 1 ? exampleConfig(used[0]) : Object.assign({}, ...used.map((lab, i) => exampleConfig(lab, "AB"[i])));
      Object.assign(config, c.config?.(used) ?? {});
      const log: string[] = [];
      const stack = new kit.PulumiStack({
        programDir: copyExample(c.example ?? name, name),
        config,
        log: (l) => log.push(l),
        typeCheck: true,
      });
      const segment = c.linked
        ? await kit.linkLabHosts(used, { subnet: c.linked, ...(c.linked6 ? { subnet6: c.linked6 } : {}) })
        : undefined;
      try {
        // What destroy must leave: the labs as they are with their link (the test's, not the example's).
        const before = segment ? await Promise.all(used.map((lab) => kit.fingerprint(lab))) : pristine;
        let created = -1;
        try {
          const up = await stack.up();
          ok(up, log);
          created = providerCounts(up).create;
          assert.ok(created > 0, JSON.stringify(up.steps));
          await c.check(used, up.outputs);
          const again = await stack.up();
          ok(again, log);
          assert.equal(changes(again), 0, JSON.stringify(again.steps));
        } finally {
          const down = await stack.destroy();
          ok(down, log);
          if (created >= 0)
            assert.equal(
              providerCounts(down).delete,
              created,
              `destroy deletes what up created: ${JSON.stringify(down.steps)}`,
            );
        }
        for (const [i, lab] of used.entries())
          assert.equal(await kit.fingerprint(lab), before[i], `${lab.name} after ${name}`);
      } finally {
        await segment?.remove();
      }
      // Unlinked, the labs are as the next example must get them.
      if (segment)
        for (const [i, lab] of used.entries())
          assert.equal(await kit.fingerprint(lab), pristine[i], `${lab.name} after ${name} and unlinking`);
    });
  }
});
