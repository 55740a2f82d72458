import { Readable } from "node:stream";
import { Code, ConnectError } from "@connectrpc/connect";
import { BlobDigestMismatchError, type BlobInfo, type BlobStore } from "./blob-store.js";

/** The fields every upload header has (UploadArtefactHeader, UploadFileHeader, UploadStorageFileHeader). */
export interface UploadHeaderFields {
  size: bigint;
  sha256: string;
}

/** One message of a client-streaming upload: the header first, then byte chunks. */
export interface UploadMessage<H> {
  message: { case: "header"; value: H } | { case: "chunk"; value: Uint8Array } | { case: undefined; value?: undefined };
}

/** What receiveUpload hands to `accept` before any byte is stored. */
export interface ReceiveUploadOptions<H extends UploadHeaderFields> {
  blobs: BlobStore;
  /** Largest accepted `size`; larger uploads fail with ResourceExhausted before any byte is stored. */
  maxBytes: number;
  /**
   * Validates the header (names, paths, permissions) and throws a ConnectError to refuse the
   * upload; called once, before the bytes are read.
   */
  accept: (header: H) => Promise<void> | void;
}

/**
 * Reads a client-streaming upload into the blob store. The first message must be the header;
 * `header.size` must be within `maxBytes` and `header.sha256` a hex sha256. The blob becomes
 * visible only when exactly `size` bytes arrived and their sha256 matched, so an interrupted,
 * short, long or corrupted upload leaves nothing behind and can simply be retried. Errors:
 * InvalidArgument naming the field (`header`, `header.size`, `header.sha256`, `chunk`),
 * ResourceExhausted for an upload over the limit, DataLoss for a digest mismatch.
 */
export async function receiveUpload<H extends UploadHeaderFields>(
  requests: AsyncIterable<UploadMessage<H>>,
  options: ReceiveUploadOptions<H>,
): Promise<{ header: H; blob: BlobInfo }> {
  const iterator = requests[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (first.done || first.value.message.case !== "header") {
    throw new ConnectError("header: the first message of an upload must be its header", Code.InvalidArgument);
  }
  const header = first.value.message.value;
  if (header.size > BigInt(options.maxBytes)) {
    throw new ConnectError(
      `header.size: ${header.size} bytes is over this server's upload limit of ${options.maxBytes} bytes`,
      Code.ResourceExhausted,
    );
  }
  const sha256 = header.sha256.toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(sha256)) {
    throw new ConnectError(`header.sha256: expected 64 hex digits, got ${JSON.stringify(header.sha256)}`, Code.InvalidArgument);
  }
  await options.accept(header);
  const size = Number(header.size);
  let received = 0;
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (;;) {
      const next = await iterator.next();
      if (next.done) break;
      const { message } = next.value;
      if (message.case !== "chunk") throw new ConnectError("chunk: only byte chunks may follow the header", Code.InvalidArgument);
      received += message.value.byteLength;
      if (received > size) throw new ConnectError(`chunk: more bytes than header.size (${size})`, Code.InvalidArgument);
      yield message.value;
    }
    if (received !== size) {
      throw new ConnectError(`chunk: the upload ended after ${received} of ${size} bytes`, Code.InvalidArgument);
    }
  }
  try {
    const blob = await options.blobs.put(Readable.from(chunks(), { objectMode: false }), sha256);
    return { header, blob };
  } catch (err) {
    if (err instanceof BlobDigestMismatchError) {
      throw new ConnectError(`header.sha256: the bytes received do not match ${sha256}`, Code.DataLoss);
    }
    throw err;
  }
}
