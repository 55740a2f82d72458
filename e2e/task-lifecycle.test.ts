import assert from "node:assert/strict";
import { TaskService } from "@mottainai/proto";
import { adminClient, cleanupAll, cli, startCluster, waitFor, type Cluster, type ServerProc } from "./harness.js";

/** End to end: a real server and a real agent (host executor), driven through the real CLI. */
describe("task lifecycle (server + agent + CLI processes)", function () {
  this.timeout(120_000);
  let server: ServerProc;
  let env: Record<string, string>;
  let file: Cluster["file"];

  before(async () => {
    ({ server, env, file } = await startCluster("e2e-agent-1"));
  });
  after(cleanupAll);

  const createTask = async (path: string): Promise<string> => {
    const r = await cli(["task", "create", "-f", path], env);
    assert.equal(r.stderr, "");
    assert.equal(r.code, 0);
    const id = r.stdout.toString().trim();
    assert.match(id, /^[0-9a-f]{16}$/);
    return id;
  };

  const showJson = async (id: string) => {
    const r = await cli(["task", "show", id, "--json"], env);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout.toString()) as Record<string, unknown>;
  };

  it("runs a task and streams its exact output; the result is success", async () => {
    const id = await createTask(
      file(
        "ok.yaml",
        [
          "name: hello",
          "type: host",
          "environment:",
          "  - GREETING=hello=world",
          "script:",
          '  - echo "$GREETING from $MOTTAINAI_TASK_NAME"',
          "  - printf 'out\\n'; printf 'err\\n' >&2; printf 'no newline'",
          "",
        ].join("\n"),
      ),
    );
    const log = await cli(["task", "log", id, "--follow"], env);
    assert.equal(log.code, 0, log.stderr);
    assert.equal(log.stdout.toString(), "hello=world from hello\nout\nerr\nno newline");
    const task = await showJson(id);
    assert.equal(task.status, "TASK_STATUS_DONE");
    assert.equal(task.result, "TASK_RESULT_SUCCESS");
    assert.equal(task.exitCode, 0);
    assert.equal(task.attempt, 1);
    const human = (await cli(["task", "show", id], env)).stdout.toString();
    assert.match(human, /^status: +done$/m);
    assert.match(human, /^result: +success$/m);
  });

  it("keeps a failing script's exit code and reports failed", async () => {
    const id = await createTask(
      file("fail.yaml", "name: fails\ntype: host\nscript:\n  - echo before\n  - exit 3\n  - echo never\n"),
    );
    const log = await cli(["task", "log", id, "--follow"], env);
    assert.equal(log.stdout.toString(), "before\n");
    const task = await showJson(id);
    assert.equal(task.status, "TASK_STATUS_DONE");
    assert.equal(task.result, "TASK_RESULT_FAILED");
    assert.equal(task.exitCode, 3);
  });

  it("rejects a malformed task file naming the field, and creates nothing", async () => {
    const before = JSON.parse((await cli(["task", "list", "--json"], env)).stdout.toString()) as unknown[];
    const path = file("bad.yaml", "name: bad\ntype: host\ntimeout: soon\nscript:\n  - echo hi\n");
    const r = await cli(["task", "create", "-f", path], env);
    assert.equal(r.code, 1);
    assert.equal(r.stdout.length, 0);
    assert.equal(r.stderr, `mottainai: ${path}: field "timeout": expected a number of seconds, got "soon"\n`);
    const after = JSON.parse((await cli(["task", "list", "--json"], env)).stdout.toString()) as unknown[];
    assert.equal(after.length, before.length);
  });

  it("rejects an invalid spec sent by another client with InvalidArgument naming the field", async () => {
    const tasks = adminClient(server, TaskService);
    await assert.rejects(tasks.createTask({ spec: { type: "warp", script: ["true"] } }), (err: Error) => {
      assert.match(err.message, /^\[invalid_argument\] spec\.type: /);
      return true;
    });
  });

  it("accepts an original docker_execute task file unchanged and parses it exactly", async () => {
    const id = await createTask(
      file(
        "original.yaml",
        [
          'name: "Build overlay"',
          "image: sabayon/builder-amd64",
          "type: docker_execute",
          "source: https://github.com/Sabayon/community-repositories.git",
          "namespace: overlay",
          "artefact_path: artefacts",
          "tag_namespace: overlay-build",
          "environment:",
          "  - REPOSITORY_NAME=overlay",
          "  - EMERGE_DEFAULTS_ARGS=--accept-properties=-interactive -t --verbose --oneshot",
          "  - SIGNED_URL=https://example.org/?a=b&c=d==",
          "script:",
          "  - mkdir -p artefacts",
          "  - |",
          "    cd $REPOSITORY_NAME",
          "    ./build.sh 2>&1 | tee ../artefacts/build.log",
          "  - echo done",
          "",
        ].join("\n"),
      ),
    );
    const task = await showJson(id);
    assert.deepEqual(task.spec, {
      name: "Build overlay",
      type: "docker_execute",
      image: "sabayon/builder-amd64",
      script: ["mkdir -p artefacts", "cd $REPOSITORY_NAME\n./build.sh 2>&1 | tee ../artefacts/build.log\n", "echo done"],
      environment: [
        "REPOSITORY_NAME=overlay",
        "EMERGE_DEFAULTS_ARGS=--accept-properties=-interactive -t --verbose --oneshot",
        "SIGNED_URL=https://example.org/?a=b&c=d==",
      ],
      source: "https://github.com/Sabayon/community-repositories.git",
      artefactPath: "artefacts",
      storagePath: "storage",
      namespace: ["overlay"],
      namespaceMerged: true,
      tagNamespace: "overlay-build",
    });
    assert.equal(task.status, "TASK_STATUS_WAITING");
    assert.match(
      String(task.waitingReason),
      /^no connected agent offers executor docker \(tasks of type "docker_execute" need it\)$/,
    );
    const human = (await cli(["task", "show", id], env)).stdout.toString();
    assert.match(human, /^waiting: no connected agent offers executor docker \(tasks of type "docker_execute" need it\)$/m);
    const stop = await cli(["task", "stop", id], env);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal((await showJson(id)).status, "TASK_STATUS_STOPPED");
  });

  it("refuses calls without a token or with a wrong one, and changes nothing", async () => {
    const path = file("anon.yaml", "name: anon\ntype: host\nscript:\n  - echo hi\n");
    const before = JSON.parse((await cli(["task", "list", "--json"], env)).stdout.toString()) as unknown[];
    const anonymous = await cli(["task", "create", "-f", path], { ...env, MOTTAINAI_TOKEN: "" });
    assert.equal(anonymous.code, 1);
    assert.equal(anonymous.stderr, "mottainai: unauthenticated: missing bearer token\n");
    const wrong = await cli(["task", "create", "-f", path], { ...env, MOTTAINAI_TOKEN: "mtk_not-a-real-token" });
    assert.equal(wrong.code, 1);
    assert.equal(wrong.stderr, "mottainai: unauthenticated: invalid or expired token\n");
    const list = await cli(["task", "list"], { ...env, MOTTAINAI_TOKEN: "mtk_wrong" });
    assert.equal(list.code, 1);
    const after = JSON.parse((await cli(["task", "list", "--json"], env)).stdout.toString()) as unknown[];
    assert.equal(after.length, before.length);
  });

  it("stops a running task; it ends stopped with result error", async () => {
    const id = await createTask(file("sleep.yaml", "name: sleeper\ntype: host\nscript:\n  - echo started\n  - sleep 30\n"));
    await waitFor(
      async () => (await showJson(id)).status === "TASK_STATUS_RUNNING",
      20_000,
      () => "task never ran",
    );
    const stop = await cli(["task", "stop", id], env);
    assert.equal(stop.code, 0, stop.stderr);
    const task = await waitFor(
      async () => {
        const t = await showJson(id);
        return t.status === "TASK_STATUS_STOPPED" ? t : undefined;
      },
      10_000,
      () => "task did not stop",
    );
    assert.equal(task?.result, "TASK_RESULT_ERROR");
  });
});
