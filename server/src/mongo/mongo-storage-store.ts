import type { Collection } from "mongodb";
import { StorageExistsError, type StorageFileRecord, type StorageRecord, type StorageStore } from "../store/storage-store.js";
import { isDuplicateKey, pathPrefixFilter, upsertRetrying } from "./mongo-common.js";

/** A storage document: `_id` its id; name unique. Counts and sizes are computed when read. */
export interface StorageDoc {
  _id: string;
  name: string;
  ownerId: string;
  createTime: number;
}

/** A storage file document, unique on (storageId, path). */
export type StorageFileDoc = StorageFileRecord;

/** The collections' indexes (created at start by createMongoStore). */
export async function createStorageIndexes(storages: Collection<StorageDoc>, files: Collection<StorageFileDoc>): Promise<void> {
  await storages.createIndex({ name: 1 }, { unique: true });
  await storages.createIndex({ ownerId: 1, name: 1 });
  await files.createIndex({ storageId: 1, path: 1 }, { unique: true });
  await files.createIndex({ sha256: 1 });
}

const toFile = (d: StorageFileDoc): StorageFileRecord => ({
  storageId: d.storageId,
  path: d.path,
  size: d.size,
  sha256: d.sha256,
  createTime: d.createTime,
});

/**
 * StorageStore on MongoDB. Without a foreign key, putFile checks that the storage exists before
 * and after it writes, and removes its row when a concurrent delete won (so no file outlives its
 * storage); delete removes the storage document first, then its files.
 */
export class MongoStorageStore implements StorageStore {
  constructor(
    private readonly storages: Collection<StorageDoc>,
    private readonly files: Collection<StorageFileDoc>,
  ) {}

  async create(s: { id: string; name: string; ownerId: string; createTime: number }): Promise<StorageRecord> {
    try {
      await this.storages.insertOne({ _id: s.id, name: s.name, ownerId: s.ownerId, createTime: s.createTime });
    } catch (err) {
      if (isDuplicateKey(err)) throw new StorageExistsError(s.name);
      throw err;
    }
    return { ...s, fileCount: 0, totalSize: 0 };
  }

  async get(idOrName: string): Promise<StorageRecord | undefined> {
    const doc = (await this.storages.findOne({ _id: idOrName })) ?? (await this.storages.findOne({ name: idOrName }));
    return doc ? (await this.withStats([doc]))[0] : undefined;
  }

  async list(ownerId?: string): Promise<StorageRecord[]> {
    const docs = await this.storages
      .find(ownerId === undefined ? {} : { ownerId })
      .sort({ name: 1 })
      .toArray();
    return this.withStats(docs);
  }

  private async withStats(docs: StorageDoc[]): Promise<StorageRecord[]> {
    const stats = new Map<string, { n: number; total: number }>();
    if (docs.length > 0) {
      const groups = await this.files
        .aggregate<{ _id: string; n: number; total: number }>([
          { $match: { storageId: { $in: docs.map((d) => d._id) } } },
          { $group: { _id: "$storageId", n: { $sum: 1 }, total: { $sum: "$size" } } },
        ])
        .toArray();
      for (const g of groups) stats.set(g._id, g);
    }
    return docs.map((d) => ({
      id: d._id,
      name: d.name,
      ownerId: d.ownerId,
      createTime: d.createTime,
      fileCount: stats.get(d._id)?.n ?? 0,
      totalSize: stats.get(d._id)?.total ?? 0,
    }));
  }

  async delete(id: string): Promise<boolean> {
    const deleted = (await this.storages.deleteOne({ _id: id })).deletedCount > 0;
    await this.files.deleteMany({ storageId: id });
    return deleted;
  }

  async listFiles(storageId: string, prefix: string): Promise<StorageFileRecord[]> {
    const docs = await this.files
      .find({ storageId, ...pathPrefixFilter(prefix) })
      .sort({ path: 1 })
      .toArray();
    return docs.map(toFile);
  }

  async getFile(storageId: string, path: string): Promise<StorageFileRecord | undefined> {
    const doc = await this.files.findOne({ storageId, path });
    return doc ? toFile(doc) : undefined;
  }

  async putFile(f: StorageFileRecord): Promise<boolean> {
    if (!(await this.storages.findOne({ _id: f.storageId }))) return false;
    await upsertRetrying(() =>
      this.files.updateOne(
        { storageId: f.storageId, path: f.path },
        { $set: { size: f.size, sha256: f.sha256, createTime: f.createTime } },
        { upsert: true },
      ),
    );
    if (await this.storages.findOne({ _id: f.storageId })) return true;
    await this.files.deleteMany({ storageId: f.storageId });
    return false;
  }

  async removeFiles(storageId: string, paths: string[]): Promise<number> {
    if (paths.length === 0) return 0;
    return (await this.files.deleteMany({ storageId, path: { $in: paths } })).deletedCount;
  }
}
