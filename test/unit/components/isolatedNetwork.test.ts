import { strict as assert } from "node:assert";
import * as pulumi from "@pulumi/pulumi";
import { IsolatedNetwork } from "../../../components/isolatedNetwork";
import { lessonSpec } from "../../support/lessonSpec";

// The component under the SDK's mocks (no engine, no host): what it makes of its args.
describe("components/IsolatedNetwork: its args", () => {
  before(() =>
    pulumi.runtime.setMocks({
      newResource: (args) => ({ id: `${args.name}-id`, state: args.inputs }),
      call: () => ({}),
    }),
  );

  it("reads the spec through getters and prototypes, as any object a program passes (a class instance)", async () => {
    class LabSpec {
      readonly connection = { host: "198.18.0.1", privateKey: "k" };
      get bridge() {
        return lessonSpec().bridge;
      }
      get subnet() {
        return lessonSpec().subnet;
      }
      get gateway() {
        return lessonSpec().gateway;
      }
      get namespaces() {
        return lessonSpec().namespaces;
      }
    }
    const net = new IsolatedNetwork("lab", new LabSpec() as never);
    assert.equal(net.plan.bridge, "v-net-0");
    assert.deepEqual(
      net.plan.namespaces.map((n) => n.name),
      ["red", "blue"],
    );
  });
});
