import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { TaskService, TaskSpecSchema } from "@mottainai/proto";
import { adminClient, cleanupAll, cli, startCluster, tempDir, type Cluster } from "./harness.js";
import { ORIGINAL_STYLE_ISO, ORIGINAL_STYLE_TASK, originalStyleWarnings } from "./original-style-task.js";

const VIRTUALBOX_WARNING =
  '"virtualbox" runs as a VM task on the libvirt executor (the original used Vagrant and VirtualBox); ' +
  "image names a directory of the agent's libvirt image dir, as for libvirt_vagrant";

/** CreateTask with the original's task files (task_file), a real server and a host agent. */
describe("CreateTask with the original's task files", function () {
  this.timeout(120_000);
  let cluster: Cluster;
  let tasks: ReturnType<typeof adminClient<typeof TaskService>>;

  before(async () => {
    cluster = await startCluster("compat-rpc");
    tasks = adminClient(cluster.server, TaskService);
  });
  after(cleanupAll);

  const rejection = async (promise: Promise<unknown>): Promise<[Code, string]> => {
    try {
      await promise;
    } catch (err) {
      const error = ConnectError.from(err);
      return [error.code, error.rawMessage];
    }
    assert.fail("expected the call to fail");
  };

  it("parses task_file on the server, applies spec's set fields over it and returns every warning", async () => {
    const taskFile = [
      "name: from-file",
      "type: host",
      "directory: /",
      "artefact_path: /out",
      "plan: nightly",
      "colour: red",
      "script: [echo one]",
      "script: [echo two]",
      "",
    ].join("\n");
    const response = await tasks.createTask({
      taskFile,
      taskFileName: "task.yaml",
      spec: create(TaskSpecSchema, { name: "from-flags", queue: "general" }),
    });
    assert.deepEqual(response.warnings, [
      'task.yaml: line 8: field "script": duplicate key (first at line 7): the last value is used, as in the original',
      'task.yaml: line 5: field "plan": ignored: the original\'s tools read it beside "planned"; the task runs without it',
      'task.yaml: line 6: field "colour": unknown key, ignored as in the original',
    ]);
    const spec = response.task?.spec;
    assert.equal(spec?.name, "from-flags");
    assert.equal(spec?.directory, ".");
    assert.equal(spec?.artefactPath, "out");
    assert.deepEqual(spec?.script, ["echo two"]);
    await tasks.stopTask({ id: response.task?.id ?? "" }).catch(() => undefined);
  });

  it("names the file and the field in InvalidArgument, and the default file name is task_file", async () => {
    assert.deepEqual(
      await rejection(tasks.createTask({ taskFile: "type: host\nscript: [x]\ntimeout: soon\n", taskFileName: "t.yaml" })),
      [Code.InvalidArgument, 'task_file: t.yaml: field "timeout": expected a number of seconds, got "soon"'],
    );
    assert.deepEqual(await rejection(tasks.createTask({ taskFile: "type: docker\nscript: [x]\nimgae: a\n" })), [
      Code.InvalidArgument,
      'task_file: task_file: field "imgae": unknown key, did you mean "image"?',
    ]);
    assert.deepEqual(await rejection(tasks.createTask({})), [
      Code.InvalidArgument,
      "spec: a task spec or a task_file is required",
    ]);
    assert.deepEqual(
      await rejection(tasks.createTask({ spec: create(TaskSpecSchema, { type: "host", script: ["x"], directory: "/a/../.." }) })),
      [Code.InvalidArgument, 'spec.directory: must stay inside the checkout, got "/a/../.."'],
    );
  });

  it("warns about virtualbox specs from the wire and stores / paths relative to the checkout", async () => {
    const response = await tasks.createTask({
      spec: create(TaskSpecSchema, { type: "virtualbox", image: "debian", script: ["x"], storagePath: "/in" }),
    });
    assert.deepEqual(response.warnings, [`field "spec.type": ${VIRTUALBOX_WARNING}`]);
    assert.equal(response.task?.spec?.storagePath, "in");
    assert.equal(response.task?.waitingReason, 'no connected agent offers executor libvirt (tasks of type "virtualbox" need it)');
    await tasks.stopTask({ id: response.task?.id ?? "" });
  });

  it("runs an original-style task file on the host executor to done/success, with exact log and artefact bytes", async () => {
    const path = cluster.file("original.yaml", ORIGINAL_STYLE_TASK.replace("TYPE", "host"));
    const created = await cli(["task", "create", "-f", path], cluster.env);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(
      created.stderr,
      originalStyleWarnings(path)
        .map((w) => `warning: ${w}\n`)
        .join(""),
    );
    const id = created.stdout.toString().trim();
    const log = await cli(["task", "log", id, "--follow"], cluster.env);
    assert.equal(log.code, 0, log.stderr);
    const lines = log.stdout.toString().split("\n");
    assert.deepEqual(lines.slice(0, 6), ["URL=http://mirror/?a=b&c=d==", "artefacts in out", ".", "..", "out", "storage"]);
    assert.equal(lines[6], "Uploading artefacts: 1 file, 0.0 MiB");
    assert.match(lines[7] ?? "", /^Uploaded artefacts: 1 file, 0\.0 MiB in \d+\.\d s$/);
    assert.deepEqual(lines.slice(8), [""]);
    const shown = await tasks.getTask({ id });
    assert.deepEqual([shown.task?.status, shown.task?.result, shown.task?.exitCode], [4, 1, 0]);
    assert.equal(shown.task?.spec?.directory, ".");
    assert.equal(shown.task?.spec?.artefactPath, "out");
    const into = tempDir("original-download");
    const download = await cli(["task", "download", id, "--to", into], cluster.env);
    assert.equal(download.code, 0, download.stderr);
    assert.deepEqual(readFileSync(join(into, "iso/image.iso")), ORIGINAL_STYLE_ISO);
  });

  it("says in task show that no connected agent offers executor lxd for an lxd task", async () => {
    const response = await tasks.createTask({
      taskFile: "name: container\ntype: lxd\nimage: busybox\nscript: [true]\n",
    });
    assert.deepEqual(response.warnings, []);
    const id = response.task?.id ?? "";
    const show = await cli(["task", "show", id], cluster.env);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout.toString(), /^status: +waiting$/m);
    assert.match(show.stdout.toString(), /^waiting: +no connected agent offers executor lxd \(tasks of type "lxd" need it\)$/m);
    await tasks.stopTask({ id });
  });
});
