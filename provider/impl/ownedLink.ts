import { deleteLink, type LinkState, parseLink, printLink } from "../kernel/link";
import { notOursWarning } from "../kernel/mark";
import { at } from "../kernel/namespace";
import { sequence } from "../kernel/script";
import type { Remote } from "../transport";
import { progress } from "../transport/progress";
import { readAll, runScript } from "./executor";

/**
 * The delete of a resource that is one link (Bridge, Vxlan): the link goes if
 * it is ours (`ours`: its mark, or the ifindex and MAC recorded); another
 * under the name is left, and the delete says so. Gone already is done.
 */
export async function deleteOwnedLink(
  remote: Remote,
  kind: string,
  props: { name: string; namespace?: string; ifindex?: number; mac?: string },
  ours: (found: LinkState) => boolean,
): Promise<void> {
  const [text] = await readAll(remote, [printLink(at(props.namespace), props.name)]);
  const found = parseLink(text, `${kind} ${props.name}`);
  if (!found) return;
  if (!ours(found)) {
    const where = props.namespace ? `namespace ${JSON.stringify(props.namespace)}` : "the host namespace";
    const why = `ifindex ${found.ifindex}, MAC ${found.mac}, alias ${JSON.stringify(found.ifalias ?? "")}; ours was ifindex ${props.ifindex}, MAC ${props.mac}`;
    progress(notOursWarning(`${kind} ${JSON.stringify(props.name)} in ${where}`, remote.label, why));
    return;
  }
  await runScript(remote, sequence(deleteLink(at(props.namespace), props.name)));
}
