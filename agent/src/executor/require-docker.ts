import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type Docker from "dockerode";
import { AGENT_LABEL, createDockerClient, TASK_LABEL } from "./docker-executor.js";

/** The image scripts/ci/build-test-images.sh builds: busybox only, no bash. */
export const TEST_IMAGE = "mottainai-test/busybox:latest";

/**
 * A Docker client for the tests at `host` (default the local socket), or undefined when no
 * engine answers or TEST_IMAGE is missing, so that a developer's run skips. With `ci` (the test
 * passes `process.env.CI`) that throws instead: CI must run these tests (DESIGN §8).
 */
export async function requireDocker(ci: boolean, host?: string): Promise<Docker | undefined> {
  const docker = createDockerClient(host);
  let problem: string | undefined;
  try {
    await docker.ping();
    try {
      await docker.getImage(TEST_IMAGE).inspect();
    } catch {
      problem = `the test image ${TEST_IMAGE} is missing (run scripts/ci/build-test-images.sh)`;
    }
  } catch (err) {
    problem = `no Docker engine answers (${(err as Error).message}; run scripts/ci/start-dockerd.sh)`;
  }
  if (problem === undefined) return docker;
  if (ci) throw new Error(`docker tests cannot run in CI: ${problem}`);
  (process as NodeJS.EventEmitter).emit("mottainai:test-skip", "dockerd", problem);
  return undefined;
}

/** What dockerSandbox gives each case of a docker test suite. */
export interface DockerSandbox {
  /** The engine (set before the first case). */
  docker: Docker;
  /** A fresh, empty workspace root for the current case. */
  root: string;
  /** The agent label the suite's containers carry. */
  agentLabel: string;
  /** Asserts that the task's container and its workspace are gone. */
  assertGone(taskId: string, workspace: string): Promise<void>;
}

/**
 * Registers the mocha hooks every docker suite needs: requireDocker (plus extra checks, e.g. the
 * cache registry) before the suite, a fresh workspace root before each case, and after each case
 * the assertion that no container with the suite's agent label is left.
 */
export function dockerSandbox(options: {
  prefix: string;
  ci: boolean;
  host?: string;
  alsoRequire?: () => Promise<boolean>;
}): DockerSandbox {
  const sandbox = {
    root: "",
    agentLabel: `${options.prefix}-${process.pid}-${Date.now()}`,
    async assertGone(taskId: string, workspace: string) {
      const left = await sandbox.docker.listContainers({ all: true, filters: { label: [`${TASK_LABEL}=${taskId}`] } });
      assert.deepEqual(left, [], "the container is removed");
      assert.equal(existsSync(workspace), false, "the workspace is removed");
    },
  } as DockerSandbox;
  before(async function () {
    const docker = await requireDocker(options.ci, options.host);
    if (!docker || (options.alsoRequire && !(await options.alsoRequire()))) this.skip();
    sandbox.docker = docker;
  });
  beforeEach(() => {
    sandbox.root = mkdtempSync(join(tmpdir(), `mottainai-${options.prefix}-`));
  });
  afterEach(async () => {
    const left = await sandbox.docker.listContainers({ all: true, filters: { label: [`${AGENT_LABEL}=${sandbox.agentLabel}`] } });
    rmSync(sandbox.root, { recursive: true, force: true });
    assert.deepEqual(
      left.map((c) => c.Id),
      [],
      "no container outlives its task",
    );
  });
  return sandbox;
}
