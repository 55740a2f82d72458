import { readFileSync } from "node:fs";
import { ListBucketsCommand, S3Client } from "@aws-sdk/client-s3";

/** Where the S3 tests find their server: what scripts/ci/start-ceph.sh writes to s3.env. */
export interface TestS3 {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** The file start-ceph.sh writes (CEPH_DIR defaults to /tmp/mottainai-ceph). */
export const DEFAULT_S3_ENV_FILE = "/tmp/mottainai-ceph/s3.env";

/**
 * The S3 server for tests, or undefined when there is none, so that a developer's run skips. It
 * comes from the environment (MOTTAINAI_TEST_S3_ENDPOINT, _ACCESS_KEY, _SECRET_KEY and optional
 * _REGION), else from the KEY=VALUE file MOTTAINAI_TEST_S3_ENV_FILE (default DEFAULT_S3_ENV_FILE,
 * written by scripts/ci/start-ceph.sh), and must answer ListBuckets with those keys within 10 s.
 * With `ci` (the test passes `process.env.CI`) a missing or silent server throws instead: CI must
 * run these tests (DESIGN §8).
 */
export async function requireS3(ci: boolean, env: Record<string, string | undefined>): Promise<TestS3 | undefined> {
  let problem: string | undefined;
  let found: TestS3 | undefined;
  const file = env.MOTTAINAI_TEST_S3_ENV_FILE || DEFAULT_S3_ENV_FILE;
  let vars: Record<string, string | undefined> = env;
  if (!env.MOTTAINAI_TEST_S3_ENDPOINT) {
    try {
      vars = Object.fromEntries(
        readFileSync(file, "utf8")
          .split("\n")
          .map((line) => /^\s*([A-Z0-9_]+)=(.*)$/.exec(line))
          .filter((m) => m !== null)
          .map((m) => [m[1], m[2]?.trim()]),
      );
    } catch {
      problem = `MOTTAINAI_TEST_S3_ENDPOINT is not set and ${file} cannot be read (run scripts/ci/start-ceph.sh)`;
    }
  }
  if (!problem) {
    const { MOTTAINAI_TEST_S3_ENDPOINT: endpoint, MOTTAINAI_TEST_S3_ACCESS_KEY: accessKeyId } = vars;
    const { MOTTAINAI_TEST_S3_SECRET_KEY: secretAccessKey, MOTTAINAI_TEST_S3_REGION: region } = vars;
    if (!endpoint || !accessKeyId || !secretAccessKey) {
      problem = "MOTTAINAI_TEST_S3_ENDPOINT, _ACCESS_KEY and _SECRET_KEY must all be set";
    } else {
      found = { endpoint, accessKeyId, secretAccessKey, region: region || "us-east-1" };
      const client = new S3Client({
        endpoint,
        region: found.region,
        forcePathStyle: true,
        credentials: { accessKeyId, secretAccessKey },
        maxAttempts: 1,
      });
      try {
        await client.send(new ListBucketsCommand({}), { abortSignal: AbortSignal.timeout(10_000) });
      } catch (err) {
        problem = `S3 at ${endpoint} does not answer (${(err as Error).name}: ${(err as Error).message}; run scripts/ci/start-ceph.sh)`;
      } finally {
        client.destroy();
      }
    }
  }
  if (problem === undefined) return found;
  if (ci) throw new Error(`S3 tests cannot run in CI: ${problem}`);
  (process as NodeJS.EventEmitter).emit("mottainai:test-skip", "Ceph RGW (S3)", problem);
  return undefined;
}
