import type { BlobStore } from "./blob-store.js";

/** Largest chunk of a server-streaming download (well under the 8 MiB message limit). */
export const DOWNLOAD_CHUNK_BYTES = 1024 * 1024;

/**
 * Reads blob `sha256` from `offset` and yields it in chunks of at most DOWNLOAD_CHUNK_BYTES,
 * each with the offset of its first byte, for the Download* server-streaming RPCs. Yields
 * nothing when offset equals the size; the caller checks that offset ≤ size beforehand.
 */
export async function* readBlobChunks(
  blobs: BlobStore,
  sha256: string,
  offset: number,
): AsyncGenerator<{ offset: number; chunk: Uint8Array }> {
  const stream = await blobs.get(sha256, offset);
  let position = offset;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const data of stream as AsyncIterable<Buffer>) {
    pending.push(data);
    pendingBytes += data.byteLength;
    while (pendingBytes >= DOWNLOAD_CHUNK_BYTES) {
      const all = Buffer.concat(pending);
      const chunk = all.subarray(0, DOWNLOAD_CHUNK_BYTES);
      yield { offset: position, chunk };
      position += chunk.byteLength;
      pending = [all.subarray(DOWNLOAD_CHUNK_BYTES)];
      pendingBytes = pending[0]!.byteLength;
    }
  }
  if (pendingBytes > 0) yield { offset: position, chunk: Buffer.concat(pending) };
}
