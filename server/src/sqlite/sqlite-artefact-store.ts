import type { Database } from "better-sqlite3";
import type { ArtefactRecord, ArtefactStore } from "../store/artefact-store.js";
import type { GroupCommit } from "./group-commit.js";
import { prepared } from "./statement-cache.js";

interface ArtefactRow {
  task_id: string;
  path: string;
  size: number;
  sha256: string;
  create_time: number;
}

const toArtefact = (r: ArtefactRow): ArtefactRecord => ({
  taskId: r.task_id,
  path: r.path,
  size: r.size,
  sha256: r.sha256,
  createTime: r.create_time,
});

/** ArtefactStore on SQLite; rows also go with their task through the foreign key's ON DELETE CASCADE. */
export class SqliteArtefactStore implements ArtefactStore {
  constructor(
    private readonly db: Database,
    private readonly writes: GroupCommit,
  ) {}

  async put(a: ArtefactRecord): Promise<ArtefactRecord> {
    return this.writes.write(() => {
      prepared(
        this.db,
        `INSERT INTO artefacts (task_id, path, size, sha256, create_time) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (task_id, path) DO UPDATE SET size = excluded.size, sha256 = excluded.sha256, create_time = excluded.create_time`,
      ).run(a.taskId, a.path, a.size, a.sha256, a.createTime);
      return { ...a };
    });
  }

  async get(taskId: string, path: string): Promise<ArtefactRecord | undefined> {
    const row = prepared(this.db, "SELECT * FROM artefacts WHERE task_id = ? AND path = ?").get(taskId, path) as
      ArtefactRow | undefined;
    return row && toArtefact(row);
  }

  async list(taskId: string, prefix: string): Promise<ArtefactRecord[]> {
    const rows = prepared(
      this.db,
      "SELECT * FROM artefacts WHERE task_id = ? AND substr(path, 1, length(?)) = ? ORDER BY path",
    ).all(taskId, prefix, prefix) as ArtefactRow[];
    return rows.map(toArtefact);
  }

  async deleteForTask(taskId: string): Promise<number> {
    return this.writes.write(() => {
      return prepared(this.db, "DELETE FROM artefacts WHERE task_id = ?").run(taskId).changes;
    });
  }
}
