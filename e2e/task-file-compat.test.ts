import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { TaskService, TaskSpecSchema } from "@mottainai/proto";
import { adminClient, cleanupAll, cli, startCluster, type Cluster } from "./harness.js";

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
