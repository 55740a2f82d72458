import type { Database } from "better-sqlite3";
import { StorageExistsError, type StorageFileRecord, type StorageRecord, type StorageStore } from "../store/storage-store.js";
import type { GroupCommit } from "./group-commit.js";
import { prepared } from "./statement-cache.js";

interface StorageRow {
  id: string;
  name: string;
  owner_id: string;
  create_time: number;
  file_count: number;
  total_size: number;
}

interface StorageFileRow {
  storage_id: string;
  path: string;
  size: number;
  sha256: string;
  create_time: number;
}

const toStorage = (r: StorageRow): StorageRecord => ({
  id: r.id,
  name: r.name,
  ownerId: r.owner_id,
  createTime: r.create_time,
  fileCount: r.file_count,
  totalSize: r.total_size,
});

const toFile = (r: StorageFileRow): StorageFileRecord => ({
  storageId: r.storage_id,
  path: r.path,
  size: r.size,
  sha256: r.sha256,
  createTime: r.create_time,
});

const SELECT_STORAGE = `SELECT s.*, COUNT(f.path) AS file_count, COALESCE(SUM(f.size), 0) AS total_size
  FROM storages s LEFT JOIN storage_files f ON f.storage_id = s.id`;

/** StorageStore on SQLite; file rows go with their storage through ON DELETE CASCADE. */
export class SqliteStorageStore implements StorageStore {
  constructor(
    private readonly db: Database,
    private readonly writes: GroupCommit,
  ) {}

  async create(s: { id: string; name: string; ownerId: string; createTime: number }): Promise<StorageRecord> {
    return this.writes.write(() => {
      try {
        prepared(this.db, "INSERT INTO storages (id, name, owner_id, create_time) VALUES (?, ?, ?, ?)").run(
          s.id,
          s.name,
          s.ownerId,
          s.createTime,
        );
      } catch (err) {
        if ((err as { code?: string }).code === "SQLITE_CONSTRAINT_UNIQUE") throw new StorageExistsError(s.name);
        throw err;
      }
      return { ...s, fileCount: 0, totalSize: 0 };
    });
  }

  async get(idOrName: string): Promise<StorageRecord | undefined> {
    const row =
      (prepared(this.db, `${SELECT_STORAGE} WHERE s.id = ? GROUP BY s.id`).get(idOrName) as StorageRow | undefined) ??
      (prepared(this.db, `${SELECT_STORAGE} WHERE s.name = ? GROUP BY s.id`).get(idOrName) as StorageRow | undefined);
    return row && toStorage(row);
  }

  async list(ownerId?: string): Promise<StorageRecord[]> {
    const rows =
      ownerId === undefined
        ? prepared(this.db, `${SELECT_STORAGE} GROUP BY s.id ORDER BY s.name`).all()
        : prepared(this.db, `${SELECT_STORAGE} WHERE s.owner_id = ? GROUP BY s.id ORDER BY s.name`).all(ownerId);
    return (rows as StorageRow[]).map(toStorage);
  }

  async delete(id: string): Promise<boolean> {
    return this.writes.write(() => {
      return prepared(this.db, "DELETE FROM storages WHERE id = ?").run(id).changes > 0;
    });
  }

  async listFiles(storageId: string, prefix: string): Promise<StorageFileRecord[]> {
    const rows = prepared(
      this.db,
      "SELECT * FROM storage_files WHERE storage_id = ? AND substr(path, 1, length(?)) = ? ORDER BY path",
    ).all(storageId, prefix, prefix) as StorageFileRow[];
    return rows.map(toFile);
  }

  async getFile(storageId: string, path: string): Promise<StorageFileRecord | undefined> {
    const row = prepared(this.db, "SELECT * FROM storage_files WHERE storage_id = ? AND path = ?").get(storageId, path) as
      StorageFileRow | undefined;
    return row && toFile(row);
  }

  async putFile(f: StorageFileRecord): Promise<boolean> {
    return this.writes.write(() => {
      try {
        prepared(
          this.db,
          `INSERT INTO storage_files (storage_id, path, size, sha256, create_time) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (storage_id, path) DO UPDATE SET size = excluded.size, sha256 = excluded.sha256,
               create_time = excluded.create_time`,
        ).run(f.storageId, f.path, f.size, f.sha256, f.createTime);
        return true;
      } catch (err) {
        if ((err as { code?: string }).code === "SQLITE_CONSTRAINT_FOREIGNKEY") return false;
        throw err;
      }
    });
  }

  async removeFiles(storageId: string, paths: string[]): Promise<number> {
    return this.writes.write(() => {
      let removed = 0;
      const statement = prepared(this.db, "DELETE FROM storage_files WHERE storage_id = ? AND path = ?");
      for (const path of paths) removed += statement.run(storageId, path).changes;
      return removed;
    });
  }
}
