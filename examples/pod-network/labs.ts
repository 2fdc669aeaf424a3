// Two throwaway lab hosts on one machine, linked on 192.0.2.0/24 and 2001:db8:2::/64, for trying this example without
// two machines (root on Linux), run in this directory after `npm install`:
//   npx ts-node --transpile-only -O '{"module":"commonjs","moduleResolution":"node"}' labs.ts
// (ts-node's own default, module NodeNext, refuses to start without a tsconfig.json here). It prints
// the `pulumi config set` commands for both and keeps the labs until Ctrl-C, which stops them and
// removes the segment with them.
import { linkLabHosts, startLabHost } from "pulumi-netns/testing";

async function main(): Promise<void> {
  const labs = await Promise.all(["a", "b"].map((x) => startLabHost({ name: `pod-network-${x}` })));
  // Each lab gets eth1 with the subnet's next address: 192.0.2.1 and 192.0.2.2.
  // And IPv6 2001:db8:2::1 and ::2, for the dual-stack variant (clusterCidr6).
  const segment = await linkLabHosts(labs, { subnet: "192.0.2.0/24", subnet6: "2001:db8:2::/64" });
  for (const [i, lab] of labs.entries()) {
    const s = "AB"[i];
    const c = lab.connection;
    console.log(`pulumi config set host${s} ${c.host}`);
    console.log(`pulumi config set port${s} ${c.port}`);
    console.log(`pulumi config set hostKey${s} '${c.hostKey}'`);
    console.log(`pulumi config set nodeAddress${s} ${segment.addressOf(lab)}`);
    console.log(`pulumi config set nodeAddress6${s} ${segment.members[i].address6}`);
    console.log(`pulumi config set --secret privateKey${s} -- '${c.privateKey}'`);
  }
  console.error("two linked lab hosts running; Ctrl-C stops them");
  // The kit stops its labs when this process ends (Ctrl-C included).
  await new Promise(() => {});
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
