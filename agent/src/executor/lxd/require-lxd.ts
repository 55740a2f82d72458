import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createLxdClient, DEFAULT_LXD_SOCKET, type LxdClient, type LxdEndpoint } from "./lxd-client.js";

/** The image scripts/ci/start-lxd.sh imports: busybox only, no bash. */
export const TEST_LXD_IMAGE = "mottainai-test-busybox";

/**
 * A client of the test LXD at `socketPath`, or undefined when no LXD answers or TEST_LXD_IMAGE
 * is missing, so that a developer's run skips (emitting `mottainai:test-skip` with what to
 * start). With `ci` (the test passes `process.env.CI`) that throws instead: CI must run these
 * tests (DESIGN §8).
 */
export async function requireLxd(ci: boolean, socketPath = DEFAULT_LXD_SOCKET): Promise<LxdClient | undefined> {
  const client = createLxdClient({ socketPath });
  let problem: string | undefined;
  try {
    await client.request("GET", "/1.0");
    try {
      await client.request("GET", `/1.0/images/aliases/${TEST_LXD_IMAGE}`);
    } catch {
      problem = `the test image ${TEST_LXD_IMAGE} is missing (run scripts/ci/start-lxd.sh)`;
    }
  } catch (err) {
    problem = `no LXD answers on ${socketPath} (${(err as Error).message}; run scripts/ci/start-lxd.sh)`;
  }
  if (problem === undefined) return client;
  if (ci) throw new Error(`lxd tests cannot run in CI: ${problem}`);
  (process as NodeJS.EventEmitter).emit("mottainai:test-skip", "lxd", problem);
  return undefined;
}

/** For tests: names of the instances on `client` whose name starts with `prefix`. */
export async function lxdInstancesWithPrefix(client: LxdClient, prefix: string): Promise<string[]> {
  const urls = await client.request<string[]>("GET", "/1.0/instances");
  return urls.map((url) => decodeURIComponent(url.split("/").pop() ?? "")).filter((n) => n.startsWith(prefix));
}

/** Where scripts/ci/start-lxd.sh makes the client certificate LXD trusts, and LXD's https address. */
export const TEST_LXD_TLS_DIR = "/var/lib/mottainai-test/lxd-tls";
export const TEST_LXD_URL = "https://127.0.0.1:8443";

/**
 * The https endpoint of the test LXD with the trusted test client certificate (checked with a
 * request that needs trust), or undefined on a developer's machine without it (skip notice
 * `lxd`); with `ci` that throws instead.
 */
export async function requireLxdRemote(ci: boolean): Promise<LxdEndpoint | undefined> {
  let problem: string | undefined;
  let endpoint: LxdEndpoint | undefined;
  try {
    endpoint = {
      url: TEST_LXD_URL,
      cert: readFileSync(join(TEST_LXD_TLS_DIR, "client.crt"), "utf8"),
      key: readFileSync(join(TEST_LXD_TLS_DIR, "client.key"), "utf8"),
      ca: readFileSync("/var/lib/lxd/server.crt", "utf8"),
    };
    const info = await createLxdClient(endpoint).request<{ auth?: string }>("GET", "/1.0");
    if (info.auth !== "trusted")
      problem = `LXD at ${TEST_LXD_URL} does not trust ${TEST_LXD_TLS_DIR}/client.crt (run scripts/ci/start-lxd.sh)`;
  } catch (err) {
    problem = `no LXD with the test client certificate at ${TEST_LXD_URL} (${(err as Error).message}; run scripts/ci/start-lxd.sh)`;
  }
  if (problem === undefined) return endpoint;
  if (ci) throw new Error(`lxd remote tests cannot run in CI: ${problem}`);
  (process as NodeJS.EventEmitter).emit("mottainai:test-skip", "lxd", problem);
  return undefined;
}
