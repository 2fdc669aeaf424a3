import { refuseUnsettled, settleAddresses, settledAddresses } from "../kernel/link";
import { at } from "../kernel/namespace";
import type { Remote } from "../transport";
import { isIpv6 } from "../validate";
import { readAll } from "./executor";

/**
 * After create or update: waits until the IPv6 addresses `dev` should have are
 * out of duplicate address detection (usable), and fails naming any whose
 * detection failed (kernel/link settleAddresses). IPv4 addresses are usable at
 * once; a link without IPv6 addresses sends nothing.
 */
export async function settleIpv6(
  remote: Remote,
  dev: string,
  addresses: string[],
  namespace: string | undefined,
): Promise<void> {
  const wanted = addresses.filter(isIpv6);
  if (wanted.length === 0) return;
  const [text] = await readAll(remote, [settleAddresses(at(namespace), dev)]);
  refuseUnsettled(text, dev, wanted, `on ${remote.label}${namespace ? `, namespace ${namespace}` : ""}`);
}

/**
 * Waits until bridge `dev`'s IPv6 addresses are out of duplicate address
 * detection (kernel/link settleAddresses), whatever they are: the bridge is
 * another resource's, whose own create could not wait (no port, no carrier).
 * Fails naming one whose detection failed: the pair's port gave the bridge its
 * carrier, so this is where the gateway is found dead (a namespace on it
 * holds the same address), and an `up` must not say ok then.
 */
export async function settleBridge(remote: Remote, dev: string, namespace: string | undefined): Promise<void> {
  const [text] = await readAll(remote, [settleAddresses(at(namespace), dev)]);
  const where = `bridge ${dev} on ${remote.label}${namespace ? `, namespace ${namespace}` : ""}`;
  refuseUnsettled(text, dev, settledAddresses(text), where);
}
