import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
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

/** Options of openLocalBlobStore. */
export interface LocalBlobStoreOptions {
  /** Temporary files older than this are deleted at open (leftovers of a crash). Default 1 hour. */
  staleTempMs?: number;
  /** Clock for the stale-temp sweep, in ms since the epoch. Default Date.now. */
  now?: () => number;
}

/** Read buffer of get() streams: large enough that big downloads are not syscall-bound. */
const READ_CHUNK_BYTES = 1024 * 1024;

/**
 * BlobStore in a local directory: `<dir>/<first two hex>/<sha256>`, written to a temporary file
 * in `<dir>/tmp` and renamed into place only after the digest is known (rename is atomic on one
 * file system, and replaces an existing copy of the same content, which refreshes its mtime:
 * the createTime list() reports). Prefer openLocalBlobStore, which also sweeps stale temp files;
 * the constructor does no I/O.
 */
export class LocalBlobStore implements BlobStore {
  constructor(private readonly dir: string) {}

  async put(source: BlobSource, expectedSha256?: string): Promise<BlobInfo> {
    if (expectedSha256 !== undefined && !SHA256_HEX.test(expectedSha256)) {
      throw new BlobDigestMismatchError(`expected sha256 "${expectedSha256}" is not 64 lower-case hex characters`);
    }
    await mkdir(join(this.dir, "tmp"), { recursive: true });
    const tmp = join(this.dir, "tmp", randomBytes(12).toString("hex"));
    const hash = createHash("sha256");
    let size = 0;
    try {
      await pipeline(
        async function* () {
          for await (const chunk of source) {
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
    if (!SHA256_HEX.test(sha256)) return undefined;
    try {
      return { sha256, size: (await stat(this.path(sha256))).size };
    } catch {
      return undefined;
    }
  }

  async get(sha256: string, offset = 0, length?: number): Promise<Readable> {
    if (!SHA256_HEX.test(sha256)) throw new BlobNotFoundError(sha256);
    let handle;
    try {
      handle = await open(this.path(sha256), "r");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new BlobNotFoundError(sha256);
      throw err;
    }
    try {
      const count = checkBlobRange(sha256, (await handle.stat()).size, offset, length);
      if (count === 0) {
        await handle.close();
        return Readable.from([]);
      }
      return handle.createReadStream({ start: offset, end: offset + count - 1, highWaterMark: READ_CHUNK_BYTES });
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async delete(sha256: string): Promise<void> {
    if (SHA256_HEX.test(sha256)) await rm(this.path(sha256), { force: true });
  }

  async *list(): AsyncIterable<StoredBlobInfo> {
    for (const prefix of await readdirOrEmpty(this.dir)) {
      if (!/^[0-9a-f]{2}$/.test(prefix)) continue;
      for (const name of await readdirOrEmpty(join(this.dir, prefix))) {
        if (!SHA256_HEX.test(name) || !name.startsWith(prefix)) continue;
        try {
          const s = await stat(join(this.dir, prefix, name));
          yield { sha256: name, size: s.size, createTime: s.mtime };
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
        }
      }
    }
  }

  /**
   * Deletes temporary files last written more than staleMs before now: what puts cut short by a
   * crash left. Returns how many were deleted. A live put rewrites its file continuously, so only
   * a put stalled for longer than staleMs could lose its temp file (and then fails, visibly).
   */
  async sweepTemp(staleMs: number, now = Date.now()): Promise<number> {
    let deleted = 0;
    const tmp = join(this.dir, "tmp");
    for (const name of await readdirOrEmpty(tmp)) {
      try {
        if ((await stat(join(tmp, name))).mtimeMs < now - staleMs) {
          await rm(join(tmp, name), { force: true });
          deleted++;
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
    }
    return deleted;
  }

  private path(sha256: string): string {
    return join(this.dir, sha256.slice(0, 2), sha256);
  }
}

/**
 * Opens (creating when missing) a local blob directory and deletes the temporary files that
 * puts interrupted by a crash left behind (older than options.staleTempMs, default 1 hour).
 */
export async function openLocalBlobStore(dir: string, options: LocalBlobStoreOptions = {}): Promise<LocalBlobStore> {
  await mkdir(join(dir, "tmp"), { recursive: true });
  const store = new LocalBlobStore(dir);
  await store.sweepTemp(options.staleTempMs ?? 60 * 60 * 1000, (options.now ?? Date.now)());
  return store;
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}
