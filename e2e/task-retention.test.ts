import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ArtefactService, EventService, TaskService, TaskSpecSchema, TaskStatus } from "@mottainai/proto";
import { adminClient, cleanupAll, registrationToken, startAgent, startServer, waitFor, type ServerProc } from "./harness.js";

/** Every file under dir, recursively, by name. */
const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [e.name]));

/** Server-side task retention (--task-retention), run before each blob collection. */
describe("task retention (server + agent processes)", function () {
  this.timeout(90_000);
  let server: ServerProc;

  before(async () => {
    server = await startServer({ args: ["--task-retention", "2s", "--gc-interval", "1s", "--blob-retention", "0"] });
    await startAgent(server, { registrationToken: await registrationToken(server), name: "retention-agent" });
  });
  after(cleanupAll);

  it("removes a finished task with its log and artefacts once it ended longer ago than the retention; waiting tasks stay", async () => {
    const tasks = adminClient(server, TaskService);
    const { task: old } = await tasks.createTask({
      spec: create(TaskSpecSchema, {
        name: "old",
        type: "host",
        script: ["echo kept-for-a-while", "mkdir -p artefacts", "echo retention-artefact > artefacts/out.txt"],
      }),
    });
    // No agent serves this queue: the task waits for ever and must outlive every sweep.
    const { task: waiting } = await tasks.createTask({
      spec: create(TaskSpecSchema, { name: "waits", type: "host", script: ["true"], queue: "nobody" }),
    });
    const done = await waitFor(
      async () => {
        const { task } = await tasks.getTask({ id: old!.id });
        return task?.status === TaskStatus.DONE ? task : undefined;
      },
      30_000,
      () => "the task did not finish",
    );
    const { artefacts } = await adminClient(server, ArtefactService).listArtefacts({ taskId: done.id });
    assert.deepEqual(
      artefacts.map((a) => a.path),
      ["out.txt"],
    );
    const sha256 = artefacts[0]!.sha256;
    assert.ok(
      filesUnder(join(server.dataDir, "blobs")).some((name) => name.startsWith(sha256)),
      "the artefact's blob is stored",
    );

    await waitFor(
      async () => {
        try {
          await tasks.getTask({ id: done.id });
          return false;
        } catch (err) {
          return ConnectError.from(err).code === Code.NotFound;
        }
      },
      30_000,
      () => "the finished task was not removed",
    );
    const { events } = await adminClient(server, EventService).listEvents({ types: ["task.deleted"], pageSize: 100 });
    assert.deepEqual(
      events.map((e) => [e.subjectId, e.attributes.reason]),
      [[done.id, "retention"]],
    );
    const http = await fetch(`${server.url}/artefacts/${done.id}/out.txt`, {
      headers: { authorization: `Bearer ${server.adminToken}` },
    });
    assert.equal(http.status, 404);
    await waitFor(
      () => !filesUnder(join(server.dataDir, "blobs")).some((name) => name.startsWith(sha256)),
      10_000,
      () => "the artefact's blob was not collected",
    );
    const { task: stillWaiting } = await tasks.getTask({ id: waiting!.id });
    assert.equal(stillWaiting?.status, TaskStatus.WAITING);
  });
});
