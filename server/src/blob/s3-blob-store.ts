import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
  UploadPartCopyCommand,
  type CompletedPart,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import type { Logger } from "pino";
import {
  BlobDigestMismatchError,
  BlobNotFoundError,
  checkBlobRange,
  SHA256_HEX,
  type BlobInfo,
  type BlobSource,
  type BlobStore,
  type StoredBlobInfo,
} from "./blob-store.js";

/** Where and how an S3BlobStore stores its objects. */
export interface S3BlobStoreOptions {
  /** S3 endpoint URL, e.g. a RADOS Gateway's `http://127.0.0.1:7480`. Addressed path-style. */
  endpoint: string;
  /** Bucket holding `blobs/<sha256>` and `tmp/<id>`; created at open when missing. */
  bucket: string;
  /** Signing region. Default "us-east-1" (RGW accepts any). */
  region?: string;
  /** Access key; with secretAccessKey. Default: the AWS SDK's own credential chain. */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Multipart part size of uploads (at least 5 MiB); smaller blobs take one PUT. Default 8 MiB. */
  partBytes?: number;
  /** Parts of one upload in flight at once (memory: partBytes × this). Default 4. */
  queueSize?: number;
  /**
   * Largest blob committed with one CopyObject (S3's limit is 5 GiB); larger ones are copied
   * with a multipart UploadPartCopy of copyPartBytes parts. Default 5 GiB.
   */
  maxCopyObjectBytes?: number;
  /** Part size of multipart copies (5 MiB to 5 GiB). Default 1 GiB. */
  copyPartBytes?: number;
  /** Temporary objects and multipart uploads older than this are deleted at open. Default 1 hour. */
  staleTempMs?: number;
  /** Clock for the stale-temp sweep, in ms since the epoch. Default Date.now. */
  now?: () => number;
  /** Where failed clean-ups are reported (the put still rejects with its own error). */
  logger?: Logger;
}

const BLOB_PREFIX = "blobs/";
const TEMP_PREFIX = "tmp/";
const MIB = 1024 * 1024;

/**
 * BlobStore on S3 (DESIGN §4), written for and tested against Ceph's RADOS Gateway. Blobs are
 * `blobs/<sha256>` objects in one bucket. put() streams the source to a unique temporary key
 * `tmp/<random>` while hashing it (one PUT below partBytes, else a multipart upload through
 * lib-storage's Upload, partBytes × queueSize of memory), and only when the digest is right
 * copies it server-side to its final key (CopyObject; UploadPartCopy above maxCopyObjectBytes)
 * and deletes the temporary key. On any failure the temporary object is deleted and its
 * multipart upload aborted; what a crash leaves is deleted by the sweep at open. A put of content
 * already stored copies again (cheap on RGW, which shares the data), which refreshes createTime.
 * Not used: upload ETags (RGW 16 returns an empty one from CompleteMultipartUpload). Note that
 * RGW frees the space of deleted objects only after its garbage collector runs.
 * Create with openS3BlobStore; close() releases the client's sockets.
 */
export class S3BlobStore implements BlobStore {
  private readonly bucket: string;
  private readonly partBytes: number;
  private readonly queueSize: number;
  private readonly maxCopyObjectBytes: number;
  private readonly copyPartBytes: number;

  constructor(
    readonly client: S3Client,
    private readonly options: S3BlobStoreOptions,
  ) {
    this.bucket = options.bucket;
    this.partBytes = options.partBytes ?? 8 * MIB;
    this.queueSize = options.queueSize ?? 4;
    this.maxCopyObjectBytes = options.maxCopyObjectBytes ?? 5 * 1024 * MIB;
    this.copyPartBytes = options.copyPartBytes ?? 1024 * MIB;
    if (this.partBytes < 5 * MIB) throw new RangeError(`partBytes must be at least 5 MiB, got ${this.partBytes}`);
    if (this.copyPartBytes < 5 * MIB) throw new RangeError(`copyPartBytes must be at least 5 MiB, got ${this.copyPartBytes}`);
  }

  async put(source: BlobSource, expectedSha256?: string): Promise<BlobInfo> {
    if (expectedSha256 !== undefined && !SHA256_HEX.test(expectedSha256)) {
      throw new BlobDigestMismatchError(`expected sha256 "${expectedSha256}" is not 64 lower-case hex characters`);
    }
    const tempKey = `${TEMP_PREFIX}${randomBytes(12).toString("hex")}`;
    const hash = createHash("sha256");
    let size = 0;
    const body = Readable.from(
      (async function* () {
        for await (const chunk of source) {
          hash.update(chunk);
          size += chunk.length;
          yield chunk;
        }
      })(),
      { objectMode: false },
    );
    let uploaded = false;
    try {
      const upload = new Upload({
        client: this.client,
        params: { Bucket: this.bucket, Key: tempKey, Body: body },
        partSize: this.partBytes,
        queueSize: this.queueSize,
      });
      await upload.done();
      uploaded = true;
      const sha256 = hash.digest("hex");
      if (expectedSha256 !== undefined && sha256 !== expectedSha256) {
        throw new BlobDigestMismatchError(`content has sha256 ${sha256}, expected ${expectedSha256}`);
      }
      await this.commit(tempKey, BLOB_PREFIX + sha256, size);
      return { sha256, size };
    } finally {
      body.destroy();
      await this.discardTemp(tempKey, !uploaded);
    }
  }

  async stat(sha256: string): Promise<BlobInfo | undefined> {
    if (!SHA256_HEX.test(sha256)) return undefined;
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: BLOB_PREFIX + sha256 }));
      return { sha256, size: head.ContentLength ?? 0 };
    } catch (err) {
      if (status(err) === 404) return undefined;
      throw err;
    }
  }

  async get(sha256: string, offset = 0, length?: number): Promise<Readable> {
    if (!SHA256_HEX.test(sha256)) throw new BlobNotFoundError(sha256);
    const key = BLOB_PREFIX + sha256;
    const valid = (n: number) => Number.isSafeInteger(n) && n >= 0;
    if (!valid(offset) || length === 0 || (length !== undefined && !valid(length))) {
      return this.emptyAfterCheck(sha256, offset, length);
    }
    const ranged = offset > 0 || length !== undefined;
    let response;
    try {
      response = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Range: ranged ? `bytes=${offset}-${length === undefined ? "" : offset + length - 1}` : undefined,
        }),
      );
    } catch (err) {
      if (status(err) === 404) throw new BlobNotFoundError(sha256);
      if (status(err) === 416) return this.emptyAfterCheck(sha256, offset, length);
      throw err;
    }
    const stream = response.Body as Readable;
    try {
      const total = response.ContentRange ? Number(/\/(\d+)$/.exec(response.ContentRange)?.[1]) : response.ContentLength;
      if (total === undefined || Number.isNaN(total) || (ranged && !response.ContentRange)) {
        throw new Error(`S3 answered GET ${key} (${ranged ? "ranged" : "whole"}) without a usable size`);
      }
      checkBlobRange(sha256, total, offset, length);
    } catch (err) {
      stream.destroy();
      throw err;
    }
    return stream;
  }

  async delete(sha256: string): Promise<void> {
    if (!SHA256_HEX.test(sha256)) return;
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: BLOB_PREFIX + sha256 }));
  }

  async *list(): AsyncIterable<StoredBlobInfo> {
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: BLOB_PREFIX, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) {
        const sha256 = object.Key?.slice(BLOB_PREFIX.length) ?? "";
        if (!SHA256_HEX.test(sha256)) continue;
        yield { sha256, size: object.Size ?? 0, createTime: object.LastModified ?? new Date(0) };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /**
   * Deletes temporary objects and aborts multipart uploads under `tmp/` started more than staleMs
   * before now (server time as S3 reports it): leftovers of puts cut short by a crash. Returns
   * how many were removed. A put running for longer than staleMs would lose its temp data and fail.
   */
  async sweepTemp(staleMs: number, now = Date.now()): Promise<number> {
    const cutoff = now - staleMs;
    let removed = 0;
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: TEMP_PREFIX, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key && object.LastModified && object.LastModified.getTime() < cutoff) {
          await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: object.Key }));
          removed++;
        }
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    for await (const upload of this.multipartUploads(TEMP_PREFIX)) {
      if (upload.initiated.getTime() < cutoff) {
        await this.abortUpload(upload.key, upload.uploadId);
        removed++;
      }
    }
    return removed;
  }

  /** Temporary keys and in-progress multipart uploads under `tmp/`, for tests and diagnostics. */
  async listTemp(): Promise<string[]> {
    const names: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: TEMP_PREFIX, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) if (object.Key) names.push(object.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    for await (const upload of this.multipartUploads(TEMP_PREFIX)) names.push(`${upload.key} (multipart upload)`);
    return names;
  }

  /** Releases the client's sockets. The store must not be used afterwards. */
  async close(): Promise<void> {
    this.client.destroy();
  }

  private async emptyAfterCheck(sha256: string, offset: number, length: number | undefined): Promise<Readable> {
    const info = await this.stat(sha256);
    if (!info) throw new BlobNotFoundError(sha256);
    if (checkBlobRange(sha256, info.size, offset, length) !== 0) {
      throw new Error(`S3 refused a satisfiable range of blob ${sha256} (offset ${offset}, size ${info.size})`);
    }
    return Readable.from([]);
  }

  /** Server-side copy of the verified temporary object to its final key. */
  private async commit(tempKey: string, key: string, size: number): Promise<void> {
    const copySource = `${this.bucket}/${tempKey}`;
    if (size <= this.maxCopyObjectBytes) {
      await this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: key, CopySource: copySource }));
      return;
    }
    const { UploadId: uploadId } = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key }));
    if (!uploadId) throw new Error(`S3 started no multipart upload for ${key}`);
    try {
      const count = Math.ceil(size / this.copyPartBytes);
      const parts: CompletedPart[] = new Array(count);
      let next = 0;
      const worker = async () => {
        while (next < count) {
          const index = next++;
          const start = index * this.copyPartBytes;
          const end = Math.min(size, start + this.copyPartBytes) - 1;
          const result = await this.client.send(
            new UploadPartCopyCommand({
              Bucket: this.bucket,
              Key: key,
              UploadId: uploadId,
              PartNumber: index + 1,
              CopySource: copySource,
              CopySourceRange: `bytes=${start}-${end}`,
            }),
          );
          parts[index] = { PartNumber: index + 1, ETag: result.CopyPartResult?.ETag };
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.queueSize, count) }, worker));
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
    } catch (err) {
      await this.abortUpload(key, uploadId).catch((abortErr: unknown) =>
        this.options.logger?.warn({ err: abortErr, key }, "could not abort a failed multipart copy"),
      );
      throw err;
    }
  }

  /**
   * Deletes a put's temporary object and, when the upload itself failed, aborts any multipart
   * upload left for it (lib-storage aborts its own, but not when the abort request fails or races).
   * Errors are logged, not thrown: the sweep at the next open removes what is left.
   */
  private async discardTemp(tempKey: string, uploadFailed: boolean): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: tempKey }));
      if (uploadFailed) {
        for await (const upload of this.multipartUploads(tempKey)) {
          if (upload.key === tempKey) await this.abortUpload(upload.key, upload.uploadId);
        }
      }
    } catch (err) {
      this.options.logger?.warn({ err, key: tempKey }, "could not remove a temporary upload object");
    }
  }

  private async abortUpload(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }));
    } catch (err) {
      if (status(err) !== 404) throw err;
    }
  }

  private async *multipartUploads(prefix: string): AsyncIterable<{ key: string; uploadId: string; initiated: Date }> {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await this.client.send(
        new ListMultipartUploadsCommand({
          Bucket: this.bucket,
          Prefix: prefix,
          KeyMarker: keyMarker,
          UploadIdMarker: uploadIdMarker,
        }),
      );
      for (const upload of page.Uploads ?? []) {
        if (upload.Key && upload.UploadId) {
          yield { key: upload.Key, uploadId: upload.UploadId, initiated: upload.Initiated ?? new Date(0) };
        }
      }
      if (!page.IsTruncated) return;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }
}

/**
 * Connects to S3 (path-style addressing, checksums only where the API requires them, which is
 * what RGW 16 understands), creates the bucket when missing, and deletes the temporary objects
 * and multipart uploads of puts interrupted by a crash (older than options.staleTempMs, default
 * 1 hour). Rejects with a message naming the endpoint and bucket when they cannot be used.
 */
export async function openS3BlobStore(options: S3BlobStoreOptions): Promise<S3BlobStore> {
  const client = new S3Client({
    endpoint: options.endpoint,
    region: options.region ?? "us-east-1",
    forcePathStyle: true,
    credentials:
      options.accessKeyId !== undefined
        ? { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey ?? "" }
        : undefined,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    // No idle timeout on requests: a download paused by a slow consumer must not be cut.
    requestHandler: { connectionTimeout: 10_000 },
  });
  try {
    const store = new S3BlobStore(client, options);
    await ensureBucket(client, options.bucket, options.endpoint);
    await store.sweepTemp(options.staleTempMs ?? 60 * 60 * 1000, (options.now ?? Date.now)());
    return store;
  } catch (err) {
    client.destroy();
    throw err;
  }
}

async function ensureBucket(client: S3Client, bucket: string, endpoint: string): Promise<void> {
  const where = `S3 bucket "${bucket}" at ${endpoint}`;
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
    return;
  } catch (err) {
    if (status(err) !== 404) throw new Error(`${where} cannot be used: ${describe(err)}`, { cause: err });
  }
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    if ((err as Error).name === "BucketAlreadyOwnedByYou") return;
    throw new Error(`${where} is missing and cannot be created: ${describe(err)}`, { cause: err });
  }
}

function status(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

function describe(err: unknown): string {
  const code = status(err);
  const e = err as Error;
  return `${e.name}${code ? ` (HTTP ${code})` : ""}${e.message && e.message !== e.name ? `: ${e.message}` : ""}`;
}
