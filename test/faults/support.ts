import { type LabHost, startLabHost } from "../../provider/testing/labHost";
import { closeAllRemotes } from "../../provider/transport";

/**
 * A lab host for one describe block: started before its tests, pooled
 * connections closed after each test, stopped after the block.
 */
export function suiteLab(prefix: string): {
  lab: () => LabHost;
  connection: () => { host: string; port: number; privateKey: string };
} {
  let lab: LabHost | undefined;
  before(async () => {
    lab = await startLabHost({ name: `${prefix}-${process.pid}` });
  });
  afterEach(() => closeAllRemotes());
  after(async () => {
    await lab?.stop();
  });
  const started = () => {
    if (!lab) throw new Error(`lab ${prefix} is not started`);
    return lab;
  };
  return {
    lab: started,
    connection: () => {
      const c = started().connection;
      return { host: c.host, port: c.port, privateKey: c.privateKey };
    },
  };
}
