import type Docker from "dockerode";
import { createDockerClient } from "./docker-executor.js";

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
  return undefined;
}
