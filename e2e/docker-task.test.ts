import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { agentLabelFor } from "@mottainai/agent";
import { cleanupAll, cli, registrationToken, startAgent, startServer, tempDir, type ServerProc } from "./harness.js";
import { ORIGINAL_STYLE_ISO, ORIGINAL_STYLE_TASK, originalStyleWarnings } from "./original-style-task.js";

const IMAGE = "mottainai-test/busybox:latest";

/** Whether dockerd answers and the test image exists; in CI their absence fails the suite. */
function dockerReady(): boolean {
  try {
    execFileSync("docker", ["image", "inspect", IMAGE], { stdio: "ignore", timeout: 30_000 });
    return true;
  } catch (err) {
    if (process.env.CI) {
      throw new Error(
        `docker e2e cannot run in CI: no dockerd or no ${IMAGE} (scripts/ci/start-dockerd.sh, scripts/ci/build-test-images.sh): ${(err as Error).message}`,
      );
    }
    (process as NodeJS.EventEmitter).emit(
      "mottainai:test-skip",
      "dockerd",
      `no dockerd or no ${IMAGE} (run scripts/ci/start-dockerd.sh, scripts/ci/build-test-images.sh)`,
    );
    return false;
  }
}

function containersOf(taskId: string): string {
  return execFileSync("docker", ["ps", "-a", "-q", "--filter", `label=mottainai.task=${taskId}`], { encoding: "utf8" });
}

/** End to end: an original docker_execute task file runs in a container through a real agent. */
describe("docker task (server + agent --executor docker + CLI processes, real dockerd)", function () {
  this.timeout(120_000);
  let server: ServerProc;
  let env: Record<string, string>;
  let dir: string;

  before(async function () {
    if (!dockerReady()) return this.skip();
    server = await startServer();
    const stateDir = tempDir("docker-agent");
    execFileSync("docker", [
      "create",
      "--network",
      "none",
      "--label",
      `mottainai.agent=${agentLabelFor(stateDir)}`,
      "--label",
      "mottainai.task=e2e-leftover",
      IMAGE,
      "sleep",
      "30",
    ]);
    await startAgent(server, {
      registrationToken: await registrationToken(server),
      name: "e2e-docker-agent",
      stateDir,
      args: ["--executor", "host", "--executor", "docker"],
    });
    dir = tempDir("docker-files");
    env = { MOTTAINAI_SERVER: server.url, MOTTAINAI_TOKEN: server.adminToken, XDG_CONFIG_HOME: tempDir("config") };
  });
  after(cleanupAll);

  const runTask = async (name: string, text: string): Promise<{ id: string; log: string; task: Record<string, unknown> }> => {
    const path = join(dir, name);
    writeFileSync(path, text);
    const created = await cli(["task", "create", "-f", path], env);
    assert.equal(created.code, 0, created.stderr);
    const id = created.stdout.toString().trim();
    const log = await cli(["task", "log", id, "--follow"], env);
    assert.equal(log.code, 0, log.stderr);
    const shown = await cli(["task", "show", id, "--json"], env);
    assert.equal(shown.code, 0, shown.stderr);
    return { id, log: log.stdout.toString(), task: JSON.parse(shown.stdout.toString()) as Record<string, unknown> };
  };

  it("removed, when the agent started, the container an earlier run of it left behind", () => {
    assert.equal(containersOf("e2e-leftover"), "");
  });

  it("runs an original docker_execute task in the image with exact output, and leaves no container", async () => {
    const { id, log, task } = await runTask(
      "docker.yaml",
      [
        "name: in a container",
        "type: docker_execute",
        `image: ${IMAGE}`,
        "directory: build",
        "environment:",
        "  - GREETING=hello=world",
        "script:",
        '  - echo "$GREETING from $MOTTAINAI_TASK_NAME in $(pwd)"',
        "  - printf 'out\\n'; printf 'err\\n' >&2; printf 'no newline'",
        "",
      ].join("\n"),
    );
    assert.equal(log, "hello=world from in a container in /mottainai/workspace/build\nout\nerr\nno newline");
    assert.equal(task.status, "TASK_STATUS_DONE");
    assert.equal(task.result, "TASK_RESULT_SUCCESS");
    assert.equal(task.exitCode, 0);
    assert.equal(containersOf(id), "");
  });

  it("runs an original-style task file (/ paths, plan, unknown and repeated keys) with --image, exact log and artefact bytes", async () => {
    const path = join(dir, "original.yaml");
    writeFileSync(path, ORIGINAL_STYLE_TASK.replace("TYPE", "docker_execute"));
    const created = await cli(["task", "create", "-f", path, "--image", IMAGE], env);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(
      created.stderr,
      originalStyleWarnings(path)
        .map((w) => `warning: ${w}\n`)
        .join(""),
    );
    const id = created.stdout.toString().trim();
    const log = await cli(["task", "log", id, "--follow"], env);
    assert.equal(log.code, 0, log.stderr);
    const lines = log.stdout.toString().split("\n");
    assert.deepEqual(lines.slice(0, 6), [
      "URL=http://mirror/?a=b&c=d==",
      "artefacts in /mottainai/workspace/out",
      ".",
      "..",
      "out",
      "storage",
    ]);
    assert.equal(lines[6], "Uploading artefacts: 1 file, 0.0 MiB");
    assert.match(lines[7] ?? "", /^Uploaded artefacts: 1 file, 0\.0 MiB in \d+\.\d s$/);
    assert.deepEqual(lines.slice(8), [""]);
    const shown = JSON.parse((await cli(["task", "show", id, "--json"], env)).stdout.toString()) as Record<string, unknown>;
    assert.deepEqual([shown.status, shown.result], ["TASK_STATUS_DONE", "TASK_RESULT_SUCCESS"]);
    const into = tempDir("docker-original-download");
    const download = await cli(["task", "download", id, "--to", into], env);
    assert.equal(download.code, 0, download.stderr);
    assert.deepEqual(readFileSync(join(into, "iso/image.iso")), ORIGINAL_STYLE_ISO);
    assert.equal(containersOf(id), "");
  });

  it("reports a failing script in a container as failed with its exit code", async () => {
    const { id, log, task } = await runTask(
      "fail.yaml",
      `name: fails\ntype: docker\nimage: ${IMAGE}\nscript:\n  - echo before\n  - exit 3\n  - echo never\n`,
    );
    assert.equal(log, "before\n");
    assert.equal(task.status, "TASK_STATUS_DONE");
    assert.equal(task.result, "TASK_RESULT_FAILED");
    assert.equal(task.exitCode, 3);
    assert.equal(containersOf(id), "");
  });
});
