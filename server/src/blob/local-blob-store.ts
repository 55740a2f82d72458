import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { BlobDigestMismatchError, type BlobInfo, type BlobStore } from "./blob-store.js";

const SHA256 = /^[0-9a-f]{64}$/;

/**
 * BlobStore in a local directory: `<dir>/<first two hex>/<sha256>`, written to a temporary file
 * in `<dir>/tmp` and renamed into place only after the digest is known (rename is atomic on one
 * file system).
 */
export class LocalBlobStore implements BlobStore {
  constructor(private readonly dir: string) {}

  async put(source: Readable | AsyncIterable<Uint8Array>, expectedSha256?: string): Promise<BlobInfo> {
    if (expectedSha256 !== undefined && !SHA256.test(expectedSha256)) {
      throw new BlobDigestMismatchError(`expected sha256 "${expectedSha256}" is not 64 lower-case hex characters`);
    }
    await mkdir(join(this.dir, "tmp"), { recursive: true });
    const tmp = join(this.dir, "tmp", randomBytes(12).toString("hex"));
    const hash = createHash("sha256");
    let size = 0;
    try {
      await pipeline(
        source,
        async function* (chunks: AsyncIterable<Uint8Array>) {
          for await (const chunk of chunks) {
            hash.update(chunk);
            size += chunk.length;
            yield chunk;
          }
        },
        createWriteStream(tmp, { flags: "wx" }),
      );
      const sha256 = hash.digest("hex");
      if (expectedSha256 !== undefined && sha256 !== expectedSha256) {
        throw new BlobDigestMismatchError(`content has sha256 ${sha256}, expected ${expectedSha256}`);
      }
      await mkdir(join(this.dir, sha256.slice(0, 2)), { recursive: true });
      await rename(tmp, this.path(sha256));
      return { sha256, size };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async stat(sha256: string): Promise<BlobInfo | undefined> {
    if (!SHA256.test(sha256)) return undefined;
    try {
      return { sha256, size: (await stat(this.path(sha256))).size };
    } catch {
      return undefined;
    }
  }

  async get(sha256: string, offset = 0): Promise<Readable> {
    const info = await this.stat(sha256);
    if (!info) throw Object.assign(new Error(`blob ${sha256} not found`), { code: "ENOENT" });
    return createReadStream(this.path(sha256), { start: offset });
  }

  async delete(sha256: string): Promise<void> {
    if (SHA256.test(sha256)) await rm(this.path(sha256), { force: true });
  }

  private path(sha256: string): string {
    return join(this.dir, sha256.slice(0, 2), sha256);
  }
}
