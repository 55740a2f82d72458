import type { Readable } from "node:stream";

/** A stored blob's identity: hex sha256 of its bytes, and its size. */
export interface BlobInfo {
  sha256: string;
  size: number;
}

/** What put() reads: a stream, or an (async) iterable of byte chunks such as `[buffer]`. */
export type BlobSource = Readable | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** One entry of BlobStore.list(): a visible blob and when its content was last put. */
export interface StoredBlobInfo extends BlobInfo {
  /**
   * When this content was last put (a put of content already stored refreshes it), so that a
   * garbage collector that spares blobs younger than its grace period never deletes content a
   * concurrent publish has just put and is about to reference. Second precision on S3.
   */
  createTime: Date;
}

/** A blob whose bytes did not match the sha256 the caller promised (or a malformed digest). */
export class BlobDigestMismatchError extends Error {
  override name = "BlobDigestMismatchError";
}

/** get() of a blob that does not exist; `code` is "ENOENT" like a missing file's. */
export class BlobNotFoundError extends Error {
  override name = "BlobNotFoundError";
  readonly code = "ENOENT";
  constructor(readonly sha256: string) {
    super(`blob ${sha256} not found`);
  }
}

/**
 * A ranged get() that reaches past the end of the blob; `code` is "ERR_BLOB_RANGE". Reading
 * from offset = size (with no length or length 0) is not an error: it yields no bytes.
 */
export class BlobRangeError extends Error {
  override name = "BlobRangeError";
  readonly code = "ERR_BLOB_RANGE";
  constructor(
    readonly sha256: string,
    readonly size: number,
    readonly offset: number,
    readonly length: number | undefined,
  ) {
    super(
      length === undefined
        ? `blob ${sha256} has ${size} bytes: cannot read from offset ${offset}`
        : `blob ${sha256} has ${size} bytes: cannot read ${length} bytes from offset ${offset}`,
    );
  }
}

/**
 * Content-addressed blob storage (DESIGN §4): the bytes of artefacts, namespace files, storages
 * and sealed log segments, keyed by the hex sha256 of their content. Backends: a local directory
 * (LocalBlobStore, the default), S3 as Ceph's RADOS Gateway serves it (S3BlobStore) and MongoDB
 * GridFS (GridFsBlobStore); all pass blob-store-conformance.ts.
 *
 * Contract:
 * - put() streams the source in while hashing it. The blob becomes visible (stat, get, list) only
 *   once the whole stream arrived and, when expectedSha256 is given, matched it; otherwise put
 *   rejects (BlobDigestMismatchError, or the source's own error) and leaves nothing visible and no
 *   temporary data behind. A put cut short by a crash may leave temporary data that is not
 *   visible; each backend deletes such leftovers older than an hour when it is opened.
 * - Identical content is stored once: putting it again returns the same BlobInfo, refreshes
 *   createTime, and still lists one entry. Concurrent puts of the same (or different) content
 *   are safe and all resolve with the same info.
 * - get(sha256, offset = 0, length?) streams bytes [offset, offset + length) (to the end when
 *   length is omitted). It rejects with BlobNotFoundError (code "ENOENT") when the blob does not
 *   exist and with BlobRangeError (code "ERR_BLOB_RANGE") when the range reaches past the end;
 *   offset = size yields an empty stream. The caller must consume or destroy the stream.
 * - delete() of a missing blob is a no-op. Deleting a blob that a concurrent put is storing may
 *   leave it either present or absent, never half-written; callers that need more (GC versus
 *   publish) use createTime and their own references.
 * - list() yields every visible blob once, in no particular order, with its createTime; it is
 *   meant for garbage collection and may be slow on large stores.
 * - Invalid digests (not 64 lower-case hex characters) are never found: stat is undefined, get
 *   rejects with ENOENT, delete does nothing; put with one rejects with BlobDigestMismatchError.
 * All methods may be called concurrently, from several server processes sharing the backend.
 */
export interface BlobStore {
  put(source: BlobSource, expectedSha256?: string): Promise<BlobInfo>;
  /** Undefined when the blob does not exist. */
  stat(sha256: string): Promise<BlobInfo | undefined>;
  /** Streams [offset, offset + length) of the blob; offset defaults to 0, length to the rest. */
  get(sha256: string, offset?: number, length?: number): Promise<Readable>;
  delete(sha256: string): Promise<void>;
  /** Every visible blob, for garbage collection. */
  list(): AsyncIterable<StoredBlobInfo>;
}

/** A hex sha256 as blob stores name blobs. */
export const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * Validates a get() range against the blob's size: throws BlobRangeError when it reaches past the
 * end or is not made of non-negative integers; returns the number of bytes to read.
 */
export function checkBlobRange(sha256: string, size: number, offset: number, length: number | undefined): number {
  const valid = (n: number) => Number.isSafeInteger(n) && n >= 0;
  if (!valid(offset) || (length !== undefined && !valid(length)) || offset > size) {
    throw new BlobRangeError(sha256, size, offset, length);
  }
  if (length === undefined) return size - offset;
  if (offset + length > size) throw new BlobRangeError(sha256, size, offset, length);
  return length;
}
