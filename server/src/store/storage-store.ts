/** A storage: a named, read-only input bucket for tasks (DESIGN §4). */
export interface StorageRecord {
  id: string;
  /** Unique name (validateResourceName). */
  name: string;
  ownerId: string;
  createTime: number;
  /** Number of files, computed when read. */
  fileCount: number;
  /** Sum of the files' sizes in bytes, computed when read. */
  totalSize: number;
}

/** One file of a storage; the bytes are the blob named by sha256. */
export interface StorageFileRecord {
  storageId: string;
  /** Normalised relative path (normalizeFilePath). */
  path: string;
  size: number;
  sha256: string;
  createTime: number;
}

/** create() of a name that already exists. */
export class StorageExistsError extends Error {
  override name = "StorageExistsError";
  constructor(readonly storageName: string) {
    super(`storage "${storageName}" already exists`);
  }
}

/**
 * Persistence of storages and their files. A file row is written only after its blob was stored
 * and verified; deleting a storage or a file removes rows only (the blob garbage collector owns
 * the bytes). Every method is atomic on its own; callers serialize nothing.
 */
export interface StorageStore {
  /** Inserts a new, empty storage; rejects with StorageExistsError when the name is taken. */
  create(storage: { id: string; name: string; ownerId: string; createTime: number }): Promise<StorageRecord>;
  /** By id first, then by name; undefined when neither matches. */
  get(idOrName: string): Promise<StorageRecord | undefined>;
  /** Every storage, or those of one owner, sorted by name. */
  list(ownerId?: string): Promise<StorageRecord[]>;
  /** Removes the storage and its file rows; false when it did not exist. */
  delete(id: string): Promise<boolean>;
  /** The storage's files whose path starts with prefix ("" for all), sorted by path. */
  listFiles(storageId: string, prefix: string): Promise<StorageFileRecord[]>;
  getFile(storageId: string, path: string): Promise<StorageFileRecord | undefined>;
  /** Adds the file or replaces the row at the same path; false when the storage no longer exists. */
  putFile(file: StorageFileRecord): Promise<boolean>;
  /** Removes these paths (missing ones are ignored); returns how many rows went. */
  removeFiles(storageId: string, paths: string[]): Promise<number>;
}
