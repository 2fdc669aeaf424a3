import { strict as assert } from "node:assert";
import * as fc from "fast-check";
import { JSDOM } from "jsdom";
import { diagramOf } from "../../../components/diagram";
import { planNetwork } from "../../../components/plan";
import { podDiagramOf } from "../../../components/podDiagram";
import { planPodNetwork } from "../../../components/podPlan";
import { lessonSpec } from "../../support/lessonSpec";

const LESSON = lessonSpec();

/** Mermaid is ESM-only: a real dynamic import (ts-node would turn `import()` into `require`). */
const importEsm = new Function("s", "return import(s)") as (specifier: string) => Promise<any>;

interface Vertex {
  id: string;
  text: string;
  type?: string;
}
interface Edge {
  start: string;
  end: string;
  text: string;
  type: string;
  stroke: string;
}
interface Graph {
  vertices: Map<string, Vertex>;
  edges: Edge[];
  subgraphs: Array<{ id: string; title: string; nodes: string[] }>;
}

describe("diagramOf (Mermaid text, checked with the real mermaid parser)", function () {
  this.timeout(60_000);
  let mermaid: any;
  const saved: Record<string, unknown> = {};
  const globals = ["window", "document"] as const;

  before(async () => {
    // Mermaid (and DOMPurify inside it) wants a browser: give it jsdom's window for the duration of this file.
    const dom = new JSDOM("<!doctype html><html><body></body></html>", { pretendToBeVisual: true });
    const g = globalThis as any;
    for (const k of globals) saved[k] = g[k];
    g.window = dom.window;
    g.document = dom.window.document;
    mermaid = (await importEsm("mermaid")).default;
    mermaid.initialize({ startOnLoad: false });
  });

  after(() => {
    const g = globalThis as any;
    for (const k of globals) {
      if (saved[k] === undefined) delete g[k];
      else g[k] = saved[k];
    }
  });

  /** Parses (throws on a syntax error) and returns the flowchart's nodes, edges and subgraphs as mermaid sees them. */
  async function parse(text: string): Promise<Graph> {
    const result = await mermaid.parse(text);
    assert.equal(result.diagramType, "flowchart-v2");
    const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
    return {
      vertices: diagram.db.getVertices(),
      edges: diagram.db.getEdges(),
      subgraphs: diagram.db.getSubGraphs(),
    };
  }

  const vertexWith = (g: Graph, ...parts: string[]) =>
    [...g.vertices.values()].find((v) => parts.every((p) => v.text.includes(p)));

  it("a pod network in mode vxlan parses: each node's VXLAN device is a port of its bridge, one overlay edge per pair of nodes", async () => {
    const plan = planPodNetwork({
      clusterCidr: "10.244.0.0/16",
      mode: "vxlan",
      nodes: ["a", "b", "c"].map((n, i) => ({
        name: `node-${n}`,
        nodeAddress: `192.0.2.${i + 1}`,
        pods: [{ name: `p${n}` }],
      })),
    });
    const g = await parse(podDiagramOf(plan));
    const vxlans = [...g.vertices.values()].filter((v) => v.text.includes("vxlan0 VNI 1"));
    assert.equal(vxlans.length, 3);
    const overlay = g.edges.filter((e) => e.text.includes("udp/4789"));
    assert.equal(overlay.length, 3, JSON.stringify(g.edges));
    assert.ok(g.edges.every((e) => !e.text.includes(" via ")));
  });

  it("a dual-stack pod network parses: bridges and pods carry their IPv6 side, each IPv6 node route is an edge", async () => {
    const plan = planPodNetwork({
      clusterCidr: "10.244.0.0/16",
      clusterCidr6: "fd00:10:244::/56",
      nodes: ["a", "b"].map((n, i) => ({
        name: `node-${n}`,
        nodeAddress: `192.0.2.${i + 1}`,
        nodeAddress6: `2001:db8:2::${i + 1}`,
        pods: [{ name: `p${n}` }],
      })),
    });
    const g = await parse(podDiagramOf(plan));
    const [a, b] = plan.nodes;
    assert.ok(vertexWith(g, "bridge v-net-0", a.bridgeCidr, a.bridgeCidr6!), JSON.stringify([...g.vertices.values()]));
    assert.ok(vertexWith(g, "pod pb", b.pods[0].cidr, b.pods[0].cidr6!));
    assert.ok(vertexWith(g, "MASQUERADE 10.244.0.0/16", "fd00:10:244::/56"));
    const routes6 = g.edges.filter((e) => e.text.includes(" via 2001:db8:2::"));
    // node-a's route to node-b's pods via node-b's address, and the mirror.
    assert.deepEqual(
      routes6.map((e) => e.text).sort(),
      [`${b.podCidr6} via 2001:db8:2::2`, `${a.podCidr6} via 2001:db8:2::1`].sort(),
    );
  });

  it("the lesson network parses; namespaces carry their veth and address, the bridge its gateway, NAT and the port forward are edges", async () => {
    const text = diagramOf(planNetwork(LESSON), "host 10.20.0.2");
    const g = await parse(text);
    const red = vertexWith(g, "netns red", "veth-red 192.168.15.1/24");
    const blue = vertexWith(g, "netns blue", "veth-blue 192.168.15.2/24");
    const bridge = vertexWith(g, "bridge v-net-0", "192.168.15.5/24");
    const nat = vertexWith(g, "MASQUERADE 192.168.15.0/24", "ip_forward=1");
    const lan = vertexWith(g, "LAN / internet");
    assert.ok(red && blue && bridge && nat && lan, text);
    const edge = (a: Vertex, b: Vertex) => g.edges.find((e) => e.start === a.id && e.end === b.id);
    assert.equal(edge(red, bridge)?.text, "veth-red-br");
    assert.equal(edge(blue, bridge)?.text, "veth-blue-br");
    assert.ok(edge(bridge, nat) && edge(nat, lan), "bridge --> nat --> lan");
    const forward = edge(lan, blue);
    assert.equal(forward?.text, "tcp :8080 to 192.168.15.2:80");
    assert.equal(forward?.stroke, "dotted");
    assert.equal(g.edges.length, 5, JSON.stringify(g.edges));
    const host = g.subgraphs.find((s) => s.title === "host 10.20.0.2");
    assert.deepEqual(host?.nodes.sort(), [bridge.id, nat.id].sort());
  });

  it("dual stack: the bridge, each namespace and NAT carry their IPv6 side too, and the forward its IPv6 target", async () => {
    const plan = planNetwork({ ...LESSON, subnet6: "fd00:15::/64" });
    const text = diagramOf(plan, "host 10.20.0.2");
    const g = await parse(text);
    const blue6 = plan.namespaces.find((n) => n.name === "blue")!.cidr6!;
    assert.ok(vertexWith(g, "bridge v-net-0", "192.168.15.5/24", "fd00:15::1/64"), text);
    assert.ok(vertexWith(g, "netns blue", "veth-blue 192.168.15.2/24", blue6), text);
    assert.ok(vertexWith(g, "MASQUERADE 192.168.15.0/24", "fd00:15::/64", "IPv6 forwarding=1"), text);
    assert.ok(
      g.edges.some((e) => e.text === `tcp :8080 to 192.168.15.2:80 and [${blue6.split("/")[0]}]:80`),
      text,
    );
  });

  it("a broken diagram fails to parse (the check above can fail)", async () => {
    const text = diagramOf(planNetwork(LESSON));
    // Drop the closing pipe of the port forward's edge label: a real syntax error.
    const broken = text.replace(/\|(\s+ns_[^\s]+\s*)$/m, "$1");
    assert.notEqual(broken, text);
    await assert.rejects(() => mermaid.parse(broken), /Parse error/);
    await assert.rejects(() => mermaid.parse('flowchart LR\n  a["unclosed --> b\n'), /Parse error|Lexical error/);
  });

  it("without NAT and port forwards there is no LAN node and no NAT node", async () => {
    const g = await parse(diagramOf(planNetwork({ ...LESSON, outboundNat: false, portForwards: [] })));
    assert.equal(vertexWith(g, "LAN"), undefined);
    assert.equal(vertexWith(g, "MASQUERADE"), undefined);
    assert.equal(g.edges.length, 2);
  });

  it("awkward names (mermaid keywords, '.', '-', '_', quotes in the host label) parse and stay distinct nodes", async () => {
    const names = ["end", "graph", "subgraph", "a-b", "a.b", "a_b", "A", "x".repeat(40)];
    const plan = planNetwork({
      bridge: "end",
      subnet: "10.7.0.0/24",
      namespaces: names.map((name) => ({ name })),
      portForwards: names.map((namespace, i) => ({ namespace, hostPort: 9000 + i })),
    });
    const g = await parse(diagramOf(plan, 'host "quoted" & <b>'));
    // (mermaid normalizes <br/> to <br>)
    for (const ns of plan.namespaces) assert.ok(vertexWith(g, `netns ${ns.name}<br>`, ns.cidr), ns.name);
    const nsVertices = [...g.vertices.values()].filter((v) => v.text.startsWith("netns "));
    assert.equal(nsVertices.length, names.length, "one node per namespace ('a-b', 'a.b', 'a_b' must not merge)");
    const lanEdges = g.edges.filter((e) => e.text.startsWith("tcp :"));
    assert.equal(new Set(lanEdges.map((e) => e.end)).size, names.length);
  });

  it("any valid plan's diagram parses, with one node per namespace and one edge per port forward", async () => {
    const nsName = fc.stringMatching(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,12}$/);
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(nsName, { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        fc.array(fc.record({ pick: fc.nat(), udp: fc.boolean() }), { maxLength: 4 }),
        async (names, outboundNat, forwards) => {
          const plan = planNetwork({
            bridge: "br-test",
            subnet: "172.16.0.0/16",
            namespaces: names.map((name) => ({ name })),
            outboundNat,
            portForwards: forwards.map((f, i) => ({
              namespace: names[f.pick % names.length],
              hostPort: 10000 + i,
              protocol: f.udp ? "udp" : "tcp",
            })),
          });
          const g = await parse(diagramOf(plan));
          assert.equal([...g.vertices.values()].filter((v) => v.text.startsWith("netns ")).length, names.length);
          assert.equal(g.edges.filter((e) => /^(tcp|udp) :/.test(e.text)).length, forwards.length);
        },
      ),
      { numRuns: 25 },
    );
  });
});
