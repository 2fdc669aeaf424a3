import { installedKit, removeScratch } from "./integration/harness";

/** Root hooks: whatever a failed test left, the run ends with nothing of its own on the machine. */
export const mochaHooks = {
  async afterAll() {
    const { stopAllLabHosts } = require("../provider/testing/labHost") as typeof import("../provider/testing/labHost");
    await stopAllLabHosts();
    await installedKit()?.stopAllLabHosts();
    if (!process.env.PULUMI_NETNS_KEEP_SCRATCH) removeScratch();
  },
};
