// The Pulumi programs the bench runs, written into the scratch project in the form each variant needs.

import * as fs from "node:fs";
import * as path from "node:path";
import type { PodNetworkPlan } from "../../components/podPlan";
import { writeProgram } from "../support/harness";
import { lessonSpec } from "../support/lessonSpec";
import type { Program } from "./options";

export const SUBNET = "10.99.0.0/16";
export const BRIDGE = "v-bench-0";

const CONNECTION = (suffix: string) => `{
  host: cfg.require("host${suffix}"),
  port: cfg.requireNumber("port${suffix}"),
  user: "root",
  privateKey: cfg.requireSecret("privateKey${suffix}"),
}`;

export const PROGRAM = `
import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";

const cfg = new pulumi.Config();
const connection = ${CONNECTION("")};
const count = cfg.requireNumber("count");
const net = new netns.IsolatedNetwork("bench", {
  connection,
  bridge: cfg.require("bridge"),
  subnet: cfg.require("subnet"),
  namespaces: Array.from({ length: count }, (_, i) => ({ name: "ns" + String(i + 1).padStart(3, "0") })),
});
export const gateway = net.gateway;
`;

/** The lesson (examples/isolated-network without green: test/support/lessonSpec) on each of `hosts` lab hosts. */
export const MULTI_HOST_PROGRAM = `
import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";

const cfg = new pulumi.Config();
const hosts = cfg.requireNumber("hosts");
export const gateways = Array.from({ length: hosts }, (_, i) => {
  const lab = new netns.IsolatedNetwork("site-" + i, {
    connection: {
      host: cfg.require("host" + i),
      port: cfg.requireNumber("port" + i),
      user: "root",
      privateKey: cfg.requireSecret("privateKey" + i),
    },
    ...${JSON.stringify(lessonSpec())},
  });
  return lab.gateway;
});
`;

/** The same program compiled to CommonJS, as `tsc` would leave it. */
const toJs = (source: string) =>
  source
    .replace('import * as pulumi from "@pulumi/pulumi";', 'const pulumi = require("@pulumi/pulumi");')
    .replace('import * as netns from "pulumi-netns";', 'const netns = require("pulumi-netns");')
    .replace(/^export const (\w+) =/gm, "exports.$1 =");

/**
 * The SDK's cmd/run installs source-map-support for every program, and the SDK takes a stack trace for every
 * resource and promise: a compiled program without source maps can put V8's own formatting back.
 */
const NO_SOURCE_MAPS = "Error.prepareStackTrace = undefined; // no source maps here: V8's own stack traces\n";

/**
 * A program directory for one variant: index.ts, or index.js with `typescript: false` (no ts-node at all;
 * js-nosm: without source-map-support's stack traces too).
 */
export function variantProgram(name: string, source: string, program: Program): string {
  const dir = writeProgram(name, source);
  if (program === "js" || program === "js-nosm") {
    fs.rmSync(path.join(dir, "index.ts"));
    fs.writeFileSync(path.join(dir, "index.js"), (program === "js-nosm" ? NO_SOURCE_MAPS : "") + toJs(source));
    fs.writeFileSync(
      path.join(dir, "Pulumi.yaml"),
      `name: ${name}\nruntime:\n  name: nodejs\n  options:\n    typescript: false\n`,
    );
  }
  return dir;
}

export const nsName = (i: number) => `ns${String(i + 1).padStart(3, "0")}`;

/**
 * A PodNetwork of `plan`'s nodes and pods (test/bench/pods.ts): node i's connection is the config's
 * host<i>/port<i>/privateKey<i>. The spec is written out as the plan has it, so the program plans the same.
 */
export function podProgram(name: string, plan: PodNetworkPlan, program: Program): string {
  const spec = {
    // mode: "routes" is the default (a literal here would be a plain string to a type-checked program).
    clusterCidr: plan.clusterCidr,
    nodes: plan.nodes.map((n) => ({
      name: n.name,
      nodeAddress: n.nodeAddress,
      pods: n.pods.map((p) => ({ name: p.name })),
    })),
  };
  return variantProgram(
    name,
    `
import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";

const cfg = new pulumi.Config();
const spec = ${JSON.stringify(spec)};
const net = new netns.PodNetwork("pods", {
  ...spec,
  nodes: spec.nodes.map((n, i) => ({ ...n, connection: ${CONNECTION('" + i + "')} })),
});
export const podCidrs = net.podCidrs;
`,
    program,
  );
}
