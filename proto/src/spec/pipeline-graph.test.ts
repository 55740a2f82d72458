import assert from "node:assert/strict";
import { compilePipelineGraph, parsePipelineFile, SpecError, topologicalOrder, validatePipelineSpec } from "./index.js";

const task = (extra = "") => `{type: host, script: [x]${extra}}`;

function assertSpecError(fn: () => unknown, message: string, field?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SpecError, `expected a SpecError, got ${String(err)}`);
    assert.equal(err.message, message);
    if (field !== undefined) assert.equal(err.field, field);
    return true;
  });
}

describe("compilePipelineGraph", () => {
  it("makes each chain member wait for the previous one", () => {
    const spec = parsePipelineFile(`chain: [a, b, c]\ntasks:\n  a: ${task()}\n  b: ${task()}\n  c: ${task()}\n`);
    assert.deepEqual(compilePipelineGraph(spec), { order: ["a", "b", "c"], parents: { a: [], b: ["a"], c: ["b"] } });
  });

  it("runs a group together and a chord after the whole group", () => {
    const spec = parsePipelineFile(
      `group: [a, b]\nchord: [c, d]\ntasks:\n  a: ${task()}\n  b: ${task()}\n  c: ${task()}\n  d: ${task()}\n`,
    );
    assert.deepEqual(compilePipelineGraph(spec).parents, { a: [], b: [], c: ["a", "b"], d: ["a", "b"] });
  });

  it("adds depends_on edges once, after the list edges", () => {
    const spec = parsePipelineFile(
      `group: [a, b, c]\nchord: [d]\ntasks:\n  a: ${task()}\n  b: ${task(", depends_on: [a]")}\n` +
        `  c: ${task(", depends_on: [b, a, b]")}\n  d: ${task(", depends_on: [a, c]")}\n`,
    );
    const graph = compilePipelineGraph(spec);
    assert.deepEqual(graph.parents, { a: [], b: ["a"], c: ["b", "a"], d: ["a", "b", "c"] });
    assert.deepEqual(topologicalOrder(graph), ["a", "b", "c", "d"]);
  });

  it("reads depends_on as a single string and inherit_artefacts as a boolean", () => {
    const spec = parsePipelineFile(
      `chain: [a, b]\ntasks:\n  a: ${task()}\n  b: ${task(", depends_on: a, inherit_artefacts: yes")}\n`,
    );
    assert.deepEqual(spec.tasks["b"]?.dependsOn, ["a"]);
    assert.equal(spec.tasks["b"]?.inheritArtefacts, true);
    assert.equal(spec.tasks["a"]?.inheritArtefacts, false);
  });

  it("orders members topologically, ready members in file order", () => {
    const spec = parsePipelineFile(
      `group: [a, b, c]\ntasks:\n  a: ${task(", depends_on: [c]")}\n  b: ${task()}\n  c: ${task(", depends_on: [b]")}\n`,
    );
    assert.deepEqual(topologicalOrder(compilePipelineGraph(spec)), ["b", "c", "a"]);
  });

  it("refuses a cycle with its keys", () => {
    assertSpecError(
      () =>
        parsePipelineFile(
          `group: [a, b, c]\ntasks:\n  a: ${task(", depends_on: [c]")}\n  b: ${task(", depends_on: [a]")}\n  c: ${task(", depends_on: [b]")}\n`,
          "p.yaml",
        ),
      'p.yaml: field "tasks.a.depends_on": dependency cycle: "a" → "c" → "b" → "a" (each waits for the next)',
      "tasks.a.depends_on",
    );
    assertSpecError(
      () => parsePipelineFile(`chain: [a, b]\ntasks:\n  a: ${task(", depends_on: [b]")}\n  b: ${task()}\n`),
      'field "tasks.a.depends_on": dependency cycle: "a" → "b" → "a" (each waits for the next)',
    );
    assertSpecError(
      () => parsePipelineFile(`group: [a]\ntasks:\n  a: ${task(", depends_on: [a]")}\n`),
      'field "tasks.a.depends_on": dependency cycle: "a" → "a" (each waits for the next)',
    );
  });

  it("refuses a dependency on a key that is not a member", () => {
    assertSpecError(
      () => parsePipelineFile(`group: [a, b]\ntasks:\n  a: ${task(", depends_on: [b, bb]")}\n  b: ${task()}\n`),
      'field "tasks.a.depends_on[1]": no task "bb" in the pipeline, did you mean "b"?',
      "tasks.a.depends_on[1]",
    );
  });

  it("refuses a task that no list names", () => {
    assertSpecError(
      () => parsePipelineFile(`chain: [a]\ntasks:\n  a: ${task()}\n  template: ${task()}\n`),
      'field "tasks.template": task "template" is not listed in chain, group or chord (the original dropped it silently)',
      "tasks.template",
    );
  });

  it("refuses a bad depends_on value", () => {
    assertSpecError(
      () => parsePipelineFile(`chain: [a]\ntasks:\n  a: ${task(", depends_on: {x: 1}")}\n`),
      'field "tasks.a.depends_on": expected a list of strings, got a mapping',
    );
    assertSpecError(
      () => parsePipelineFile(`chain: [a]\ntasks:\n  a: ${task(", inherit_artefacts: [1]")}\n`),
      'field "tasks.a.inherit_artefacts": expected true or false, got a list',
    );
  });

  it("validates a spec from the wire the same way", () => {
    const spec = parsePipelineFile(`chain: [a, b]\ntasks:\n  a: ${task()}\n  b: ${task()}\n`);
    assert.deepEqual(validatePipelineSpec(spec), []);
    spec.tasks["a"]!.dependsOn = ["b"];
    assert.deepEqual(validatePipelineSpec(spec), [
      { field: "tasks.a.depends_on", message: 'dependency cycle: "a" → "b" → "a" (each waits for the next)' },
    ]);
  });
});
