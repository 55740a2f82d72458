import type { Database } from "better-sqlite3";
import type { LogSegmentRecord, LogSegmentStore } from "../store/log-segment-store.js";
import type { GroupCommit } from "./group-commit.js";
import { prepared } from "./statement-cache.js";

interface SegmentRow {
  task_id: string;
  start: number;
  length: number;
  sha256: string;
}

/** LogSegmentStore on SQLite. */
export class SqliteLogSegmentStore implements LogSegmentStore {
  constructor(
    private readonly db: Database,
    private readonly writes: GroupCommit,
  ) {}

  async add(s: LogSegmentRecord): Promise<void> {
    return this.writes.write(() => {
      prepared(this.db, "INSERT OR IGNORE INTO log_segments (task_id, start, length, sha256) VALUES (?, ?, ?, ?)").run(
        s.taskId,
        s.start,
        s.length,
        s.sha256,
      );
    });
  }

  async list(taskId: string): Promise<LogSegmentRecord[]> {
    return (prepared(this.db, "SELECT * FROM log_segments WHERE task_id = ? ORDER BY start").all(taskId) as SegmentRow[]).map(
      (r) => ({ taskId: r.task_id, start: r.start, length: r.length, sha256: r.sha256 }),
    );
  }

  async listFrom(taskId: string, start: number): Promise<LogSegmentRecord[]> {
    return (
      prepared(this.db, "SELECT * FROM log_segments WHERE task_id = ? AND start >= ? ORDER BY start").all(
        taskId,
        start,
      ) as SegmentRow[]
    ).map((r) => ({ taskId: r.task_id, start: r.start, length: r.length, sha256: r.sha256 }));
  }

  async deleteTask(taskId: string): Promise<string[]> {
    return this.writes.write(() => {
      const digests = (
        prepared(this.db, "SELECT DISTINCT sha256 FROM log_segments WHERE task_id = ?").all(taskId) as { sha256: string }[]
      ).map((r) => r.sha256);
      prepared(this.db, "DELETE FROM log_segments WHERE task_id = ?").run(taskId);
      const stillUsed = prepared(this.db, "SELECT 1 FROM log_segments WHERE sha256 = ? LIMIT 1");
      return digests.filter((d) => stillUsed.get(d) === undefined);
    });
  }
}
