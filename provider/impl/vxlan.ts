import { randomBytes } from "node:crypto";
import type * as pulumi from "@pulumi/pulumi";
import { endpoint } from "../connection";
import { lookup } from "../kernel/explain";
import {
  addressChanges,
  deleteLink,
  type LinkState,
  parseLink,
  printLink,
  sameAddresses,
  setMaster,
  setMtu,
  setUp,
  showLink,
} from "../kernel/link";
import { clearMark, isOurLink, markUnlessRetained, refuseMarkedLink, setMark } from "../kernel/mark";
import { at } from "../kernel/namespace";
import { bestEffort, creation, type IpArgs, lookingUp, script, sequence } from "../kernel/script";
import {
  addVxlan,
  appendFdb,
  deleteFdb,
  parseFdbRemotes,
  parseVxlanInfo,
  printFdb,
  underlayIsIpv6,
} from "../kernel/vxlan";
import { underlayAddress, VXLAN } from "../resourceSchemas";
import { CommandError, type Remote } from "../transport";
import { isIpv6, show } from "../validate";
import { addressCheck } from "./collisions";
import { fromSchema, plain, recordHostKeys, remoteFor } from "./common";
import { readAll, runScript } from "./executor";
import { lockedCommit } from "./lockedCommit";
import { advised } from "./opErrors";
import { deleteOwnedLink } from "./ownedLink";
import { settleIpv6 } from "./settle";
import type { InputsOf, OutputsOf, ProviderOf } from "./types";

export type VxlanInputs = InputsOf<typeof VXLAN>;
export type VxlanOutputs = OutputsOf<typeof VXLAN>;

export const { check, diff } = fromSchema(VXLAN, {
  deleteBeforeReplace: true,
  alsoCheck(checker, news) {
    if (!Array.isArray(news.remotes)) return;
    const local = typeof news.local === "string" && underlayAddress(news.local) === undefined ? news.local : undefined;
    // One underlay family per device (its socket's): the first valid address decides, `local` first.
    const valid = news.remotes.map((r) => (typeof r === "string" && underlayAddress(r) === undefined ? r : undefined));
    const firstRemote = valid.findIndex((r) => r !== undefined);
    const [refName, ref] =
      local !== undefined
        ? [`local ${show(local)}`, local]
        : [`remotes[${firstRemote}] ${show(valid[firstRemote])}`, valid[firstRemote]];
    const family = (a: string) => (isIpv6(a) ? "IPv6" : "IPv4");
    valid.forEach((r, i) => {
      if (r === undefined) return;
      // A device does not send to itself: a peer that is `local` would only loop the floods back.
      if (r === local)
        checker.fail(
          `remotes[${i}]`,
          `${show(r)} is local, this host's own address: a VXLAN device does not send to itself; remove it from remotes`,
        );
      else if (ref !== undefined && family(r) !== family(ref))
        checker.fail(
          `remotes[${i}]`,
          `${show(r)} is ${family(r)} but ${refName} is ${family(ref)}: a VXLAN device has one underlay family; ` +
            "give local and every remote in one family (an IPv6 underlay: IPv6 addresses for all of them)",
        );
    });
  },
  // The socket's family is fixed when the device is made: peers of the other family need a new one.
  alsoReplaces: (olds, news) =>
    underlayIsIpv6(olds.local, olds.remotes) !==
    underlayIsIpv6(
      typeof news.local === "string" ? news.local : undefined,
      Array.isArray(news.remotes) ? news.remotes.filter((r): r is string => typeof r === "string") : [],
    )
      ? ["remotes"]
      : [],
  drifted: (olds) => (olds.missingRemotes ?? []).length > 0,
});

/** What a read of the device sees: the link, its VXLAN settings and the peers of its FDB. */
interface Seen {
  link: LinkState;
  vni: number;
  dstPort: number;
  /** The underlay address and device the host has (absent: none). */
  local?: string;
  device?: string;
  remotes: string[];
}

const where = (i: { namespace?: string }) =>
  i.namespace ? `namespace ${JSON.stringify(i.namespace)}` : "the host namespace";
const idOf = (i: VxlanInputs) => `vxlan/${i.namespace ?? ""}/${i.name}@${endpoint(i.connection)}`;

/** The device under the name, if it is a VXLAN device, with its FDB peers. */
async function readVxlan(remote: Remote, i: { name: string; namespace?: string }): Promise<Seen | undefined> {
  const ns = at(i.namespace);
  const [linkText, fdbText] = await readAll(remote, [printLink(ns, i.name), printFdb(ns, i.name)]);
  const link = parseLink(linkText, `vxlan ${i.name}`);
  const info = parseVxlanInfo(linkText);
  if (!link || !info) return undefined;
  return {
    link,
    vni: info.vni,
    dstPort: info.dstPort,
    local: info.local,
    device: info.device,
    remotes: parseFdbRemotes(fdbText, `the FDB of ${i.name}`),
  };
}

/** The `ip` changes that take the device from `current` (absent: just made) to `inputs`; it is always up. */
function configureChanges(inputs: VxlanInputs, current: LinkState | undefined, changeMtu: boolean): IpArgs[] {
  const changes: IpArgs[] = [];
  if (changeMtu && inputs.mtu !== undefined) changes.push(setMtu(inputs.name, inputs.mtu));
  if (inputs.bridge !== current?.master && (inputs.bridge !== undefined || current !== undefined))
    changes.push(setMaster(inputs.name, inputs.bridge));
  changes.push(...addressChanges(inputs.name, current?.addresses ?? [], inputs.addresses));
  if (!current?.up) changes.push(setUp(inputs.name, true));
  return changes;
}

/** Every peer has its FDB entry after a change, or the change failed: says which are missing. */
function checkRemotes(remote: Remote, inputs: VxlanInputs, seen: Seen | undefined): Seen {
  if (!seen)
    throw new Error(`vxlan ${inputs.name} is gone from ${where(inputs)} on ${remote.label}; run refresh, then up`);
  const missing = inputs.remotes.filter((r) => !seen.remotes.includes(r));
  if (missing.length)
    throw new Error(
      `vxlan ${inputs.name} on ${remote.label} has no FDB entry for remotes ${missing.join(", ")} after they were added ` +
        "(bridge -j fdb show); something removes them: run up again once it is quiet",
    );
  return seen;
}

/**
 * Configures an existing device (after `first`, e.g. its mark) and its FDB in
 * one locked commit planned from the FDB it has: adds the flood entry of each
 * peer it lacks and removes those of the peers `dropped` (the old inputs'
 * peers no longer wanted; other entries are not ours). Addresses it adds are
 * checked against the host's first.
 */
async function configure(
  remote: Remote,
  inputs: VxlanInputs,
  current: LinkState,
  changeMtu: boolean,
  dropped: string[],
  first: IpArgs[] = [],
): Promise<void> {
  const ns = at(inputs.namespace);
  const added = inputs.addresses.filter((a) => !current.addresses.includes(a));
  const checks = addressCheck(remote, `Vxlan ${inputs.name}`, inputs.name, added, inputs.namespace);
  await lockedCommit(
    remote,
    inputs.namespace,
    [printFdb(ns, inputs.name)],
    ([fdbText]) => {
      const has = parseFdbRemotes(fdbText, `the FDB of ${inputs.name}`);
      const changes = [...first, ...configureChanges(inputs, current, changeMtu)];
      const commands = [
        ...(changes.length ? [ns.ipBatch(changes)] : []),
        ...dropped
          .filter((r) => has.includes(r) && !inputs.remotes.includes(r))
          .map((r) => deleteFdb(ns, inputs.name, r)),
        ...inputs.remotes.filter((r) => !has.includes(r)).map((r) => appendFdb(ns, inputs.name, r)),
      ];
      const lookups = [
        ...lookup("namespace", inputs.namespace, "namespace"),
        ...lookup("bridge", inputs.bridge, "bridge", inputs.namespace),
      ];
      return { script: lookingUp(sequence(...commands), lookups), result: undefined };
    },
    checks,
  );
  await settleIpv6(remote, inputs.name, inputs.addresses, inputs.namespace);
}

function outputs(
  inputs: VxlanInputs,
  remote: Remote,
  seen: Seen,
  adopted: boolean,
  mark: string | undefined,
  known?: Record<string, string>,
): VxlanOutputs {
  const { link } = seen;
  return {
    ...inputs,
    // What the host has, so that refresh shows a device changed by hand (another VNI, port, local
    // address or underlay device replaces it: `ip link set ... type vxlan local X` breaks the overlay).
    vni: seen.vni,
    dstPort: seen.dstPort,
    local: seen.local,
    device: seen.device,
    addresses: sameAddresses(inputs.addresses, link.addresses) ? inputs.addresses : link.addresses,
    ...(inputs.bridge !== undefined ? { bridge: link.master ?? "" } : {}),
    ...(inputs.mtu !== undefined ? { mtu: link.mtu } : {}),
    mac: link.mac,
    ifindex: link.ifindex,
    adopted,
    mark,
    missingRemotes: [],
    knownHostKeys: recordHostKeys(remote, known),
  };
}

async function create(inputs: VxlanInputs): Promise<pulumi.dynamic.CreateResult> {
  const remote = await remoteFor(inputs);
  // A retained device carries no mark: destroy leaves it, and a mark would only refuse a later adopt.
  const mark = markUnlessRetained("vxlan", randomBytes(4).toString("hex"), inputs.retainOnDelete);
  const marking = mark ? [setMark(inputs.name, mark)] : [];
  const ns = at(inputs.namespace);
  if (inputs.adopt) {
    const current = await readVxlan(remote, inputs);
    if (current) {
      refuseMarkedLink("vxlan", inputs.name, inputs.namespace, remote.label, current.link.ifalias);
      // Adopted as it is: what the device was made with cannot change in place (a mismatch would replace it at once).
      for (const [field, want, has] of [
        ["vni", inputs.vni, current.vni],
        ["dstPort", inputs.dstPort, current.dstPort],
        ["local", inputs.local, current.local],
        ["device", inputs.device, current.device],
      ] as const)
        if (want !== has)
          throw new Error(
            `${field}: vxlan ${inputs.name} in ${where(inputs)} on ${remote.label} has ${field} ${has ?? "none"}, not ${want ?? "none"}; nothing was changed. ` +
              `Set ${field} to ${has === undefined ? "nothing (leave it out)" : has} to adopt it, or choose another name.`,
          );
      // Without `bridge`, an adopted device stays a port of whatever bridge it is in: not ours to detach.
      const link = inputs.bridge === undefined ? { ...current.link, master: undefined } : current.link;
      await configure(remote, inputs, link, current.link.mtu !== inputs.mtu, [], marking);
      const after = checkRemotes(remote, inputs, await readVxlan(remote, inputs));
      return { id: idOf(inputs), outs: plain(outputs(inputs, remote, after, true, mark)) };
    }
  }
  // Made, marked, configured, given its peers and read back by one script; any step failing removes it again.
  const configureAndShow = [...marking, ...configureChanges(inputs, undefined, true), showLink(inputs.name)];
  const add = lookingUp(
    creation(
      addVxlan(ns, inputs),
      [
        ...inputs.remotes.map((r) => appendFdb(ns, inputs.name, r)),
        ns.ipBatch(configureAndShow, ["-d", "-j"]),
        printFdb(ns, inputs.name),
      ],
      [deleteLink(ns, inputs.name)],
    ),
    [
      ...lookup("namespace", inputs.namespace, "namespace"),
      ...lookup("device", inputs.device, "interface", inputs.namespace),
      ...lookup("bridge", inputs.bridge, "bridge", inputs.namespace),
    ],
  );
  const making = {
    what: `vxlan ${JSON.stringify(inputs.name)}`,
    leftover: `remove it by hand (ip${inputs.namespace ? ` -n ${inputs.namespace}` : ""} link delete ${inputs.name}) or set adopt: true on the Vxlan to take it over`,
  };
  const checks = addressCheck(remote, `Vxlan ${inputs.name}`, inputs.name, inputs.addresses, inputs.namespace);
  let out: string[];
  try {
    ({ outputs: out } = await lockedCommit(
      remote,
      inputs.namespace,
      [],
      () => ({ script: add, making, result: undefined }),
      checks,
    ));
  } catch (e) {
    // The kernel lets one device per VNI and port (and underlay) receive: a second is refused.
    const text = e instanceof Error ? `${e.message}\n${e instanceof CommandError ? e.stderr : ""}` : "";
    if (/A VXLAN device with the specified VNI already exists/.test(text))
      throw new Error(
        `vni: ${inputs.vni} (dstPort ${inputs.dstPort}) is already another VXLAN device's in ${where(inputs)} on ${remote.label}; ` +
          "two devices cannot receive one VNI on one port. Nothing was changed. Choose another vni or dstPort, " +
          "or adopt that device (its name, adopt: true).",
      );
    if (e instanceof CommandError && e.stderr.includes("File exists") && !inputs.adopt)
      throw new Error(
        `name: interface ${JSON.stringify(inputs.name)} already exists in ${where(inputs)} on ${remote.label}; nothing was changed. ` +
          "Set adopt: true to take over an existing VXLAN device, or choose another name.",
      );
    throw e;
  }
  const shownLink = out[out.length - 2];
  const link = parseLink(shownLink, inputs.name);
  const info = parseVxlanInfo(shownLink);
  if (!link || !info) throw new Error(`vxlan ${inputs.name} is not in ${where(inputs)} after it was created`);
  const seen = checkRemotes(remote, inputs, {
    link,
    vni: info.vni,
    dstPort: info.dstPort,
    local: info.local,
    device: info.device,
    remotes: parseFdbRemotes(out[out.length - 1], `the FDB of ${inputs.name}`),
  });
  try {
    await settleIpv6(remote, inputs.name, inputs.addresses, inputs.namespace);
  } catch (e) {
    // Not recorded: the device goes again, as after any failed create.
    await runScript(remote, script([bestEffort(deleteLink(ns, inputs.name))])).catch(() => undefined);
    throw e;
  }
  return { id: idOf(inputs), outs: plain(outputs(inputs, remote, seen, false, mark)) };
}

/** Whether the device under the name is the one this resource made or adopted (kernel/mark). */
const ours = (found: LinkState, props: VxlanOutputs) => isOurLink(found, props);

async function read(id: string, props: VxlanOutputs): Promise<pulumi.dynamic.ReadResult> {
  const remote = await remoteFor(props);
  const seen = await readVxlan(remote, props);
  if (!seen || !ours(seen.link, props)) return {}; // another device under this name: ours is gone
  const outs = outputs(props, remote, seen, props.adopted, props.mark, props.knownHostKeys);
  // Peers are reported missing, not as a changed list: the entries the host has that we did not add are not ours to judge.
  return { id, props: plain({ ...outs, missingRemotes: props.remotes.filter((r) => !seen.remotes.includes(r)) }) };
}

async function update(_id: string, olds: VxlanOutputs, news: VxlanInputs): Promise<pulumi.dynamic.UpdateResult> {
  const remote = await remoteFor({ connection: news.connection, knownHostKeys: olds.knownHostKeys });
  const current: LinkState = {
    ifname: olds.name,
    ifindex: olds.ifindex,
    mac: olds.mac,
    mtu: olds.mtu ?? -1,
    // Not in state: the update brings it up whatever it is (a no-op when it is up).
    up: false,
    master: olds.bridge,
    addresses: olds.addresses,
  };
  // A device deleted by hand: say so, rather than the kernel's "Cannot find device" from the first change.
  const before = await readVxlan(remote, news);
  if (!before)
    throw new Error(`vxlan ${news.name} is gone from ${where(news)} on ${remote.label}; run refresh, then up`);
  // retainOnDelete turned on takes the mark off (destroy will leave the device), turned off puts one on.
  let mark = olds.mark;
  const marking: IpArgs[] = [];
  if ((olds.retainOnDelete ?? false) !== news.retainOnDelete) {
    if (!news.retainOnDelete)
      refuseMarkedLink("vxlan", news.name, news.namespace, remote.label, before.link.ifalias, "retainOnDelete");
    mark = markUnlessRetained("vxlan", randomBytes(4).toString("hex"), news.retainOnDelete);
    marking.push(mark ? setMark(news.name, mark) : clearMark(news.name));
  }
  await configure(remote, news, current, news.mtu !== olds.mtu, olds.remotes, marking);
  const seen = checkRemotes(remote, news, await readVxlan(remote, news));
  return { outs: plain(outputs(news, remote, seen, olds.adopted, mark, olds.knownHostKeys)) };
}

/** Removes the device if it is ours (its FDB entries go with it); another one under the name is left, and the delete says so. */
async function remove(_id: string, props: VxlanOutputs): Promise<void> {
  const remote = await remoteFor(props);
  await deleteOwnedLink(remote, "vxlan", props, (found) => ours(found, props));
}

// Each failure says what to do for its operation, once (opErrors.ts); the shim calls these by name.
const { create: c, read: r, update: u, remove: d } = advised({ create, read, update, remove });

export { c as create, d as remove, r as read, u as update };
export const provider: ProviderOf<typeof VXLAN> = { check, diff, create: c, read: r, update: u, delete: d };
