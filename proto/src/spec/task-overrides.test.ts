import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { TaskSpecSchema } from "../gen/mottainai/v1/task_pb.js";
import { overrideTaskSpec } from "./task-overrides.js";

describe("overrideTaskSpec", () => {
  const base = create(TaskSpecSchema, {
    name: "file",
    type: "docker",
    image: "debian",
    script: ["make"],
    namespace: ["a"],
    labels: { arch: "x86" },
    prune: true,
    retry: 2,
    namespaceMerged: true,
  });

  it("replaces exactly the fields the overrides set", () => {
    const overrides = create(TaskSpecSchema, {
      name: "flag",
      script: ["make iso"],
      namespace: ["b", "c"],
      cacheImage: true,
      timeout: 30,
      labels: { os: "linux" },
    });
    const result = overrideTaskSpec(base, overrides);
    assert.equal(result.name, "flag");
    assert.equal(result.type, "docker");
    assert.equal(result.image, "debian");
    assert.deepEqual(result.script, ["make iso"]);
    assert.deepEqual(result.namespace, ["b", "c"]);
    assert.deepEqual(result.labels, { os: "linux" });
    assert.equal(result.cacheImage, true);
    assert.equal(result.prune, true);
    assert.equal(result.retry, 2);
    assert.equal(result.timeout, 30);
    assert.equal(result.namespaceMerged, true);
  });

  it("keeps everything for empty overrides, and takes an explicit namespace_merged false", () => {
    assert.deepEqual(overrideTaskSpec(base, create(TaskSpecSchema)), base);
    assert.equal(overrideTaskSpec(base, create(TaskSpecSchema, { namespaceMerged: false })).namespaceMerged, false);
  });

  it("changes neither argument and shares no lists with them", () => {
    const overrides = create(TaskSpecSchema, { script: ["x"] });
    const result = overrideTaskSpec(base, overrides);
    result.script.push("y");
    result.namespace.push("z");
    assert.deepEqual(overrides.script, ["x"]);
    assert.deepEqual(base.namespace, ["a"]);
    assert.deepEqual(base.script, ["make"]);
  });
});
