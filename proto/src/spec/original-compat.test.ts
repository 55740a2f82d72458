import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { TaskSpecSchema } from "../gen/mottainai/v1/task_pb.js";
import { executorForTaskType } from "../task-types.js";
import {
  checkoutRelativePath,
  normalizeTaskPaths,
  parsePipelineFileWithWarnings,
  parsePlanFileWithWarnings,
  parseTaskFile,
  parseTaskFileWithWarnings,
  SpecError,
  taskSpecWarnings,
  validateTaskSpec,
} from "./index.js";

/** A task file as the original's users wrote them, with every leniency the original allowed. */
const ORIGINAL_STYLE = `name: iso
type: docker
image: sabayon/builder
directory: /
artefact_path: /iso
storage_path: /
plan: weekly-isos
colour: blue
queue: first
script:
  - make iso
queue: isos
environment:
  - URL=http://x/?a=b
`;

function specError(parse: () => unknown): SpecError {
  try {
    parse();
  } catch (error) {
    assert.ok(error instanceof SpecError, `expected a SpecError, got ${String(error)}`);
    return error;
  }
  assert.fail("expected a SpecError, nothing was thrown");
}

describe("the original's task files", () => {
  it("accepts an original-style file and lists every warning once, with file, line and field", () => {
    const { spec, warnings } = parseTaskFileWithWarnings(ORIGINAL_STYLE, "task.yaml");
    assert.equal(spec.directory, ".");
    assert.equal(spec.artefactPath, "iso");
    assert.equal(spec.storagePath, ".");
    assert.equal(spec.queue, "isos");
    assert.deepEqual(spec.environment, ["URL=http://x/?a=b"]);
    assert.deepEqual(warnings, [
      'task.yaml: line 12: field "queue": duplicate key (first at line 9): the last value is used, as in the original',
      'task.yaml: line 7: field "plan": ignored: the original\'s tools read it beside "planned"; the task runs without it',
      'task.yaml: line 8: field "colour": unknown key, ignored as in the original',
    ]);
  });

  it("reads a leading / in directory, artefact_path and storage_path as the checkout root", () => {
    const spec = parseTaskFile("type: host\nscript: [make]\ndirectory: /sub/dir\nartefact_path: //out/pkgs\nstorage_path: /in\n");
    assert.equal(spec.directory, "sub/dir");
    assert.equal(spec.artefactPath, "out/pkgs");
    assert.equal(spec.storagePath, "in");
    assert.equal(parseTaskFile("type: host\nscript: [make]\nartefact_path: /\n").artefactPath, ".");
    assert.equal(parseTaskFile("type: host\nscript: [make]\ndirectory: a/../b\n").directory, "a/../b");
    assert.equal(checkoutRelativePath("/"), ".");
    assert.equal(checkoutRelativePath("rel/x"), "rel/x");
    assert.equal(checkoutRelativePath(""), "");
  });

  it("still refuses .. that leaves the checkout, naming the field and the file", () => {
    const error = specError(() => parseTaskFile("type: host\nscript: [make]\ndirectory: /src/../../etc\n", "task.yaml"));
    assert.equal(error.message, 'task.yaml: field "directory": must stay inside the checkout, got "/src/../../etc"');
    assert.equal(error.field, "directory");
  });

  it("keeps the error, with the suggestion, for a misspelt key", () => {
    const error = specError(() => parseTaskFile("type: host\nscript: [make]\nartefact_pth: out\n", "task.yaml"));
    assert.equal(error.message, 'task.yaml: field "artefact_pth": unknown key, did you mean "artefact_path"?');
  });

  it("takes only keys close to a known one for misspellings: short unrelated words are warnings", () => {
    assert.equal(
      specError(() => parseTaskFile("type: host\nscript: [make]\nnmae: x\n")).message,
      'field "nmae": unknown key, did you mean "name"?',
    );
    assert.equal(
      specError(() => parseTaskFile("type: host\nscript: [make]\nenviroment: [A=1]\n")).message,
      'field "enviroment": unknown key, did you mean "environment"?',
    );
    const { warnings } = parseTaskFileWithWarnings("type: host\nscript: [make]\nnode: x\nenv: y\n");
    assert.deepEqual(warnings, [
      'line 3: field "node": unknown key, ignored as in the original',
      'line 4: field "env": unknown key, ignored as in the original',
    ]);
  });

  it("keeps the error for keys that belong in a plan or pipeline file", () => {
    assert.equal(
      specError(() => parseTaskFile('type: host\nscript: [make]\nplanned: "@daily"\n')).message,
      'field "planned": planned belongs in a plan file',
    );
  });

  it("keeps the last of repeated keys in nested mappings and JSON, with a warning each", () => {
    const { spec, warnings } = parseTaskFileWithWarnings(
      '{"type": "host", "script": ["a"], "labels": {"arch": "x86", "arch": "arm"}, "script": ["b"]}',
    );
    assert.deepEqual(spec.script, ["b"]);
    assert.deepEqual(spec.labels, { arch: "arm" });
    assert.deepEqual(warnings, [
      'line 1: field "labels.arch": duplicate key (first at line 1): the last value is used, as in the original',
      'line 1: field "script": duplicate key (first at line 1): the last value is used, as in the original',
    ]);
  });

  it("runs virtualbox and virtualbox_execute as libvirt VM tasks, with a warning on the type line", () => {
    for (const type of ["virtualbox", "virtualbox_execute"]) {
      assert.equal(executorForTaskType(type), "libvirt");
      const { spec, warnings } = parseTaskFileWithWarnings(`image: debian\ntask: ${type}\nscript: [make]\n`, "vm.yaml");
      assert.equal(spec.type, type);
      assert.deepEqual(warnings, [
        `vm.yaml: line 2: field "type": "${type}" runs as a VM task on the libvirt executor (the original used Vagrant and ` +
          "VirtualBox); image names a directory of the agent's libvirt image dir, as for libvirt_vagrant",
      ]);
    }
    assert.equal(
      specError(() => parseTaskFile("type: virtualbox\nscript: [make]\n")).message,
      'field "image": required for type "virtualbox"',
    );
  });

  it("applies overrides before validating, so flags may complete a file", () => {
    const overrides = create(TaskSpecSchema, { image: "debian", type: "virtualbox", artefactPath: "/out" });
    const { spec, warnings } = parseTaskFileWithWarnings("type: docker\nscript: [make]\nbogus: 1\n", "t.yaml", overrides);
    assert.equal(spec.image, "debian");
    assert.equal(spec.type, "virtualbox");
    assert.equal(spec.artefactPath, "out");
    assert.deepEqual(spec.script, ["make"]);
    assert.deepEqual(warnings, [
      't.yaml: line 3: field "bogus": unknown key, ignored as in the original',
      't.yaml: field "type": "virtualbox" runs as a VM task on the libvirt executor (the original used Vagrant and ' +
        "VirtualBox); image names a directory of the agent's libvirt image dir, as for libvirt_vagrant",
    ]);
    assert.equal(
      specError(() => parseTaskFileWithWarnings("type: docker\nscript: [make]\n", "t.yaml", create(TaskSpecSchema, {}))).message,
      't.yaml: field "image": required for type "docker"',
    );
  });
});

describe("the original's pipeline and plan files", () => {
  it("warns about plan, unknown and repeated keys at the top and in tasks", () => {
    const { spec, warnings } = parsePipelineFileWithWarnings(
      "pipeline_name: p\nplan: x\nowner: me\nchain: [a]\ntasks:\n  a:\n    type: host\n    script: [one]\n    script: [two]\n    colour: red\n",
      "pipeline.yaml",
    );
    assert.deepEqual(spec.tasks.a?.script, ["two"]);
    assert.deepEqual(warnings, [
      'pipeline.yaml: line 9: field "tasks.a.script": duplicate key (first at line 8): the last value is used, as in the original',
      'pipeline.yaml: line 2: field "plan": ignored: the original\'s tools read it beside "planned"; the task runs without it',
      'pipeline.yaml: line 3: field "owner": unknown key, ignored as in the original',
      'pipeline.yaml: line 10: field "tasks.a.colour": unknown key, ignored as in the original',
    ]);
  });

  it("accepts a plan file with a plan key and an unknown key", () => {
    const { spec, warnings } = parsePlanFileWithWarnings(
      'planned: "@daily"\nplan: nightly\ntype: host\nscript: [make]\ndirectory: /src\nnotes: hi\n',
      "plan.yaml",
    );
    assert.equal(spec.target.case, "task");
    assert.equal(spec.target.value?.directory, "src");
    assert.deepEqual(warnings, [
      'plan.yaml: line 2: field "plan": ignored: the original\'s tools read it beside "planned"; the task runs without it',
      'plan.yaml: line 6: field "notes": unknown key, ignored as in the original',
    ]);
  });
});

describe("specs from the wire", () => {
  it("accepts leading / paths, which normalizeTaskPaths makes checkout-relative", () => {
    const spec = create(TaskSpecSchema, { type: "host", script: ["x"], directory: "/", artefactPath: "/iso", storagePath: "s" });
    assert.deepEqual(validateTaskSpec(spec), []);
    const normal = normalizeTaskPaths(spec);
    assert.deepEqual([normal.directory, normal.artefactPath, normal.storagePath], [".", "iso", "s"]);
    assert.equal(spec.artefactPath, "/iso");
  });

  it("warns about remapped types only", () => {
    assert.deepEqual(taskSpecWarnings(create(TaskSpecSchema, { type: "libvirt_vagrant" })), []);
    assert.deepEqual(
      taskSpecWarnings(create(TaskSpecSchema, { type: "virtualbox" })).map((w) => w.field),
      ["type"],
    );
  });
});
