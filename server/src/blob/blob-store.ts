import type { Readable } from "node:stream";

/** A stored blob's identity: hex sha256 of its bytes, and its size. */
export interface BlobInfo {
  sha256: string;
  size: number;
}

/** A blob whose bytes did not match the sha256 the caller promised. */
export class BlobDigestMismatchError extends Error {
  override name = "BlobDigestMismatchError";
}

/**
 * Content-addressed blob storage (DESIGN §4). put() streams bytes in, computes their sha256 and
 * makes the blob visible only after the whole stream arrived and (when given) matched the expected
 * digest: an interrupted or corrupted put leaves nothing behind. Identical content is stored once;
 * putting it again is cheap and returns the same info. get() streams a blob, optionally from a
 * byte offset. Methods may be called concurrently; delete() of a missing blob is a no-op.
 */
export interface BlobStore {
  put(source: Readable | AsyncIterable<Uint8Array>, expectedSha256?: string): Promise<BlobInfo>;
  /** Undefined when the blob does not exist. */
  stat(sha256: string): Promise<BlobInfo | undefined>;
  /** Streams the blob from offset (default 0); rejects with ENOENT when it does not exist. */
  get(sha256: string, offset?: number): Promise<Readable>;
  delete(sha256: string): Promise<void>;
}
