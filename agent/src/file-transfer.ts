import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import { Writable } from "node:stream";
import { normalizeFilePath } from "@mottainai/proto";

/** Bytes per upload message: well under the server's 8 MiB message limit. */
export const UPLOAD_CHUNK_BYTES = 1024 * 1024;

/** Hex sha256 and size of a file, read once from disk. */
export async function hashFile(path: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: UPLOAD_CHUNK_BYTES }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.byteLength;
  }
  return { sha256: hash.digest("hex"), size };
}

/** The file's bytes in chunks of UPLOAD_CHUNK_BYTES, for a client-streaming upload. */
export async function* fileChunks(path: string): AsyncGenerator<Uint8Array> {
  for await (const chunk of createReadStream(path, { highWaterMark: UPLOAD_CHUNK_BYTES }) as AsyncIterable<Buffer>) {
    yield chunk;
  }
}

/**
 * Where a server-listed file goes under `root`: the path is checked with normalizeFilePath (so a
 * hostile listing cannot write outside root) and joined to it. Throws naming `field`.
 */
export function targetPath(root: string, path: string, field: string): string {
  const target = join(root, ...normalizeFilePath(path, field).split("/"));
  const rel = relative(root, target);
  if (rel === "" || rel === ".." || rel.startsWith(`..${sep}`)) throw new Error(`${field}: leaves the target directory`);
  return target;
}

/** One message of a Download* stream: bytes at an offset. */
export interface DownloadChunk {
  offset: bigint;
  chunk: Uint8Array;
}

/**
 * Writes a downloaded file to `dest` through `<dest>.part`, hashing it on the way, and renames it
 * into place only when exactly `size` bytes whose sha256 is `sha256` arrived; otherwise removes
 * the partial file and throws a message naming `name`.
 */
export async function downloadVerified(
  stream: AsyncIterable<DownloadChunk>,
  dest: string,
  expected: { sha256: string; size: number },
  name: string,
): Promise<void> {
  await mkdir(dirname(dest), { recursive: true });
  const part = `${dest}.part`;
  const hash = createHash("sha256");
  let received = 0;
  async function* bytes(): AsyncGenerator<Uint8Array> {
    for await (const message of stream) {
      if (message.chunk.byteLength === 0) continue;
      if (Number(message.offset) !== received) {
        throw new Error(`${name}: the server sent bytes at offset ${message.offset}, expected ${received}`);
      }
      received += message.chunk.byteLength;
      hash.update(message.chunk);
      yield message.chunk;
    }
  }
  try {
    await pipeline(bytes(), createWriteStream(part) as Writable);
    if (received !== expected.size) throw new Error(`${name}: received ${received} of ${expected.size} bytes`);
    const digest = hash.digest("hex");
    if (digest !== expected.sha256) throw new Error(`${name}: sha256 mismatch (expected ${expected.sha256}, got ${digest})`);
    await rename(part, dest);
  } catch (err) {
    await rm(part, { force: true });
    throw err;
  }
}

/** MiB with one decimal, for task log progress lines. */
export function mebibytes(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

/** "1 file", "3 files": the count line of an upload or download in the task log. */
export function fileCount(n: number): string {
  return n === 1 ? "1 file" : `${n} files`;
}
