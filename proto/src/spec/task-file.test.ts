import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { TaskSpecSchema, type TaskSpec } from "../gen/mottainai/v1/task_pb.js";
import { parsePipelineFile, parsePlanFile, parseTaskFile, SpecError, splitEnvironmentEntry, validateTaskSpec } from "./index.js";
import { executorForTaskType, TASK_TYPES } from "../task-types.js";

const ORIGINAL_TASK = `# An original Mottainai task, as the Sabayon build used them.
name: "Build app-misc/foo"
type: docker_execute
image: sabayon/builder-amd64
source: https://github.com/Sabayon/build.git
commit: 0123
directory: sabayon/base
privkey: |
  -----BEGIN KEY-----
  abc
  -----END KEY-----
script:
  - |
    set -e
    echo "building $PKG"
  - make build
  - make test
environment:
  - PKG=app-misc/foo
  - URL=http://x/?a=b&c=d
  - EMPTY=
  - A=b=c
binds:
  - /var/cache/distfiles:/distfiles
artefact_path: out/pkgs
artefact_push_filters:
  - '\\.tbz2$'
storage: "a, b"
storage_path: store
namespace: sabayon, sabayon-testing
namespace_filters: ["^packages/"]
namespace_merged: "false"
root_task: 5f3e1c
tag_namespace: 2024.10
publish_mode: append
queue: 5
retry: "3"
timeout: 3600
eta: 30
cache_image: "yes"
cache_clean: true
prune: ""
disable_push_on_failure: "no"
quota: 10G
labels:
  arch: amd64
  cores: 8
ID: "42"
status: done
result: success
output: "building..."
created_time: "2018-01-01 10:00:00"
`;

const ORIGINAL_TASK_JSON = `{
  "name": "Build app-misc/foo",
  "type": "docker_execute",
  "image": "sabayon/builder-amd64",
  "source": "https://github.com/Sabayon/build.git",
  "commit": "0123",
  "directory": "sabayon/base",
  "privkey": "-----BEGIN KEY-----\\nabc\\n-----END KEY-----\\n",
  "script": ["set -e\\necho \\"building $PKG\\"\\n", "make build", "make test"],
  "environment": ["PKG=app-misc/foo", "URL=http://x/?a=b&c=d", "EMPTY=", "A=b=c"],
  "binds": ["/var/cache/distfiles:/distfiles"],
  "artefact_path": "out/pkgs",
  "artefact_push_filters": ["\\\\.tbz2$"],
  "storage": "a, b",
  "storage_path": "store",
  "namespace": "sabayon, sabayon-testing",
  "namespace_filters": ["^packages/"],
  "namespace_merged": "false",
  "root_task": "5f3e1c",
  "tag_namespace": "2024.10",
  "publish_mode": "append",
  "queue": 5,
  "retry": "3",
  "timeout": 3600,
  "eta": 30,
  "cache_image": "yes",
  "cache_clean": true,
  "prune": "",
  "disable_push_on_failure": "no",
  "quota": "10G",
  "labels": {"arch": "amd64", "cores": 8},
  "ID": "42",
  "status": "done",
  "result": "success",
  "output": "building...",
  "created_time": "2018-01-01 10:00:00"
}`;

const MINIMAL = "type: host\nscript: [make]\n";

function assertOriginalTask(spec: TaskSpec): void {
  const asserted = new Set<string>();
  const field = <K extends keyof TaskSpec>(key: K, expected: TaskSpec[K]): void => {
    asserted.add(key);
    assert.deepEqual(spec[key], expected, `field ${key}`);
  };
  field("name", "Build app-misc/foo");
  field("type", "docker_execute");
  field("image", "sabayon/builder-amd64");
  field("script", ['set -e\necho "building $PKG"\n', "make build", "make test"]);
  field("entrypoint", []);
  field("environment", ["PKG=app-misc/foo", "URL=http://x/?a=b&c=d", "EMPTY=", "A=b=c"]);
  field("source", "https://github.com/Sabayon/build.git");
  field("commit", "0123");
  field("directory", "sabayon/base");
  field("privkey", "-----BEGIN KEY-----\nabc\n-----END KEY-----\n");
  field("binds", ["/var/cache/distfiles:/distfiles"]);
  field("artefactPath", "out/pkgs");
  field("artefactPushFilters", ["\\.tbz2$"]);
  field("storage", ["a", "b"]);
  field("storagePath", "store");
  field("namespace", ["sabayon", "sabayon-testing"]);
  field("namespaceFilters", ["^packages/"]);
  field("namespaceMerged", false);
  field("rootTask", ["5f3e1c"]);
  field("tagNamespace", "2024.10");
  field("publishMode", "append");
  field("queue", "5");
  field("retry", 3);
  field("timeout", 3600);
  field("eta", 30);
  field("cacheImage", true);
  field("cacheClean", true);
  field("prune", false);
  field("disablePushOnFailure", false);
  field("quota", "10G");
  field("labels", { arch: "amd64", cores: "8" });
  field("dependsOn", []);
  field("inheritArtefacts", false);
  assert.equal(spec.$typeName, "mottainai.v1.TaskSpec");
  assert.deepEqual(
    Object.keys(spec)
      .filter((key) => key !== "$typeName" && !asserted.has(key))
      .sort(),
    [],
    "every TaskSpec field is asserted",
  );
}

function specError(parse: () => unknown): SpecError {
  try {
    parse();
  } catch (error) {
    assert.ok(error instanceof SpecError, `expected a SpecError, got ${String(error)}`);
    return error;
  }
  assert.fail("expected a SpecError, nothing was thrown");
}

function assertSpecError(parse: () => unknown, message: string, field?: string): void {
  const error = specError(parse);
  assert.equal(error.message, message);
  if (field !== undefined) assert.equal(error.field, field);
}

describe("parseTaskFile", () => {
  it("reads an original docker_execute task file field by field", () => {
    assertOriginalTask(parseTaskFile(ORIGINAL_TASK, "build.yaml"));
  });

  it("reads the same task written as JSON", () => {
    const fromJson = parseTaskFile(ORIGINAL_TASK_JSON, "build.json");
    assertOriginalTask(fromJson);
    assert.deepEqual(fromJson, parseTaskFile(ORIGINAL_TASK));
  });

  it("applies the defaults and keeps values containing =", () => {
    const spec = parseTaskFile('task: host\nscript: echo hi\nenvironment: ["Q=a==b", "E="]\n');
    assert.equal(spec.type, "host");
    assert.deepEqual(spec.script, ["echo hi"]);
    assert.equal(spec.artefactPath, "artefacts");
    assert.equal(spec.storagePath, "storage");
    assert.equal(spec.namespaceMerged, true);
    assert.equal(spec.queue, "");
    assert.equal(spec.timeout, 0);
    assert.deepEqual(spec.environment, ["Q=a==b", "E="]);
    assert.deepEqual(spec.environment.map(splitEnvironmentEntry), [
      ["Q", "a==b"],
      ["E", ""],
    ]);
  });

  it("accepts an exported task with null lists and empty numeric strings", () => {
    const spec = parseTaskFile(
      '{"ID": "1", "type": "host", "script": ["true"], "binds": null, "environment": null, "retry": "", ' +
        '"eta": "", "artefact_path": "", "storage_path": "", "exit_status": "0", "node_id": "n", "owner_id": "o", ' +
        '"pipeline_id": "", "authhosts": "", "yaml": "", "start_time": "", "end_time": "", "last_update_time": ""}',
    );
    assert.deepEqual(spec.binds, []);
    assert.deepEqual(spec.environment, []);
    assert.equal(spec.retry, 0);
    assert.equal(spec.eta, 0);
    assert.equal(spec.artefactPath, "artefacts");
    assert.equal(spec.storagePath, "storage");
  });

  it("keeps numbers in string fields as written", () => {
    const spec = parseTaskFile(`${MINIMAL}name: 1.10\ncommit: 1234\nqueue: 5\nquota: 1e3\n`);
    assert.equal(spec.name, "1.10");
    assert.equal(spec.commit, "1234");
    assert.equal(spec.queue, "5");
    assert.equal(spec.quota, "1e3");
  });

  it("reads the original's boolean strings", () => {
    const read = (value: string): boolean => parseTaskFile(`${MINIMAL}prune: ${value}\n`).prune;
    assert.deepEqual(['""', '"false"', "no", '"0"', "0", "false", "off", "NO", '"true"', "yes", "1", "true", '"x"'].map(read), [
      false,
      false,
      false,
      false,
      false,
      false,
      false,
      false,
      true,
      true,
      true,
      true,
      true,
    ]);
  });

  it("reads numeric strings in retry, timeout and eta", () => {
    const spec = parseTaskFile(`${MINIMAL}retry: "2"\ntimeout: "1.5"\neta: " 60 "\n`);
    assert.equal(spec.retry, 2);
    assert.equal(spec.timeout, 1.5);
    assert.equal(spec.eta, 60);
  });

  it("reads lists or comma strings for storage, namespace and root_task, and a single entrypoint string", () => {
    const spec = parseTaskFile(`${MINIMAL}storage: [" x ", y]\nnamespace: "n1,, n2 ,"\nroot_task: [abc]\nentrypoint: /bin/sh\n`);
    assert.deepEqual(spec.storage, ["x", "y"]);
    assert.deepEqual(spec.namespace, ["n1", "n2"]);
    assert.deepEqual(spec.rootTask, ["abc"]);
    assert.deepEqual(spec.entrypoint, ["/bin/sh"]);
  });

  it("accepts environment as a mapping", () => {
    const spec = parseTaskFile(`${MINIMAL}environment:\n  URL: http://x/?a=b\n  N: 08\n  EMPTY:\n`);
    assert.deepEqual(spec.environment, ["URL=http://x/?a=b", "N=08", "EMPTY="]);
  });

  it("resolves anchors and << merge keys", () => {
    const spec = parseTaskFile("type: host\n<<: {script: [make], queue: q}\nqueue: mine\ncache_image: &on true\nprune: *on\n");
    assert.deepEqual(spec.script, ["make"]);
    assert.equal(spec.queue, "mine");
    assert.equal(spec.prune, true);
  });

  it("accepts type and task when they agree", () => {
    assert.equal(parseTaskFile(`${MINIMAL}task: host\n`).type, "host");
  });

  it("names an unknown key with a suggestion and the file", () => {
    const error = specError(() => parseTaskFile(`${MINIMAL}imgae: foo\n`, "task.yaml"));
    assert.equal(error.message, 'task.yaml: field "imgae": unknown key, did you mean "image"?');
    assert.equal(error.name, "SpecError");
    assert.equal(error.field, "imgae");
    assert.equal(error.file, "task.yaml");
    assert.equal(error.reason, 'unknown key, did you mean "image"?');
  });

  it("rejects a bad timeout", () => {
    assertSpecError(
      () => parseTaskFile(`${MINIMAL}timeout: abc\n`),
      'field "timeout": expected a number of seconds, got "abc"',
      "timeout",
    );
    assertSpecError(
      () => parseTaskFile(`${MINIMAL}timeout: -5\n`),
      'field "timeout": expected a non-negative number of seconds, got -5',
    );
  });

  it("rejects bad retry and eta values", () => {
    assertSpecError(() => parseTaskFile(`${MINIMAL}retry: 1.5\n`), 'field "retry": expected a non-negative integer, got 1.5');
    assertSpecError(
      () => parseTaskFile(`${MINIMAL}eta: "-1"\n`),
      'field "eta": expected a non-negative integer number of seconds, got "-1"',
    );
  });

  it("rejects an environment entry without = and one with a bad name", () => {
    assertSpecError(
      () => parseTaskFile(`${MINIMAL}environment:\n  - A=1\n  - NOVALUE\n`),
      'field "environment[1]": expected "NAME=value", got "NOVALUE"',
      "environment[1]",
    );
    assertSpecError(
      () => parseTaskFile(`${MINIMAL}environment: ["A=1", "B=2", "1X=3"]\n`),
      'field "environment[2]": invalid variable name "1X": use letters, digits and _, not starting with a digit',
    );
  });

  it("rejects an unknown type and lists the known ones", () => {
    assertSpecError(
      () => parseTaskFile("type: dockr\nimage: x\nscript: [make]\n"),
      'field "type": unknown task type "dockr", did you mean "docker"? ' +
        "(known types: docker, docker_execute, libvirt, libvirt_execute, libvirt_vagrant, virtualbox, virtualbox_execute, lxd, host, fake)",
      "type",
    );
  });

  it("rejects a missing type, a missing image and a missing script", () => {
    assertSpecError(
      () => parseTaskFile("script: [make]\n"),
      'field "type": required, one of: docker, docker_execute, libvirt, libvirt_execute, libvirt_vagrant, virtualbox, virtualbox_execute, lxd, host, fake',
    );
    assertSpecError(() => parseTaskFile("type: lxd\nscript: [make]\n"), 'field "image": required for type "lxd"');
    assertSpecError(() => parseTaskFile("type: host\n"), 'field "script": a task needs a script or an entrypoint');
  });

  it("rejects .. that climbs out of the checkout", () => {
    assertSpecError(
      () => parseTaskFile(`${MINIMAL}storage_path: a/../../b\n`),
      'field "storage_path": must stay inside the checkout, got "a/../../b"',
      "storage_path",
    );
    assertSpecError(
      () => parseTaskFile(`${MINIMAL}artefact_path: /../out\n`),
      'field "artefact_path": must stay inside the checkout, got "/../out"',
    );
    assertSpecError(
      () => parseTaskFile(`${MINIMAL}directory: "/.."\n`),
      'field "directory": must stay inside the checkout, got "/.."',
    );
  });

  it("rejects a YAML syntax error with its line", () => {
    const error = specError(() => parseTaskFile("type: host\nscript:\n  - a\n - b\n", "task.yaml"));
    assert.equal(
      error.message,
      "task.yaml: invalid YAML at line 4, column 1: A block sequence may not be used as an implicit map key",
    );
    assert.equal(error.field, "");
  });

  it("rejects a top level that is not a mapping", () => {
    assertSpecError(() => parseTaskFile("- a\n"), "expected a mapping at the top level, got a list", "");
    assertSpecError(() => parseTaskFile(""), "expected a mapping at the top level, got an empty document");
  });

  it("rejects wrong value types, naming what was expected and given", () => {
    assertSpecError(() => parseTaskFile(`${MINIMAL}image: [a]\n`), 'field "image": expected a string, got a list');
    assertSpecError(
      () => parseTaskFile("type: host\nscript:\n  - make\n  - echo a: b\n"),
      'field "script[1]": expected a string, got a mapping (text containing ": " must be quoted)',
    );
    assertSpecError(() => parseTaskFile(`${MINIMAL}prune: [x]\n`), 'field "prune": expected true or false, got a list');
    assertSpecError(
      () => parseTaskFile(`${MINIMAL}labels: [a]\n`),
      'field "labels": expected a mapping of label names to values, got a list',
    );
  });

  it("rejects planned, pipeline keys and conflicting type aliases", () => {
    assertSpecError(() => parseTaskFile(`${MINIMAL}planned: "@daily"\n`), 'field "planned": planned belongs in a plan file');
    assertSpecError(() => parseTaskFile(`${MINIMAL}chain: [a]\n`), 'field "chain": chain belongs in a pipeline file');
    assertSpecError(() => parseTaskFile(`${MINIMAL}task: lxd\n`), 'field "task": "lxd" conflicts with type "host"');
  });

  it("rejects invalid regular expressions and publish modes", () => {
    assertSpecError(
      () => parseTaskFile(`${MINIMAL}artefact_push_filters: ["ok", "("]\n`),
      'field "artefact_push_filters[1]": invalid regular expression /(/: Unterminated group',
    );
    assertSpecError(
      () => parseTaskFile(`${MINIMAL}publish_mode: replace\n`),
      'field "publish_mode": expected "" (replace) or "append", got "replace"',
    );
  });

  it("rejects a self-referencing alias", () => {
    assertSpecError(() => parseTaskFile("a: &a [*a]\n"), 'field "a[0]": alias *a refers to itself');
  });
});

describe("validateTaskSpec", () => {
  it("accepts a spec from the wire with empty paths", () => {
    assert.deepEqual(validateTaskSpec(create(TaskSpecSchema, { type: "fake", script: ["x"] })), []);
  });

  it("returns every issue in field order", () => {
    const spec = create(TaskSpecSchema, {
      type: "docker",
      environment: ["OK=1", "bad"],
      directory: "/abs/../..",
      artefactPath: "a\0b",
      namespaceFilters: ["["],
      storage: [""],
      publishMode: "x",
      retry: 1.5,
      timeout: Number.POSITIVE_INFINITY,
      labels: { "": "x" },
    });
    assert.deepEqual(validateTaskSpec(spec), [
      { field: "image", message: 'required for type "docker"' },
      { field: "script", message: "a task needs a script or an entrypoint" },
      { field: "environment[1]", message: 'expected "NAME=value", got "bad"' },
      { field: "directory", message: 'must stay inside the checkout, got "/abs/../.."' },
      { field: "artefact_path", message: "must not contain a NUL character" },
      { field: "storage[0]", message: "names must not be empty" },
      { field: "namespace_filters[0]", message: "invalid regular expression /[/: Unterminated character class" },
      { field: "publish_mode", message: 'expected "" (replace) or "append", got "x"' },
      { field: "retry", message: "expected a non-negative integer, got 1.5" },
      { field: "timeout", message: "expected a non-negative number of seconds, got Infinity" },
      { field: "labels", message: "label names must not be empty" },
    ]);
  });
});

describe("splitEnvironmentEntry", () => {
  it("splits on the first =", () => {
    assert.deepEqual(splitEnvironmentEntry("URL=http://x/?a=b&c=d"), ["URL", "http://x/?a=b&c=d"]);
    assert.deepEqual(splitEnvironmentEntry("EMPTY="), ["EMPTY", ""]);
    assert.deepEqual(splitEnvironmentEntry("NOVALUE"), ["NOVALUE", ""]);
  });
});

describe("task types", () => {
  it("lists the types and maps each to its executor", () => {
    assert.deepEqual(
      [...TASK_TYPES],
      [
        "docker",
        "docker_execute",
        "libvirt",
        "libvirt_execute",
        "libvirt_vagrant",
        "virtualbox",
        "virtualbox_execute",
        "lxd",
        "host",
        "fake",
      ],
    );
    assert.deepEqual(
      TASK_TYPES.map((type) => executorForTaskType(type)),
      ["docker", "docker", "libvirt", "libvirt", "libvirt", "libvirt", "libvirt", "lxd", "host", "fake"],
    );
    assert.equal(executorForTaskType("podman"), undefined);
    assert.equal(executorForTaskType("constructor"), undefined);
    assert.equal(executorForTaskType("Docker"), undefined);
  });
});

const PIPELINE = `pipeline_name: sabayon
queue: builds
concurrency: 2
chain:
  - fetch
  - build
tasks:
  fetch: &defaults
    type: docker
    image: sabayon/builder
    script: ["git fetch"]
  build:
    <<: *defaults
    script: ["make"]
    timeout: 60
`;

describe("parsePipelineFile", () => {
  it("reads a chain pipeline with merged task defaults", () => {
    const spec = parsePipelineFile(PIPELINE);
    assert.equal(spec.pipelineName, "sabayon");
    assert.equal(spec.queue, "builds");
    assert.equal(spec.concurrency, 2);
    assert.deepEqual(spec.chain, ["fetch", "build"]);
    assert.deepEqual(spec.group, []);
    assert.deepEqual(spec.chord, []);
    assert.deepEqual(Object.keys(spec.tasks), ["fetch", "build"]);
    const build = spec.tasks["build"];
    assert.ok(build);
    assert.equal(build.type, "docker");
    assert.equal(build.image, "sabayon/builder");
    assert.deepEqual(build.script, ["make"]);
    assert.equal(build.timeout, 60);
    assert.equal(build.queue, "");
    assert.deepEqual(spec.tasks["fetch"]?.script, ["git fetch"]);
  });

  it("reads a group with a chord, as JSON, ignoring exported state keys", () => {
    const spec = parsePipelineFile(
      JSON.stringify({
        ID: "p1",
        status: "done",
        owner_id: "u1",
        created_time: "",
        end_time: "",
        group: ["a", "b"],
        chord: ["c"],
        tasks: {
          a: { type: "host", script: ["a"] },
          b: { task: "host", script: ["b"] },
          c: { type: "host", script: ["c"] },
        },
      }),
    );
    assert.deepEqual(spec.group, ["a", "b"]);
    assert.deepEqual(spec.chord, ["c"]);
    assert.equal(spec.tasks["b"]?.type, "host");
  });

  const tasks = "tasks:\n  a: {type: host, script: [a]}\n  b: {type: host, script: [b]}\n";

  it("rejects a reference to a missing task", () => {
    assertSpecError(
      () => parsePipelineFile(`chain: [a, c]\n${tasks}`, "p.yaml"),
      'p.yaml: field "chain[1]": no task "c" in tasks, did you mean "a"?',
      "chain[1]",
    );
  });

  it("rejects both chain and group, neither, a chord without a group and duplicates", () => {
    assertSpecError(
      () => parsePipelineFile(`chain: [a]\ngroup: [b]\n${tasks}`),
      'field "group": a pipeline has a chain or a group, not both',
    );
    assertSpecError(() => parsePipelineFile(tasks), 'field "chain": a pipeline needs a chain or a group of task keys');
    assertSpecError(
      () => parsePipelineFile(`chain: [a]\nchord: [b]\n${tasks}`),
      'field "chord": a chord runs after a group, and this pipeline has no group',
    );
    assertSpecError(
      () => parsePipelineFile(`group: [a, b]\nchord: [a]\n${tasks}`),
      'field "chord[0]": task "a" is already listed at group[0]',
    );
  });

  it("names task fields under tasks.<key>", () => {
    assertSpecError(
      () => parsePipelineFile("chain: [build]\ntasks:\n  build:\n    type: host\n    script: [make, 7, [x]]\n"),
      'field "tasks.build.script[2]": expected a string, got a list',
      "tasks.build.script[2]",
    );
    assertSpecError(
      () => parsePipelineFile("chain: [build]\ntasks:\n  build: {type: host, script: [make], timeout: abc}\n"),
      'field "tasks.build.timeout": expected a number of seconds, got "abc"',
    );
    assertSpecError(
      () => parsePipelineFile("chain: [build]\ntasks:\n  build: {type: host}\n"),
      'field "tasks.build.script": a task needs a script or an entrypoint',
    );
  });

  it("rejects unknown and misplaced top-level keys and a bad concurrency", () => {
    assertSpecError(
      () => parsePipelineFile(`chain: [a]\nchian: [b]\n${tasks}`),
      'field "chian": unknown key, did you mean "chain"?',
    );
    assertSpecError(
      () => parsePipelineFile(`chain: [a]\nimage: x\n${tasks}`),
      'field "image": image belongs in a task under tasks',
    );
    assertSpecError(
      () => parsePipelineFile(`chain: [a]\nconcurrency: -1\n${tasks}`),
      'field "concurrency": expected a non-negative integer, got -1',
    );
  });
});

describe("parsePlanFile", () => {
  it("reads a task plan with a 6-field cron", () => {
    const spec = parsePlanFile(`${MINIMAL}planned: "0 30 2 * * *"\n`);
    assert.equal(spec.planned, "0 30 2 * * *");
    assert.equal(spec.target.case, "task");
    assert.equal(spec.target.value?.$typeName, "mottainai.v1.TaskSpec");
    assert.deepEqual(spec.target.case === "task" ? spec.target.value.script : undefined, ["make"]);
  });

  it("accepts 5-field cron, descriptors and @every", () => {
    for (const planned of [
      "*/15 2-4 * jan-MAR mon,fri",
      "0 0 1 ? * SUN",
      "@daily",
      "@midnight",
      "@every 1h30m",
      "@every 90s",
      "@every 1.5h",
    ]) {
      assert.equal(parsePlanFile(`${MINIMAL}planned: "${planned}"\n`).planned, planned);
    }
  });

  it("reads a pipeline plan", () => {
    const spec = parsePlanFile(`planned: "@weekly"\n${PIPELINE}`);
    assert.equal(spec.planned, "@weekly");
    assert.equal(spec.target.case, "pipeline");
    assert.deepEqual(spec.target.case === "pipeline" ? spec.target.value.chain : undefined, ["fetch", "build"]);
  });

  it("rejects a missing or malformed planned", () => {
    const forms =
      'a cron expression with 6 fields (seconds first) or 5, a descriptor such as @daily, or "@every <duration>" such as "@every 1h30m"';
    assertSpecError(() => parsePlanFile(MINIMAL, "plan.yaml"), `plan.yaml: field "planned": required: ${forms}`, "planned");
    assertSpecError(
      () => parsePlanFile(`${MINIMAL}planned: "* * *"\n`),
      `field "planned": expected ${forms}; got "* * *" (3 fields)`,
    );
    assertSpecError(
      () => parsePlanFile(`${MINIMAL}planned: "0 75 * * * *"\n`),
      'field "planned": invalid minute field "75" (values 0-59) in "0 75 * * * *"',
    );
    assertSpecError(
      () => parsePlanFile(`${MINIMAL}planned: "0 0 * * 8"\n`),
      'field "planned": invalid day of week field "8" (values 0-6 or sun-sat) in "0 0 * * 8"',
    );
    assertSpecError(
      () => parsePlanFile(`${MINIMAL}planned: "@often"\n`),
      'field "planned": unknown schedule "@often": expected one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or "@every <duration>"',
    );
    assertSpecError(
      () => parsePlanFile(`${MINIMAL}planned: "@every soon"\n`),
      'field "planned": invalid duration "soon" after @every: expected a Go duration such as 90s, 15m or 1h30m',
    );
    assertSpecError(
      () => parsePlanFile(`${MINIMAL}planned: "@every 0s"\n`),
      'field "planned": the duration after @every must be longer than zero, got "0s"',
    );
  });

  it("checks the target like a task or pipeline file", () => {
    assertSpecError(() => parsePlanFile(`planned: "@daily"\ngroup: [x]\ntasks: {}\n`), 'field "group[0]": no task "x" in tasks');
    assertSpecError(
      () => parsePlanFile('planned: "@daily"\ntype: host\n'),
      'field "script": a task needs a script or an entrypoint',
    );
  });
});
