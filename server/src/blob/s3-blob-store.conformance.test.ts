/**
 * The BlobStore conformance suite and the S3-only cases against a real S3 server: in CI the
 * single-node Ceph RADOS Gateway that scripts/ci/start-ceph.sh starts on 127.0.0.1:7480.
 *
 * Where the server is: env MOTTAINAI_TEST_S3_ENDPOINT, MOTTAINAI_TEST_S3_ACCESS_KEY,
 * MOTTAINAI_TEST_S3_SECRET_KEY (and optional MOTTAINAI_TEST_S3_REGION) when the endpoint is set;
 * otherwise the same keys from the file MOTTAINAI_TEST_S3_ENV_FILE, default
 * /tmp/mottainai-ceph/s3.env, which start-ceph.sh writes. Without a reachable server the suite
 * skips on a developer's machine and fails when CI is set (require-s3.ts).
 *
 * Every case uses its own new bucket `mottainai-test-<random>` and deletes it afterwards.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  HeadBucketCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { blobStoreConformance } from "./blob-store-conformance.js";
import { requireS3, type TestS3 } from "./require-s3.js";
import { openS3BlobStore, type S3BlobStore, type S3BlobStoreOptions } from "./s3-blob-store.js";

const MIB = 1024 * 1024;
const sha = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");
const newBucket = () => `mottainai-test-${randomBytes(6).toString("hex")}`;

/** Deletes every object and multipart upload in the bucket, then the bucket. */
async function destroyBucket(client: S3Client, bucket: string): Promise<void> {
  for (;;) {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    for (const o of page.Contents ?? []) await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key }));
    if (!page.IsTruncated) break;
  }
  const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  for (const u of uploads.Uploads ?? []) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
  }
  await client.send(new DeleteBucketCommand({ Bucket: bucket }));
}

describe("S3BlobStore on Ceph RGW", () => {
  let s3: TestS3 | undefined;
  const open = (bucket: string, options: Partial<S3BlobStoreOptions> = {}) =>
    openS3BlobStore({ ...(s3 as TestS3), bucket, ...options });

  before(async function () {
    s3 = await requireS3(Boolean(process.env.CI), process.env);
    if (!s3) this.skip();
  });

  describe("conformance", () => {
    blobStoreConformance(async () => {
      const bucket = newBucket();
      const store = await open(bucket);
      return {
        store,
        temporaries: () => store.listTemp(),
        dispose: async () => {
          await destroyBucket(store.client, bucket);
          await store.close();
        },
      };
    });
  });

  describe("backend specifics", () => {
    let bucket: string;
    let stores: S3BlobStore[];
    beforeEach(() => {
      bucket = newBucket();
      stores = [];
    });
    afterEach(async () => {
      const [first] = stores;
      if (first) await destroyBucket(first.client, bucket);
      for (const s of stores) await s.close();
    });
    const track = async (p: Promise<S3BlobStore>) => {
      const s = await p;
      stores.push(s);
      return s;
    };

    it("creates the bucket at open and opens an existing one", async () => {
      const store = await track(open(bucket));
      await store.client.send(new HeadBucketCommand({ Bucket: bucket }));
      const again = await track(open(bucket));
      const info = await again.put(Readable.from([Buffer.from("x")]));
      assert.deepEqual(await store.stat(info.sha256), info);
    });

    it("commits blobs above maxCopyObjectBytes with a multipart UploadPartCopy", async () => {
      const store = await track(open(bucket, { maxCopyObjectBytes: 5 * MIB, copyPartBytes: 5 * MIB }));
      const data = randomBytes(12 * MIB + 123);
      const info = await store.put(Readable.from([data]), sha(data));
      assert.deepEqual(info, { sha256: sha(data), size: data.length });
      assert.deepEqual(await store.stat(info.sha256), info);
      assert.ok((await buffer(await store.get(info.sha256))).equals(data));
      assert.ok((await buffer(await store.get(info.sha256, 5 * MIB - 3, 6))).equals(data.subarray(5 * MIB - 3, 5 * MIB + 3)));
      assert.deepEqual(await store.listTemp(), []);
    });

    it("deletes temporary objects and multipart uploads older than an hour at open", async () => {
      const store = await track(open(bucket));
      await store.client.send(new PutObjectCommand({ Bucket: bucket, Key: "tmp/crashed", Body: "half an upload" }));
      const { UploadId } = await store.client.send(
        new CreateMultipartUploadCommand({ Bucket: bucket, Key: "tmp/crashed-multipart" }),
      );
      await store.client.send(
        new UploadPartCommand({ Bucket: bucket, Key: "tmp/crashed-multipart", UploadId, PartNumber: 1, Body: randomBytes(1000) }),
      );
      const kept = await store.put(Readable.from([Buffer.from("a real blob")]));
      const expected = ["tmp/crashed", "tmp/crashed-multipart (multipart upload)"];
      assert.deepEqual(await store.listTemp(), expected);

      await track(open(bucket));
      assert.deepEqual(await store.listTemp(), expected, "younger than an hour: kept (they may be live uploads)");
      await track(open(bucket, { now: () => Date.now() + 61 * 60 * 1000 }));
      assert.deepEqual(await store.listTemp(), []);
      assert.deepEqual(await store.stat(kept.sha256), kept, "blobs are not touched");
    });

    it("fails to open with a message naming the endpoint and bucket when the keys are wrong", async () => {
      await assert.rejects(open(bucket, { secretAccessKey: "wrong" }), (err: Error) => {
        assert.match(err.message, new RegExp(`^S3 bucket "${bucket}" at ${s3?.endpoint} cannot be used: `));
        return true;
      });
    });
  });
});
