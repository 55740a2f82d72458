import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { type Collection, type Db, GridFSBucket, MongoClient, MongoServerError, ObjectId } from "mongodb";
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

/** Options of openGridFsBlobStore. */
export interface GridFsBlobStoreOptions {
  /** GridFS bucket name: collections `<bucket>.files`, `<bucket>.chunks`, `<bucket>.uploads`. Default "blobs". */
  bucketName?: string;
  /** Chunk size of new files. Default 1 MiB. */
  chunkSizeBytes?: number;
  /** Uploads started longer ago than this and not finished are deleted at open. Default 1 hour. */
  staleTempMs?: number;
  /** Clock for the stale-upload sweep, ms since the epoch. Default Date.now. */
  now?: () => number;
}

/** A put in progress: `_id` is the GridFS file id its chunks carry. */
interface UploadDoc {
  _id: ObjectId;
  startTime: Date;
}

interface FileDoc {
  _id: ObjectId;
  filename: string;
  length: number;
  uploadDate: Date;
}

const TEMP_PREFIX = "tmp/";

const isDuplicateKey = (err: unknown) => err instanceof MongoServerError && err.code === 11000;

/**
 * BlobStore on MongoDB GridFS through the driver's GridFSBucket (DESIGN §4), for servers whose
 * metadata is on MongoDB. A blob is the GridFS file named by its sha256; a unique index on the
 * file name makes identical content stored once.
 *
 * put() first records the upload in `<bucket>.uploads`, streams the source into a file named
 * `tmp/<id>` while hashing it, and only when the digest is right renames the file to its sha256
 * (GridFSBucket.rename: one update of the files document, the moment it becomes visible). When
 * that name exists (the content is stored already, or a concurrent put won) it refreshes the
 * existing file's uploadDate (list()'s createTime) and deletes its own copy. A failed put deletes
 * its chunks and files document; one cut short by a crash is found through its upload record and
 * deleted at the next open once older than staleTempMs. Writes go one at a time, so a failed put
 * has no chunk insert in flight when it deletes its chunks. Ranged get() reads
 * openDownloadStreamByName with start and end, which fetches only the chunks it needs.
 * Create with openGridFsBlobStore; close() disconnects when the store owns its client.
 */
export class GridFsBlobStore implements BlobStore {
  readonly bucket: GridFSBucket;
  private readonly files: Collection<FileDoc>;
  private readonly chunks: Collection<{ files_id: ObjectId }>;
  private readonly uploads: Collection<UploadDoc>;

  constructor(
    db: Db,
    private readonly options: GridFsBlobStoreOptions = {},
    private readonly onClose: () => Promise<void> = async () => {},
  ) {
    const bucketName = options.bucketName ?? "blobs";
    this.bucket = new GridFSBucket(db, { bucketName, chunkSizeBytes: options.chunkSizeBytes ?? 1024 * 1024 });
    this.files = db.collection<FileDoc>(`${bucketName}.files`);
    this.chunks = db.collection(`${bucketName}.chunks`);
    this.uploads = db.collection<UploadDoc>(`${bucketName}.uploads`);
  }

  /** Creates the indexes (GridFS's own and the unique file name). Idempotent. */
  async init(): Promise<void> {
    await this.files.createIndex({ filename: 1 }, { unique: true, name: "filename_unique" });
    await this.files.createIndex({ filename: 1, uploadDate: 1 });
    await this.chunks.createIndex({ files_id: 1, n: 1 }, { unique: true });
    await this.uploads.createIndex({ startTime: 1 });
  }

  async put(source: BlobSource, expectedSha256?: string): Promise<BlobInfo> {
    if (expectedSha256 !== undefined && !SHA256_HEX.test(expectedSha256)) {
      throw new BlobDigestMismatchError(`expected sha256 "${expectedSha256}" is not 64 lower-case hex characters`);
    }
    const id = new ObjectId();
    await this.uploads.insertOne({ _id: id, startTime: new Date() });
    const hash = createHash("sha256");
    let size = 0;
    let visible = false;
    try {
      const upload = this.bucket.openUploadStreamWithId(id, `${TEMP_PREFIX}${id.toHexString()}`);
      try {
        // One write at a time: a write's callback runs after the chunk inserts it caused, so when
        // the source fails no insert is in flight and the clean-up below finds every chunk.
        for await (const chunk of source) {
          hash.update(chunk);
          size += chunk.length;
          await new Promise<void>((resolve, reject) => upload.write(chunk, (err) => (err ? reject(err) : resolve())));
        }
        upload.end();
        await finished(upload);
      } catch (err) {
        upload.destroy();
        throw err;
      }
      const sha256 = hash.digest("hex");
      if (expectedSha256 !== undefined && sha256 !== expectedSha256) {
        throw new BlobDigestMismatchError(`content has sha256 ${sha256}, expected ${expectedSha256}`);
      }
      visible = await this.publish(id, sha256);
      return { sha256, size };
    } finally {
      if (!visible) await this.discard(id);
      await this.uploads.deleteOne({ _id: id });
    }
  }

  /**
   * Makes the verified temporary file the blob sha256; true when it became that blob, false when
   * the blob existed (then its uploadDate is refreshed and the caller discards its copy).
   */
  private async publish(id: ObjectId, sha256: string): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await this.bucket.rename(id, sha256);
        return true;
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
      }
      const refreshed = await this.files.updateOne({ filename: sha256 }, { $set: { uploadDate: new Date() } });
      // Deleted between the rename and the refresh: try the rename again.
      if (refreshed.matchedCount > 0) return false;
    }
    throw new Error(`blob ${sha256}: the name stayed taken and vanished five times in a row`);
  }

  /** Deletes an upload's chunks and files document (either may be missing). */
  private async discard(id: ObjectId): Promise<void> {
    await this.files.deleteOne({ _id: id });
    await this.chunks.deleteMany({ files_id: id });
  }

  async stat(sha256: string): Promise<BlobInfo | undefined> {
    if (!SHA256_HEX.test(sha256)) return undefined;
    const file = await this.files.findOne({ filename: sha256 });
    return file ? { sha256, size: file.length } : undefined;
  }

  async get(sha256: string, offset = 0, length?: number): Promise<Readable> {
    const info = await this.stat(sha256);
    if (!info) throw new BlobNotFoundError(sha256);
    const count = checkBlobRange(sha256, info.size, offset, length);
    if (count === 0) return Readable.from([]);
    return this.bucket.openDownloadStreamByName(sha256, { start: offset, end: offset + count });
  }

  async delete(sha256: string): Promise<void> {
    if (!SHA256_HEX.test(sha256)) return;
    const file = await this.files.findOne({ filename: sha256 });
    if (file) await this.discard(file._id);
  }

  async *list(): AsyncIterable<StoredBlobInfo> {
    for await (const file of this.files.find({})) {
      if (SHA256_HEX.test(file.filename)) yield { sha256: file.filename, size: file.length, createTime: file.uploadDate };
    }
  }

  /**
   * Deletes the data of puts started more than staleMs before now and never finished (a crash):
   * their chunks, files document and upload record. Returns how many there were.
   */
  async sweepTemp(staleMs: number, now = Date.now()): Promise<number> {
    let removed = 0;
    for (const upload of await this.uploads.find({ startTime: { $lt: new Date(now - staleMs) } }).toArray()) {
      await this.discard(upload._id);
      await this.uploads.deleteOne({ _id: upload._id });
      removed++;
    }
    return removed;
  }

  /** Unfinished uploads and temporary files, for tests and diagnostics. */
  async listTemp(): Promise<string[]> {
    const names = (await this.uploads.find({}).toArray()).map((u) => `upload ${u._id.toHexString()}`);
    for await (const file of this.files.find({})) if (file.filename.startsWith(TEMP_PREFIX)) names.push(file.filename);
    return names;
  }

  async close(): Promise<void> {
    await this.onClose();
  }
}

/**
 * The GridFS blob store on a connected database: creates the indexes and deletes what puts
 * interrupted by a crash left behind (older than options.staleTempMs, default 1 hour).
 */
export async function createGridFsBlobStore(
  db: Db,
  options: GridFsBlobStoreOptions = {},
  onClose?: () => Promise<void>,
): Promise<GridFsBlobStore> {
  const store = new GridFsBlobStore(db, options, onClose);
  await store.init();
  await store.sweepTemp(options.staleTempMs ?? 60 * 60 * 1000, (options.now ?? Date.now)());
  return store;
}

/**
 * Connects to the MongoDB at url (database dbName) with a client of its own and opens the GridFS
 * blob store there; close() disconnects.
 */
export async function openGridFsBlobStore(
  url: string,
  dbName: string,
  options: GridFsBlobStoreOptions = {},
): Promise<GridFsBlobStore> {
  const client = new MongoClient(url, { appName: "mottainai-server-blobs" });
  await client.connect();
  try {
    return await createGridFsBlobStore(client.db(dbName), options, () => client.close());
  } catch (err) {
    await client.close();
    throw err;
  }
}
