import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  AgentService,
  ArtefactService,
  ConnectRequestSchema,
  NodeService,
  PROTOCOL_VERSION,
  TaskResult,
  TaskService,
  UploadArtefactRequestSchema,
  type ConnectRequest,
  type TaskAssignment,
} from "@mottainai/proto";
import {
  adminClient,
  cleanupAll,
  cli,
  registrationToken,
  startCluster,
  tempDir,
  tokenClient,
  type Cluster,
  type ServerProc,
} from "./harness.js";

const sha256 = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex");

/** Lines "1\n" … "n\n": content a script makes with `seq` and the test can compute. */
const seqBytes = (n: number) => Array.from({ length: n }, (_, i) => `${i + 1}\n`).join("");

interface ArtefactJson {
  taskId: string;
  path: string;
  size: string;
  sha256: string;
}

/** End to end: a host task's artefacts go from the agent to the server and back out through the CLI and HTTP. */
describe("artefacts (server + agent + CLI processes)", function () {
  this.timeout(120_000);
  let server: ServerProc;
  let env: Record<string, string>;
  let file: Cluster["file"];

  before(async () => {
    ({ server, env, file } = await startCluster("e2e-artefacts"));
  });
  after(cleanupAll);

  /** Creates a task from YAML, waits for its end and returns its id, log and JSON view. */
  const runTask = async (name: string, yaml: string) => {
    const created = await cli(["task", "create", "-f", file(`${name}.yaml`, yaml)], env);
    assert.equal(created.code, 0, created.stderr);
    const id = created.stdout.toString().trim();
    const log = await cli(["task", "log", id, "--follow"], env);
    assert.equal(log.code, 0, log.stderr);
    const shown = await cli(["task", "show", id, "--json"], env);
    return { id, log: log.stdout.toString(), task: JSON.parse(shown.stdout.toString()) as Record<string, unknown> };
  };

  const artefactsOf = async (id: string): Promise<ArtefactJson[]> => {
    const r = await cli(["task", "artefacts", id, "--json"], env);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout.toString()) as ArtefactJson[];
  };

  let producer = "";

  it("uploads the files artefact_push_filters keep; task artefacts lists exactly those", async () => {
    const { id, log, task } = await runTask(
      "producer",
      [
        "name: producer",
        "type: host",
        "artefact_push_filters:",
        "  - '\\.tbz2$'",
        "  - '^docs/'",
        "script:",
        '  - mkdir -p "$MOTTAINAI_ARTEFACT_PATH/pkgs/sub" "$MOTTAINAI_ARTEFACT_PATH/docs" "$MOTTAINAI_ARTEFACT_PATH/logs"',
        '  - printf alpha > "$MOTTAINAI_ARTEFACT_PATH/pkgs/a.tbz2"',
        '  - seq 1 200000 > "$MOTTAINAI_ARTEFACT_PATH/pkgs/sub/b.tbz2"',
        '  - echo readme > "$MOTTAINAI_ARTEFACT_PATH/docs/README"',
        '  - echo noise > "$MOTTAINAI_ARTEFACT_PATH/logs/build.log"',
        '  - echo skipped > "$MOTTAINAI_ARTEFACT_PATH/pkgs/a.tbz2.sig"',
        "",
      ].join("\n"),
    );
    assert.equal(task.result, "TASK_RESULT_SUCCESS", log);
    producer = id;
    const b = seqBytes(200000);
    assert.deepEqual(
      (await artefactsOf(id)).map((a) => [a.path, a.size, a.sha256]),
      [
        ["docs/README", "7", sha256("readme\n")],
        ["pkgs/a.tbz2", "5", sha256("alpha")],
        ["pkgs/sub/b.tbz2", String(b.length), sha256(b)],
      ],
    );
    assert.match(log, /^Uploading artefacts: 3 files, 1\.2 MiB \(2 filtered out by artefact_push_filters\)$/m);
    const table = (await cli(["task", "artefacts", id], env)).stdout.toString();
    assert.match(table, new RegExp(`^pkgs/a\\.tbz2 +5 +${sha256("alpha")}$`, "m"));
  });

  it("task download fetches identical bytes, one path or all, and resumes a partial file", async () => {
    const dir = tempDir("download");
    let r = await cli(["task", "download", producer, "--to", dir], env);
    assert.equal(r.code, 0, r.stderr);
    const b = seqBytes(200000);
    assert.equal(readFileSync(join(dir, "pkgs/sub/b.tbz2"), "utf8"), b);
    assert.equal(readFileSync(join(dir, "pkgs/a.tbz2"), "utf8"), "alpha");
    assert.equal(readFileSync(join(dir, "docs/README"), "utf8"), "readme\n");
    // An interrupted download leaves a prefix: the next run fetches the rest only.
    truncateSync(join(dir, "pkgs/sub/b.tbz2"), 1000);
    r = await cli(["task", "download", producer, "--path", "pkgs/sub/b.tbz2", "--to", dir], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(dir, "pkgs/sub/b.tbz2"), "utf8"), b);
    // A prefix that is not the file's is detected by the sha256 and removed.
    writeFileSync(join(dir, "pkgs/a.tbz2"), "xx");
    r = await cli(["task", "download", producer, "--path", "pkgs/a.tbz2", "--to", dir], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /do not match/);
    r = await cli(["task", "download", producer, "--path", "pkgs/a.tbz2", "--to", dir], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(dir, "pkgs/a.tbz2"), "utf8"), "alpha");
  });

  it("serves artefacts over plain HTTP with Range", async () => {
    const res = await fetch(`${server.url}/artefacts/${producer}/pkgs/a.tbz2`, {
      headers: { authorization: `Bearer ${server.adminToken}`, range: "bytes=1-3" },
    });
    assert.equal(res.status, 206);
    assert.equal(await res.text(), "lph");
    const anonymous = await fetch(`${server.url}/artefacts/${producer}/pkgs/a.tbz2`);
    assert.equal(anonymous.status, 401);
  });

  it("uploads nothing for a failed task with disable_push_on_failure, and pushes by default", async () => {
    const script = ["script:", '  - echo out > "$MOTTAINAI_ARTEFACT_PATH/out.txt"', "  - exit 4", ""];
    const off = await runTask("nopush", ["name: nopush", "type: host", "disable_push_on_failure: true", ...script].join("\n"));
    assert.equal(off.task.result, "TASK_RESULT_FAILED");
    assert.deepEqual(await artefactsOf(off.id), []);
    const on = await runTask("push", ["name: push", "type: host", ...script].join("\n"));
    assert.equal(on.task.result, "TASK_RESULT_FAILED");
    assert.deepEqual(
      (await artefactsOf(on.id)).map((a) => a.path),
      ["out.txt"],
    );
    const removed = await cli(["task", "remove", on.id], env);
    assert.equal(removed.code, 0, removed.stderr);
    const gone = await cli(["task", "artefacts", on.id], env);
    assert.match(gone.stderr, /^mottainai: not_found: /);
  });

  it("ends the attempt in error naming the path when an upload is refused", async () => {
    const { task } = await runTask(
      "badname",
      ["name: badname", "type: host", "script:", "  - printf x > \"$MOTTAINAI_ARTEFACT_PATH/bad$(printf '\\001')name\"", ""].join(
        "\n",
      ),
    );
    assert.equal(task.result, "TASK_RESULT_ERROR");
    assert.match(String(task.error), /bad\\u0001name|control characters/);
  });

  it("gives each attempt a token that reaches only its own task, and only while the attempt runs", async () => {
    // This test plays the agent, to hold a task token as a real agent receives it.
    const { credential } = await createClient(NodeService, createGrpcTransport({ baseUrl: server.url })).registerNode({
      registrationToken: await registrationToken(server),
      name: "token-agent",
      hostname: "h",
    });
    const transport = createGrpcTransport({
      baseUrl: server.url,
      interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${credential}`), next(req))],
    });
    const pending: ConnectRequest[] = [];
    let wake: (() => void) | undefined;
    let closed = false;
    const send = (message: NonNullable<MessageInitShape<typeof ConnectRequestSchema>["message"]>) => {
      pending.push(create(ConnectRequestSchema, { message }));
      wake?.();
    };
    async function* outgoing() {
      for (;;) {
        while (pending.length > 0) yield pending.shift()!;
        if (closed) return;
        await new Promise<void>((r) => (wake = r));
      }
    }
    send({
      case: "hello",
      value: {
        protocolVersion: PROTOCOL_VERSION,
        hostname: "h",
        capacity: 1,
        executors: ["host"],
        queues: [{ queue: "general", slots: 1 }],
      },
    });
    const responses = createClient(AgentService, transport).connect(outgoing())[Symbol.asyncIterator]();
    assert.equal((await responses.next()).value?.message.case, "welcome");
    send({ case: "credit", value: { slots: 1 } });
    const { task } = await adminClient(server, TaskService).createTask({
      spec: { name: "held", type: "host", script: ["true"] },
      targetNode: "^token-agent$",
    });
    let assignment: TaskAssignment | undefined;
    while (!assignment) {
      const next = await responses.next();
      if (next.value?.message.case === "assignment") assignment = next.value.message.value;
    }
    assert.equal(assignment.ref?.taskId, task?.id);
    assert.match(assignment.taskToken, /^mtt_/);
    const asTask = createClient(ArtefactService, createGrpcTransport({ baseUrl: server.url }));
    const headers = { authorization: `Bearer ${assignment.taskToken}` };
    const upload = (taskId: string) =>
      asTask.uploadArtefact(
        (async function* () {
          yield create(UploadArtefactRequestSchema, {
            message: { case: "header", value: { taskId, path: "x", size: 1n, sha256: sha256("x") } },
          });
          yield create(UploadArtefactRequestSchema, { message: { case: "chunk", value: Buffer.from("x") } });
        })(),
        { headers },
      );
    const code = async (p: Promise<unknown>) => {
      try {
        await p;
        return "ok";
      } catch (err) {
        return Code[ConnectError.from(err).code];
      }
    };
    assert.equal(await code(upload(task!.id)), "ok");
    assert.equal(await code(upload(producer)), "PermissionDenied");
    assert.equal(await code(asTask.listArtefacts({ taskId: producer }, { headers })), "PermissionDenied");
    assert.equal(
      await code(tokenClient(server.url, assignment.taskToken, TaskService).getTask({ id: task!.id })),
      "Unauthenticated",
    );
    const plain = await fetch(`${server.url}/artefacts/${task!.id}/x`, { headers });
    assert.equal(await plain.text(), "x");
    send({ case: "finished", value: { ref: assignment.ref, result: TaskResult.SUCCESS, exitCode: 0, logSize: 0n } });
    for (;;) {
      const next = await responses.next();
      if (next.done || next.value.message.case === "finishAck") break;
    }
    assert.equal(await code(upload(task!.id)), "Unauthenticated");
    const after = await fetch(`${server.url}/artefacts/${task!.id}/x`, { headers });
    assert.equal(after.status, 401);
    closed = true;
    wake?.();
  });
});
