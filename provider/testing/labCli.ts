#!/usr/bin/env node
import { startDetachedLabHost, stopLabByName } from "./labHost";
import { linkRecordedLabs } from "./labNetwork";
import { describeSegment, isLabAlive, LAB_STATE_DIR, listLabStates, readLabState, segmentsOf } from "./state";

const HELP = `Usage: pulumi-netns-lab <command>

Throwaway "lab hosts" for trying pulumi-netns: each is a fake Linux machine made of
network + mount namespaces on this machine, with sshd on a 198.18.0.0/15 address
and an upstream LAN peer (203.0.113.1 and 2001:db8:113::1, "internet" 198.51.100.1 and 2001:db8:100::1). Needs root.

Commands:
  start [--name N] [--heavy-shell] [--forward-drop]
        Start a lab host that keeps running after this command exits, and print its
        SSH connection as JSON: {host, port, user, privateKey, hostKey}.
        The private key is a throwaway generated for this lab only.
        --heavy-shell   root's ~/.bashrc sleeps 0.15 s (a slow login shell)
        --forward-drop  iptables FORWARD policy DROP inside the lab (like Docker)
  link --labs A,B[,...] [--subnet CIDR] [--subnet6 CIDR6] [--device D]
        Put running labs on one network, as machines on one switch: each gets device D
        (default eth1) with the next address of CIDR (default 192.0.2.0/24), and print
        them as JSON: {subnet, device, members: [{lab, address, cidr, address6?, cidr6?}]}. The segment
        goes when any of its labs is stopped.
  stop <name>|--all   Kill everything in the lab and remove every trace of it (and
                      any segment it is linked to); prints what it stopped.
  list                Show the lab hosts recorded in ${LAB_STATE_DIR}.
  env <name>          Print the lab's SSH connection as JSON.
`;

function fail(msg: string): never {
  process.stderr.write(`pulumi-netns-lab: ${msg}\n`);
  process.exit(2);
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  const log = (l: string) => process.stderr.write(`${l}\n`);
  switch (cmd) {
    case "start": {
      let name: string | undefined;
      let heavyShell = false;
      let forwardPolicyDrop = false;
      for (let i = 0; i < rest.length; i++) {
        const a = rest[i];
        if (a === "--name") name = rest[++i] ?? fail("--name needs a value");
        else if (a.startsWith("--name=")) name = a.slice("--name=".length);
        else if (a === "--heavy-shell") heavyShell = true;
        else if (a === "--forward-drop") forwardPolicyDrop = true;
        else fail(`start: unknown argument ${a}`);
      }
      const state = await startDetachedLabHost({ name, heavyShell, forwardPolicyDrop, log });
      process.stdout.write(`${JSON.stringify(state.connection, null, 2)}\n`);
      log(
        `lab host ${state.name} running (ssh root@${state.address}); stop it with: pulumi-netns-lab stop ${state.name}`,
      );
      return;
    }
    case "link": {
      let labs: string[] | undefined;
      let subnet: string | undefined;
      let subnet6: string | undefined;
      let device: string | undefined;
      for (let i = 0; i < rest.length; i++) {
        const [flag, inline] = rest[i].startsWith("--") ? rest[i].split(/=(.*)/s, 2) : [rest[i], undefined];
        const value = () => inline ?? rest[++i] ?? fail(`link: ${flag} needs a value`);
        if (flag === "--labs") labs = value().split(",").filter(Boolean);
        else if (flag === "--subnet") subnet = value();
        else if (flag === "--subnet6") subnet6 = value();
        else if (flag === "--device") device = value();
        else fail(`link: unknown argument ${rest[i]}`);
      }
      if (!labs) fail("usage: link --labs A,B[,...] [--subnet CIDR] [--subnet6 CIDR6] [--device D]");
      const segment = await linkRecordedLabs(labs, { subnet, subnet6, device, log });
      const { members } = segment;
      process.stdout.write(`${JSON.stringify({ subnet: segment.subnet, device: segment.device, members }, null, 2)}\n`);
      log(`linked ${describeSegment(segment)}; it goes when one of these labs is stopped`);
      return;
    }
    case "stop": {
      if (rest.length !== 1) fail("usage: stop <name>|--all");
      const names = rest[0] === "--all" ? listLabStates().map((s) => s.name) : rest;
      for (const n of names) {
        const state = readLabState(n);
        const segments = state ? segmentsOf(state) : [];
        if (!(await stopLabByName(n, log))) fail(`no lab host named ${n}`);
        // What went, on stdout: a segment is listed by the first of its labs stopped (it went then).
        for (const s of segments) process.stdout.write(`removed segment ${describeSegment(s)}\n`);
        process.stdout.write(`stopped lab ${n}${state ? ` (${state.address})` : ""}\n`);
      }
      return;
    }
    case "list": {
      for (const s of listLabStates()) {
        const alive = isLabAlive(s) ? "running" : "dead";
        const owner = s.ownerPid === null ? "detached" : `owner pid ${s.ownerPid}`;
        process.stdout.write(`${s.name}\t${s.address}\t${alive}\t${owner}\t${s.startedAt}\n`);
      }
      return;
    }
    case "env": {
      if (rest.length !== 1) fail("usage: env <name>");
      const s = readLabState(rest[0]) ?? fail(`no lab host named ${rest[0]}`);
      process.stdout.write(`${JSON.stringify(s.connection, null, 2)}\n`);
      return;
    }
    case undefined:
    case "help":
    case "-h":
    case "--help":
      process.stdout.write(HELP);
      return;
    default:
      process.stderr.write(HELP);
      process.exit(2);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  fail(err instanceof Error ? err.message : String(err));
});
