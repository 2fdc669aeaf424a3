import { installedKit, removeScratch } from "./support/harness";

/** Root hooks: whatever a failed test left, the run ends with nothing of its own on the machine. */
export const mochaHooks = {
  async afterAll() {
    const { stopAllLabHosts } =
      require("../provider/testing/liveLabs") as typeof import("../provider/testing/liveLabs");
    await stopAllLabHosts();
    await installedKit()?.stopAllLabHosts();
    if (!process.env.PULUMI_NETNS_KEEP_SCRATCH) removeScratch();
  },
};
