import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { TaskSpecSchema } from "@mottainai/proto";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type Docker from "dockerode";
import { pino } from "pino";
import { removeLeftoverContainers } from "./docker-cleanup.js";
import { AGENT_LABEL, agentLabelFor, createDockerExecutor, TASK_LABEL, withDefaultTag } from "./docker-executor.js";
import type { Executor, ExecutorInput, ExecutorResult } from "./executor.js";
import { createExecutorFactory } from "./executor-factory.js";
import { workspaceName } from "./host-executor.js";
import { dockerSandbox, TEST_IMAGE } from "./require-docker.js";

const logger = pino({ level: "silent" });

describe("docker executor (real dockerd)", function () {
  const sandbox = dockerSandbox({ prefix: "docker", ci: Boolean(process.env.CI), host: process.env.DOCKER_HOST });
  const { agentLabel } = sandbox;
  let docker: Docker;
  let root: string;
  let seq = 0;
  beforeEach(() => {
    ({ docker, root } = sandbox);
  });

  function make(spec: MessageInitShape<typeof TaskSpecSchema>, environment: Record<string, string> = {}) {
    const output: Buffer[] = [];
    const taskId = `task-${process.pid}-${++seq}`;
    const input: ExecutorInput = {
      taskId,
      attempt: 1,
      spec: create(TaskSpecSchema, { type: "docker", image: TEST_IMAGE, ...spec }),
      environment,
      workspaceRoot: join(root, "work"),
      onOutput: (chunk) => output.push(chunk),
      logger,
    };
    const executor = createDockerExecutor(input, { docker, agentLabel });
    return { executor, output, taskId, workspace: join(root, "work", workspaceName(taskId, 1)) };
  }

  const assertGone = (taskId: string, workspace: string) => sandbox.assertGone(taskId, workspace);

  async function run(
    spec: MessageInitShape<typeof TaskSpecSchema>,
    environment: Record<string, string> = {},
    inspect?: (workspace: string, executor: Executor) => Promise<void>,
  ): Promise<{ text: string; bytes: Buffer; result: ExecutorResult }> {
    const { executor, output, taskId, workspace } = make(spec, environment);
    try {
      await executor.prepare();
      await executor.start();
      const result = await executor.wait();
      await inspect?.(workspace, executor);
      const bytes = Buffer.concat(output);
      return { text: bytes.toString(), bytes, result };
    } finally {
      await executor.destroy();
      await executor.destroy();
      await assertGone(taskId, workspace);
    }
  }

  it("reports exit code 0 with the exact output", async () => {
    const { text, result } = await run({ script: ["echo hello", "echo world"] });
    assert.deepEqual(result, { exitCode: 0 });
    assert.equal(text, "hello\nworld\n");
  });

  it("reports exit code 3 and stops at the failing command (cmd1 && cmd2)", async () => {
    const { text, result } = await run({ script: ["echo before", "exit 3", "echo never"] });
    assert.deepEqual(result, { exitCode: 3 });
    assert.equal(text, "before\n");
  });

  it("runs the script with sh when the image has no bash", async () => {
    const { text } = await run({ script: ['readlink /proc/$$/exe; test -e /bin/bash || echo "no bash"'] });
    assert.equal(text, "/bin/busybox\nno bash\n");
  });

  it("keeps stdout and stderr in order in one stream, bytes exact (no \\r)", async () => {
    const script = ['for i in 1 2 3 4 5 6 7 8 9 10; do echo "out $i"; echo "err $i" >&2; done', "printf 'a\\tb\\r\\nno newline'"];
    const { bytes } = await run({ script });
    let expected = "";
    for (let i = 1; i <= 10; i++) expected += `out ${i}\nerr ${i}\n`;
    expected += "a\tb\r\nno newline";
    assert.equal(bytes.toString("latin1"), expected);
  });

  it("passes large binary output unchanged", async () => {
    const { bytes, result } = await run({ script: ["head -c 3000000 /dev/zero | tr '\\0' 'x'", "printf '\\001\\377\\000end'"] });
    assert.equal(result.exitCode, 0);
    assert.equal(bytes.length, 3_000_000 + 6);
    assert.equal(
      bytes.subarray(0, 3_000_000).every((b) => b === 0x78),
      true,
    );
    assert.deepEqual([...bytes.subarray(3_000_000)], [1, 255, 0, 0x65, 0x6e, 0x64]);
  });

  it("gives the task's environment with values containing '=' intact, and MOTTAINAI_* with in-container paths", async () => {
    const { text } = await run(
      {
        environment: ["URL=http://x/?a=b&c=d", "EMPTY=", "MOTTAINAI_TASK_NAME=overridden"],
        script: ['echo "$URL|$EMPTY|$MOTTAINAI_TASK_ID|$MOTTAINAI_TASK_NAME|$MOTTAINAI_ARTEFACT_PATH|$MOTTAINAI_STORAGE_PATH"'],
        artefactPath: "out/arts",
      },
      {
        MOTTAINAI_TASK_ID: "t1",
        MOTTAINAI_TASK_NAME: "name",
        MOTTAINAI_ARTEFACT_PATH: "out/arts",
        MOTTAINAI_STORAGE_PATH: "storage",
      },
    );
    assert.equal(text, "http://x/?a=b&c=d||t1|overridden|/mottainai/workspace/out/arts|/mottainai/workspace/storage\n");
  });

  it("runs in `directory` inside the mounted workspace", async () => {
    const { text } = await run({ directory: "src/sub", script: ["pwd", "ls -d ../../artefacts ../../storage"] });
    assert.equal(text, "/mottainai/workspace/src/sub\n../../artefacts\n../../storage\n");
  });

  it("rejects a directory leaving the workspace, naming the field", async () => {
    const { executor, taskId, workspace } = make({ directory: "../x", script: ["true"] });
    await assert.rejects(executor.prepare(), /^Error: directory: must stay inside the workspace/);
    await executor.destroy();
    await assertGone(taskId, workspace);
  });

  it("leaves the artefacts the script wrote in the workspace on the host, bytes exact, until destroy", async () => {
    let content: Buffer | undefined;
    const { result } = await run(
      { artefactPath: "arts", script: ['printf "line1\\nbin\\001\\377" > "$MOTTAINAI_ARTEFACT_PATH/out.bin"'] },
      {},
      async (workspace, executor) => {
        const collected = await executor.collect();
        assert.equal(collected.artefactDir, join(workspace, "arts"));
        content = readFileSync(join(workspace, "arts", "out.bin"));
      },
    );
    assert.deepEqual(result, { exitCode: 0 });
    assert.deepEqual(content, Buffer.from("line1\nbin\x01\xff", "latin1"));
  });

  it("runs an entrypoint with the script items as its arguments", async () => {
    const { text, result } = await run({ entrypoint: ["/bin/echo", "-n"], script: ["a b", "c"] });
    assert.deepEqual(result, { exitCode: 0 });
    assert.equal(text, "a b c");
  });

  it("cancel stops a running `sleep 30` within the grace", async () => {
    const { executor, output, taskId, workspace } = make({ script: ["echo started", "sleep 30"] });
    const began = Date.now();
    try {
      await executor.prepare();
      await executor.start();
      while (!Buffer.concat(output).toString().includes("started")) await new Promise((r) => setTimeout(r, 20));
      executor.cancel(1000);
      executor.cancel(1000);
      const result = await executor.wait();
      assert.equal(result.exitCode, null);
      assert.ok(result.signal === "SIGTERM" || result.signal === "SIGKILL", `ended by a signal: ${JSON.stringify(result)}`);
      assert.ok(Date.now() - began < 20_000, "ended well before the sleep");
    } finally {
      await executor.destroy();
      await assertGone(taskId, workspace);
    }
  });

  it("cancel before start makes start a no-op", async () => {
    const { executor, taskId, workspace } = make({ script: ["sleep 30"] });
    await executor.prepare();
    executor.cancel(0);
    await executor.start();
    assert.deepEqual(await executor.wait(), { exitCode: null, error: "cancelled before the script started" });
    await executor.destroy();
    await assertGone(taskId, workspace);
  });

  it("destroy while running removes the container", async () => {
    const { executor, taskId, workspace } = make({ script: ["sleep 30"] });
    await executor.prepare();
    await executor.start();
    await executor.destroy();
    const result = await executor.wait();
    assert.equal(result.exitCode === 0, false);
    await assertGone(taskId, workspace);
  });

  it("fails prepare clearly for an image that is not local and cannot be pulled", async () => {
    const { executor, output, taskId, workspace } = make({ image: "mottainai-test/does-not-exist:nope", script: ["true"] });
    await assert.rejects(
      executor.prepare(),
      /^Error: image: "mottainai-test\/does-not-exist:nope" is not on this agent's engine and cannot be pulled: /,
    );
    assert.match(Buffer.concat(output).toString(), /^Pulling image mottainai-test\/does-not-exist:nope\n/);
    await executor.destroy();
    await assertGone(taskId, workspace);
  });

  it("requires an image", async () => {
    const { executor } = make({ image: "", script: ["true"] });
    await assert.rejects(executor.prepare(), /^Error: image: a docker task needs an image/);
    await executor.destroy();
  });

  it("labels the container with task, attempt and agent", async () => {
    const { executor, taskId, workspace } = make({ script: ["sleep 30"] });
    try {
      await executor.prepare();
      const [info] = await docker.listContainers({ all: true, filters: { label: [`${TASK_LABEL}=${taskId}`] } });
      assert.deepEqual(info?.Labels, { "mottainai.task": taskId, "mottainai.attempt": "1", "mottainai.agent": agentLabel });
      assert.equal(info?.HostConfig.NetworkMode, "none");
    } finally {
      await executor.destroy();
      await assertGone(taskId, workspace);
    }
  });

  it("is created by the executor factory for kind docker", async () => {
    const factory = createExecutorFactory({ docker: { docker, agentLabel } });
    const output: Buffer[] = [];
    const executor = factory("docker", {
      taskId: "factory",
      attempt: 2,
      spec: create(TaskSpecSchema, { type: "docker_execute", image: TEST_IMAGE, script: ["echo via factory"] }),
      environment: {},
      workspaceRoot: join(root, "work"),
      onOutput: (chunk) => output.push(chunk),
      logger,
    });
    assert.ok(executor);
    assert.equal(executor.kind, "docker");
    try {
      await executor.prepare();
      await executor.start();
      assert.deepEqual(await executor.wait(), { exitCode: 0 });
      assert.equal(Buffer.concat(output).toString(), "via factory\n");
    } finally {
      await executor.destroy();
    }
  });

  describe("removeLeftoverContainers", () => {
    it("removes this agent's containers, running or not, and only those", async () => {
      const mine = `${agentLabel}-leftover`;
      const other = `${agentLabel}-other`;
      const made: Docker.Container[] = [];
      try {
        for (const [label, run] of [
          [mine, true],
          [mine, false],
          [other, false],
        ] as const) {
          const c = await docker.createContainer({
            Image: TEST_IMAGE,
            Cmd: ["sleep", "30"],
            Labels: { [AGENT_LABEL]: label, [TASK_LABEL]: "leftover" },
            HostConfig: { NetworkMode: "none" },
          });
          made.push(c);
          if (run) await c.start();
        }
        const removed = await removeLeftoverContainers(docker, mine, logger);
        assert.deepEqual(removed.sort(), [made[0]!.id, made[1]!.id].sort());
        const left = await docker.listContainers({ all: true, filters: { label: [`${TASK_LABEL}=leftover`] } });
        assert.deepEqual(
          left.map((c) => c.Id),
          [made[2]!.id],
        );
        assert.deepEqual(await removeLeftoverContainers(docker, mine, logger), []);
      } finally {
        for (const c of made) await c.remove({ force: true }).catch(() => undefined);
      }
    });
  });
});

describe("docker executor helpers", () => {
  it("adds :latest only when the image names no tag or digest", () => {
    assert.equal(withDefaultTag("busybox"), "busybox:latest");
    assert.equal(withDefaultTag("localhost:5000/a/b"), "localhost:5000/a/b:latest");
    assert.equal(withDefaultTag("localhost:5000/a/b:1"), "localhost:5000/a/b:1");
    assert.equal(withDefaultTag("a@sha256:00"), "a@sha256:00");
  });

  it("derives a stable agent label per state directory", () => {
    assert.equal(agentLabelFor("/a/b"), agentLabelFor("/a/b/"));
    assert.notEqual(agentLabelFor("/a/b"), agentLabelFor("/a/c"));
    assert.match(agentLabelFor("/a/b"), /^[0-9a-f]{16}$/);
  });
});
