import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  agentLabelFor,
  lxdContainerPrefix,
  lxdInstancesWithPrefix,
  requireLxd,
  TEST_LXD_IMAGE,
  type LxdClient,
} from "@mottainai/agent";
import { cleanupAll, cli, registrationToken, startAgent, startServer, tempDir, waitFor, type ServerProc } from "./harness.js";

/** End to end: a `type: lxd` task file runs in an LXD system container through a real agent. */
describe("lxd task (server + agent --executor lxd + CLI processes, real LXD)", function () {
  this.timeout(120_000);
  let server: ServerProc;
  let env: Record<string, string>;
  let dir: string;
  let lxd: LxdClient;
  let prefix: string;

  before(async function () {
    const client = await requireLxd(Boolean(process.env.CI));
    if (!client) return this.skip();
    lxd = client;
    server = await startServer();
    const stateDir = tempDir("lxd-agent");
    prefix = lxdContainerPrefix(agentLabelFor(stateDir));
    await lxd.operation("POST", "/1.0/instances", {
      name: `${prefix}leftover`,
      type: "container",
      source: { type: "image", alias: TEST_LXD_IMAGE },
    });
    await startAgent(server, {
      registrationToken: await registrationToken(server),
      name: "e2e-lxd-agent",
      stateDir,
      args: ["--executor", "host", "--executor", "lxd", "--lxd-max-memory", "1g"],
    });
    dir = tempDir("lxd-files");
    env = { MOTTAINAI_SERVER: server.url, MOTTAINAI_TOKEN: server.adminToken, XDG_CONFIG_HOME: tempDir("config") };
  });
  after(cleanupAll);

  const create = async (name: string, text: string): Promise<string> => {
    const path = join(dir, name);
    writeFileSync(path, text);
    const created = await cli(["task", "create", "-f", path], env);
    assert.equal(created.code, 0, created.stderr);
    return created.stdout.toString().trim();
  };
  const show = async (id: string): Promise<Record<string, unknown>> =>
    JSON.parse((await cli(["task", "show", id, "--json"], env)).stdout.toString()) as Record<string, unknown>;

  it("removed, when the agent started, the container an earlier run of it left behind", async () => {
    assert.deepEqual(await lxdInstancesWithPrefix(lxd, prefix), []);
  });

  it("runs a type: lxd task file in a container: exact output, exit code, artefacts uploaded, nothing left", async () => {
    const id = await create(
      "lxd.yaml",
      [
        'name: "Build in a container"',
        "type: lxd",
        `image: ${TEST_LXD_IMAGE}`,
        "directory: build",
        "environment:",
        '  - "CPU=1"',
        '  - "RAM=256m"',
        '  - "GREETING=hello=world"',
        "artefact_path: out",
        "script:",
        '  - echo "$GREETING from $MOTTAINAI_TASK_NAME in $(pwd)"',
        "  - printf 'out\\n'; printf 'err\\n' >&2; printf 'no newline'",
        '  - mkdir -p "$MOTTAINAI_ARTEFACT_PATH/pkgs" && printf alpha > "$MOTTAINAI_ARTEFACT_PATH/pkgs/a.tbz2"',
        "",
      ].join("\n"),
    );
    const log = await cli(["task", "log", id, "--follow"], env);
    assert.equal(log.code, 0, log.stderr);
    const task = await show(id);
    assert.equal(task.result, "TASK_RESULT_SUCCESS", log.stdout.toString());
    assert.equal(task.status, "TASK_STATUS_DONE");
    assert.equal(task.exitCode, 0);
    // The agent adds its upload lines after the script's bytes.
    assert.equal(
      log.stdout.toString().split("Uploading artefacts")[0],
      "hello=world from Build in a container in /mottainai/workspace/build\nout\nerr\nno newline",
    );
    const artefacts = await cli(["task", "artefacts", id, "--json"], env);
    assert.equal(artefacts.code, 0, artefacts.stderr);
    const list = JSON.parse(artefacts.stdout.toString()) as { path: string; sha256: string }[];
    assert.deepEqual(
      list.map((a) => [a.path, a.sha256]),
      [["pkgs/a.tbz2", createHash("sha256").update("alpha").digest("hex")]],
    );
    assert.deepEqual(await lxdInstancesWithPrefix(lxd, prefix), []);
  });

  it("reports a failing script as failed with its exit code, and a refused limit as an error naming RAM", async () => {
    const failing = await create(
      "fail.yaml",
      `name: fails\ntype: lxd\nimage: ${TEST_LXD_IMAGE}\nscript:\n  - echo before\n  - exit 3\n  - echo never\n`,
    );
    assert.equal((await cli(["task", "log", failing, "--follow"], env)).stdout.toString(), "before\n");
    const failed = await show(failing);
    assert.equal(failed.result, "TASK_RESULT_FAILED");
    assert.equal(failed.exitCode, 3);

    const refused = await create(
      "big.yaml",
      `name: too big\ntype: lxd\nimage: ${TEST_LXD_IMAGE}\nenvironment:\n  - RAM=2g\nscript:\n  - echo never\n`,
    );
    const log = (await cli(["task", "log", refused, "--follow"], env)).stdout.toString();
    assert.doesNotMatch(log, /never/);
    const task = await show(refused);
    assert.equal(task.result, "TASK_RESULT_ERROR");
    assert.match(JSON.stringify(task), /RAM: 2g is above this agent's maximum of 1g/);
    assert.deepEqual(await lxdInstancesWithPrefix(lxd, prefix), []);
  });

  it("stops a running lxd task: it ends stopped and its container is deleted", async () => {
    const id = await create(
      "sleep.yaml",
      `name: sleeper\ntype: lxd\nimage: ${TEST_LXD_IMAGE}\nscript:\n  - echo started\n  - sleep 60\n`,
    );
    await waitFor(
      async () => (await show(id)).status === "TASK_STATUS_RUNNING",
      30_000,
      () => "task never ran",
    );
    const stop = await cli(["task", "stop", id], env);
    assert.equal(stop.code, 0, stop.stderr);
    const task = await waitFor(
      async () => {
        const t = await show(id);
        return t.status === "TASK_STATUS_STOPPED" ? t : undefined;
      },
      10_000,
      () => "task did not stop",
    );
    assert.equal(task.result, "TASK_RESULT_ERROR");
    await waitFor(
      async () => (await lxdInstancesWithPrefix(lxd, prefix)).length === 0,
      10_000,
      () => "the container is left",
    );
  });
});
