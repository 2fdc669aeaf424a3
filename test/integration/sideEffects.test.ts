import { strict as assert } from "node:assert";
import type { NetworkSpec } from "../../components/plan";
import type { LabHost, OperationResult, PulumiStack } from "../../provider/testing";
import { rewriteProgram, testingKit, writeProgram } from "../support/harness";
import { lessonSpec } from "../support/lessonSpec";
import { HEADER } from "./programs";
import { changes, labConfig, ok, ping } from "./support";

/**
 * Kernel side effects followed through in the same `up` (#10 item 2): a change
 * whose kernel effects reach other declared objects re-creates them, or the
 * `up` says which objects it took along and how to converge.
 */

interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
}

async function routes(lab: LabHost, namespace: string): Promise<IpRoute[]> {
  const text = (await lab.exec(["ip", "-j", "route", "show"], { namespace, allowFailure: true })).stdout.trim();
  return text ? JSON.parse(text) : [];
}

const defaultRoute = async (lab: LabHost, namespace: string) =>
  (await routes(lab, namespace)).find((r) => r.dst === "default");

async function noDrift(stack: PulumiStack, log: string[]): Promise<void> {
  const refreshed = await stack.refresh();
  ok(refreshed, log);
  assert.equal(changes(refreshed), 0, `refresh found drift: ${JSON.stringify(refreshed.steps)}`);
}

const said = (r: OperationResult, pattern: RegExp) => r.diagnostics.some((d) => pattern.test(d.message));

function network(spec: NetworkSpec): string {
  return `${HEADER}
const net = new netns.IsolatedNetwork("lesson", { connection, ...${JSON.stringify(spec)} });
export const addresses = net.addresses;
`;
}

/**
 * red on v-net-0 by a VethPair whose red end is `vethName`, with a default
 * Route over it (replaceWith the VethPair unless `replaceWith: false`);
 * `withNamespace: false` drops red's Namespace.
 */
function standalone(opts: {
  vethName: string;
  withNamespace?: boolean;
  replaceWith?: boolean;
  address?: string;
}): string {
  const ns = opts.withNamespace ?? true;
  const replaceWith = opts.replaceWith ?? true;
  return `${HEADER}
${ns ? `const red = new netns.Namespace("red", { connection, name: "red" });` : ""}
const bridge = new netns.Bridge("v-net-0", { connection, name: "v-net-0", addresses: ["192.168.15.5/24"] });
const cable = new netns.VethPair("red-br", {
  connection,
  a: { name: ${JSON.stringify(opts.vethName)}, namespace: "red", addresses: [${JSON.stringify(opts.address ?? "192.168.15.1/24")}] },
  b: { name: "veth-red-br", bridge: bridge.name },
}, { dependsOn: [${ns ? "red, " : ""}bridge] });
new netns.Route("red-default", { connection, namespace: "red", destination: "default", via: "192.168.15.5" },
  { dependsOn: [cable]${replaceWith ? ", replaceWith: [cable]" : ""} });
`;
}

describe("kernel side effects followed through in the same up (#10 item 2)", function () {
  this.timeout(900_000);
  let lab: LabHost;
  let pristine: string;
  const stacks: PulumiStack[] = [];
  const log: string[] = [];
  const newStack = (name: string, source: string) => {
    const dir = writeProgram(name, source);
    const stack = new (testingKit().PulumiStack)({ programDir: dir, config: labConfig(lab), log: (l) => log.push(l) });
    stacks.push(stack);
    return { dir, stack };
  };

  before(async () => {
    const kit = testingKit();
    lab = await kit.startLabHost({ name: `it-side-${process.pid}` });
    pristine = await kit.fingerprint(lab);
  });

  after(async () => {
    for (const s of stacks) await s.destroy().catch(() => undefined);
    if (lab) await lab.stop();
  });

  describe("IsolatedNetwork", () => {
    let dir: string;
    let stack: PulumiStack;
    const moved = (): NetworkSpec => ({
      ...lessonSpec(),
      namespaces: [
        { name: "red", address: "192.168.15.9" },
        { name: "blue", address: "192.168.15.2" },
      ],
    });

    it("red's address changed: after the one up red has its default route, reaches the gateway and the LAN; refresh finds no drift", async () => {
      ({ dir, stack } = newStack("side-isonet", network(lessonSpec())));
      ok(await stack.up(), log);
      assert.ok(await defaultRoute(lab, "red"), "red has a default route at first");
      rewriteProgram(dir, network(moved()));
      const up = await stack.up();
      ok(up, log);
      const route = await defaultRoute(lab, "red");
      assert.deepEqual(
        route && { gateway: route.gateway, dev: route.dev },
        { gateway: "192.168.15.5", dev: "veth-red" },
        `red's routes after the up: ${JSON.stringify(await routes(lab, "red"))}; steps ${JSON.stringify(up.steps.map((s) => [s.op, s.urn.split("::").pop()]))}`,
      );
      assert.equal((await ping(lab, "192.168.15.5", "red")).code, 0, "red -> gateway");
      assert.equal((await ping(lab, lab.lan.peerAddress, "red")).code, 0, "red -> LAN through NAT");
      assert.equal((await ping(lab, "192.168.15.9", "blue")).code, 0, "blue -> red's new address");
      await noDrift(stack, log);
    });

    it("red's veth renamed (its VethPair replaced): its default route is re-created in the same up", async () => {
      const spec = moved();
      spec.namespaces[0].vethName = "veth-red2";
      rewriteProgram(dir, network(spec));
      const up = await stack.up();
      ok(up, log);
      const route = await defaultRoute(lab, "red");
      assert.equal(route?.dev, "veth-red2", `red's routes: ${JSON.stringify(await routes(lab, "red"))}`);
      assert.equal((await ping(lab, lab.lan.peerAddress, "red")).code, 0, "red -> LAN through NAT");
      await noDrift(stack, log);
    });

    // Trial finding F1: "took with it veth ... declare the namespace again" also came on a deliberate
    // removal and on destroy, where it misleads (the accidental case is below, and still named).
    it("blue removed from the network on purpose, then destroy: neither says a veth was taken along", async () => {
      const spec = moved();
      spec.namespaces[0].vethName = "veth-red2";
      rewriteProgram(dir, network({ ...spec, namespaces: [spec.namespaces[0]], portForwards: [] }));
      const up = await stack.up();
      ok(up, log);
      assert.ok(
        up.steps.some((st) => st.op === "delete" && st.urn.endsWith("::lesson-blue")),
        JSON.stringify(up.steps),
      );
      const taken = (r: OperationResult) => r.diagnostics.filter((d) => /took with it/.test(d.message));
      assert.deepEqual(taken(up), [], "the up does not warn about blue's own veth");
      const down = await stack.destroy();
      ok(down, log);
      assert.deepEqual(taken(down), [], "destroy does not warn about the veths it removes");
      assert.equal(await testingKit().fingerprint(lab), pristine);
    });
  });

  describe("standalone resources", () => {
    let dir: string;
    let stack: PulumiStack;
    // The same names as the IsolatedNetwork's: it goes first.
    before(async () => {
      for (const s of stacks) ok(await s.destroy(), log);
    });

    it("a VethPair replaced with a Route over it and no replaceWith: the up names the route the kernel removed; refresh + up converge", async () => {
      ({ dir, stack } = newStack("side-standalone", standalone({ vethName: "veth-red", replaceWith: false })));
      ok(await stack.up(), log);
      assert.equal((await ping(lab, "192.168.15.5", "red")).code, 0, "red -> gateway at first");
      rewriteProgram(dir, standalone({ vethName: "veth-red1", replaceWith: false }));
      const up = await stack.up();
      ok(up, log);
      assert.ok(
        said(
          up,
          /veth pair "veth-red"~"veth-red-br".*removed the routes over it.*default via 192\.168\.15\.5 in namespace "red"/s,
        ),
        `the up names the route that went with the old cable: ${JSON.stringify(up.diagnostics.filter((d) => d.severity !== "debug"))}`,
      );
      ok(await stack.refresh(), log);
      ok(await stack.up(), log);
      assert.equal((await defaultRoute(lab, "red"))?.dev, "veth-red1");
      assert.equal((await ping(lab, "192.168.15.5", "red")).code, 0, "red -> gateway");
      await noDrift(stack, log);
    });

    it("a VethPair replaced (red's end renamed) with a Route over it (replaceWith): the route is there after the up", async () => {
      // replaceWith is read from the state: it takes effect from the up after the one that adds it.
      rewriteProgram(dir, standalone({ vethName: "veth-red1" }));
      const added = await stack.up();
      ok(added, log);
      assert.equal(changes(added), 0, JSON.stringify(added.steps));
      rewriteProgram(dir, standalone({ vethName: "veth-red2" }));
      const up = await stack.up();
      ok(up, log);
      const route = await defaultRoute(lab, "red");
      assert.equal(route?.dev, "veth-red2", `red's routes: ${JSON.stringify(await routes(lab, "red"))}`);
      assert.equal((await ping(lab, "192.168.15.5", "red")).code, 0, "red -> gateway");
      await noDrift(stack, log);
    });

    it("red's address changed (a VethPair update): the route over it is put back in the same up; refresh finds no drift", async () => {
      rewriteProgram(dir, standalone({ vethName: "veth-red2", address: "192.168.15.9/24" }));
      const up = await stack.up();
      ok(up, log);
      const route = await defaultRoute(lab, "red");
      assert.deepEqual(
        route && { gateway: route.gateway, dev: route.dev },
        { gateway: "192.168.15.5", dev: "veth-red2" },
        `red's routes: ${JSON.stringify(await routes(lab, "red"))}`,
      );
      assert.equal((await ping(lab, "192.168.15.5", "red")).code, 0, "red -> gateway");
      await noDrift(stack, log);
      rewriteProgram(dir, standalone({ vethName: "veth-red2" }));
      ok(await stack.up(), log);
    });

    it("red's Namespace removed while the VethPair still names it: the up says which veth went with it; refresh + up (red back) converge", async () => {
      rewriteProgram(dir, standalone({ vethName: "veth-red2", withNamespace: false }));
      const up = await stack.up();
      ok(up, log);
      assert.ok(
        said(up, /namespace "red".*veth "veth-red2"/s),
        `the up names the veth the namespace took along: ${JSON.stringify(up.diagnostics.filter((d) => d.severity !== "debug"))}`,
      );
      // As the message says: declare the namespace again, refresh (state learns the cable and route are gone), up.
      rewriteProgram(dir, standalone({ vethName: "veth-red2" }));
      ok(await stack.refresh(), log);
      ok(await stack.up(), log);
      assert.equal((await defaultRoute(lab, "red"))?.dev, "veth-red2");
      assert.equal((await ping(lab, "192.168.15.5", "red")).code, 0, "red -> gateway");
      await noDrift(stack, log);
      const again = await stack.up();
      ok(again, log);
      assert.equal(changes(again), 0, JSON.stringify(again.steps));
    });

    it("destroy leaves the lab host as it was", async () => {
      ok(await stack.destroy(), log);
      assert.equal(await testingKit().fingerprint(lab), pristine);
    });
  });
});
