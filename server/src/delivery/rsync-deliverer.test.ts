import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { BlobStore } from "../blob/blob-store.js";
import { LocalBlobStore } from "../blob/local-blob-store.js";
import { putRevision, readTree, testJob } from "./delivery-fixture.js";
import { requireRsyncDaemon, TEST_RSYNC_MODULE } from "./require-rsync-daemon.js";
import { createRsyncDeliverer } from "./rsync-deliverer.js";
import { runCommand } from "./run-command.js";

const REVISION_1 = {
  "index.html": "<h1>repo</h1>\n",
  "packages/a-1.0.tar": "a".repeat(100_000),
  "packages/nested/b-2.0.tar": "binary\u0000\u0001\u00ff",
};
const REVISION_2 = {
  "index.html": "<h1>repo, updated</h1>\n",
  "packages/a-1.0.tar": "a".repeat(100_000),
  "packages/c-3.0.tar": "new package",
};

describe("rsync deliverer", function () {
  let root: string;
  let blobs: LocalBlobStore;
  let workDir: string;

  beforeEach(async () => {
    root = mkdtempSync(join(tmpdir(), "mottainai-rsync-test-"));
    blobs = new LocalBlobStore(join(root, "blobs"));
    workDir = join(root, "work");
    await mkdir(workDir);
  });

  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });

  const deliverer = () => createRsyncDeliverer({ workDir, timeoutMs: 60_000 });

  it("makes a local directory hold exactly the revision, removing what a later revision dropped", async () => {
    const target = join(root, "mirror", "deep", "repo");
    await deliverer().deliver(testJob(blobs, { kind: "rsync", target }, await putRevision(blobs, REVISION_1), 1));
    assert.deepEqual(await readTree(target), REVISION_1);
    assert.equal(statSync(join(target, "packages/nested/b-2.0.tar")).mode & 0o777, 0o644);
    assert.equal(statSync(join(target, "packages/nested")).mode & 0o777, 0o755);

    writeFileSync(join(target, "stray.txt"), "not in any revision");
    await deliverer().deliver(testJob(blobs, { kind: "rsync", target }, await putRevision(blobs, REVISION_2), 2));
    assert.deepEqual(await readTree(target), REVISION_2, "removed files and stray files are gone, changed ones updated");
    assert.deepEqual(await readTree(workDir), {}, "no staging directory is left");
  });

  it("refuses content whose sha256 does not match and leaves the target untouched", async () => {
    const target = join(root, "mirror");
    await deliverer().deliver(testJob(blobs, { kind: "rsync", target }, await putRevision(blobs, REVISION_1), 1));
    const files = await putRevision(blobs, REVISION_2);
    const lying: BlobStore = {
      ...blobs,
      put: blobs.put.bind(blobs),
      stat: blobs.stat.bind(blobs),
      delete: blobs.delete.bind(blobs),
      list: blobs.list.bind(blobs),
      get: async (sha256) => (sha256 === files[0]!.sha256 ? Readable.from([Buffer.from("tampered")]) : blobs.get(sha256)),
    };
    await assert.rejects(
      createRsyncDeliverer({ workDir, timeoutMs: 60_000 }).deliver(testJob(lying, { kind: "rsync", target }, files, 2)),
      /index\.html: the blob store returned 8 bytes with sha256 [0-9a-f]{64}, expected/,
    );
    assert.deepEqual(await readTree(target), REVISION_1);
  });

  it("fails with rsync's own words when the target cannot be written", async () => {
    writeFileSync(join(root, "a-file"), "");
    await assert.rejects(
      deliverer().deliver(
        testJob(blobs, { kind: "rsync", target: join(root, "a-file", "repo") }, await putRevision(blobs, REVISION_1), 1),
      ),
      (err: Error) => {
        assert.match(err.message, /^rsync exited with code \d+: /);
        assert.match(err.message, /Not a directory|mkdir|failed/i);
        return true;
      },
    );
    assert.deepEqual(await readTree(workDir), {});
  });

  describe("to an rsync daemon", function () {
    let base: string;

    before(async function () {
      if (!(await requireRsyncDaemon(Boolean(process.env.CI)))) this.skip();
    });

    beforeEach(() => {
      base = `${TEST_RSYNC_MODULE}/test-${process.pid}-${Date.now()}`;
    });

    const fetchBack = async (url: string): Promise<Record<string, string>> => {
      const dir = join(root, `fetched-${Date.now()}`);
      await runCommand("rsync", ["-a", `${url}/`, `${dir}/`], { timeoutMs: 60_000 });
      return readTree(dir);
    };

    it("delivers exactly the revision to a path inside the module, then removes what the next one dropped", async () => {
      const target = `${base}/repo`;
      await deliverer().deliver(testJob(blobs, { kind: "rsync", target }, await putRevision(blobs, REVISION_1), 1));
      assert.deepEqual(await fetchBack(target), REVISION_1);
      await deliverer().deliver(testJob(blobs, { kind: "rsync", target }, await putRevision(blobs, REVISION_2), 2));
      assert.deepEqual(await fetchBack(target), REVISION_2);
      await runCommand("rsync", ["-a", "--delete", `${join(root, "work")}/`, `${base}/`], { timeoutMs: 60_000 });
    });

    it("fails with the daemon's words when the module does not exist", async () => {
      const target = TEST_RSYNC_MODULE.replace(/mottainai$/, "no-such-module");
      await assert.rejects(
        deliverer().deliver(testJob(blobs, { kind: "rsync", target }, await putRevision(blobs, REVISION_1), 1)),
        /rsync exited with code \d+: @ERROR: Unknown module 'no-such-module'/,
      );
    });
  });
});
