/** One committed artefact of a task: a relative path and the blob (sha256) holding its bytes. */
export interface ArtefactRecord {
  taskId: string;
  /** Normalised relative path (normalizeFilePath). */
  path: string;
  size: number;
  /** Hex sha256 of the content, the blob's name in the blob store. */
  sha256: string;
  createTime: number;
}

/**
 * Persistence of task artefacts: rows that point at blobs. A row is written only after its blob
 * was stored and verified, so a listed artefact can always be read. Removing a task removes its
 * rows (the blobs stay: the blob garbage collector decides when unreferenced content goes).
 * Every method is atomic on its own; callers serialize nothing.
 */
export interface ArtefactStore {
  /** Adds the artefact, or replaces the row of the same (task, path); returns what was stored. */
  put(artefact: ArtefactRecord): Promise<ArtefactRecord>;
  /** Undefined when the task has no artefact at that path. */
  get(taskId: string, path: string): Promise<ArtefactRecord | undefined>;
  /** The task's artefacts whose path starts with prefix ("" for all), sorted by path. */
  list(taskId: string, prefix: string): Promise<ArtefactRecord[]>;
  /** Removes every artefact row of the task; returns how many there were. */
  deleteForTask(taskId: string): Promise<number>;
}
