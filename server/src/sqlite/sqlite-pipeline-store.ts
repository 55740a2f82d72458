import type { Database } from "better-sqlite3";
import type {
  MemberClaim,
  MemberEnd,
  MemberRecord,
  PipelineQuery,
  PipelineRecord,
  PipelineStore,
  PipelineUpdate,
} from "../store/pipeline-store.js";
import type { GroupCommit } from "./group-commit.js";
import { prepared } from "./statement-cache.js";

interface PipelineRow {
  seq: number;
  id: string;
  owner_id: string;
  definition: string;
  status: PipelineRecord["status"];
  result: PipelineRecord["result"];
  run: number;
  create_time: number;
  start_time: number | null;
  end_time: number | null;
  update_time: number;
}

interface MemberRow {
  pipeline_id: string;
  key: string;
  run: number;
  state: MemberRecord["state"];
  task_id: string;
  result: MemberRecord["result"];
  start_time: number | null;
  end_time: number | null;
}

const toPipeline = (r: PipelineRow): PipelineRecord => ({
  id: r.id,
  seq: r.seq,
  ownerId: r.owner_id,
  definition: JSON.parse(r.definition) as PipelineRecord["definition"],
  status: r.status,
  result: r.result,
  run: r.run,
  createTime: r.create_time,
  startTime: r.start_time,
  endTime: r.end_time,
  updateTime: r.update_time,
});

const toMember = (r: MemberRow): MemberRecord => ({
  pipelineId: r.pipeline_id,
  key: r.key,
  run: r.run,
  state: r.state,
  taskId: r.task_id,
  result: r.result,
  startTime: r.start_time,
  endTime: r.end_time,
});

const placeholders = (n: number) => Array.from({ length: n }, () => "?").join(", ");

/** PipelineStore on SQLite: a member claim is an UPDATE of its pending row at its run. */
export class SqlitePipelineStore implements PipelineStore {
  constructor(
    private readonly db: Database,
    private readonly writes: GroupCommit,
  ) {}

  create(p: Omit<PipelineRecord, "seq">): Promise<PipelineRecord> {
    return this.writes.write(() => {
      const info = prepared(
        this.db,
        `INSERT INTO pipelines (id, owner_id, definition, status, result, run, create_time, start_time, end_time, update_time)
         VALUES (@id, @ownerId, @definition, @status, @result, @run, @createTime, @startTime, @endTime, @updateTime)`,
      ).run({ ...p, definition: JSON.stringify(p.definition) });
      const insert = prepared(
        this.db,
        `INSERT INTO pipeline_members (pipeline_id, key, position, run, state, task_id, result, start_time, end_time)
         VALUES (?, ?, ?, 1, 'pending', '', 'none', NULL, NULL)`,
      );
      p.definition.members.forEach((m, i) => insert.run(p.id, m.key, i));
      return { ...p, seq: Number(info.lastInsertRowid) };
    });
  }

  async get(id: string): Promise<PipelineRecord | undefined> {
    const row = prepared(this.db, "SELECT * FROM pipelines WHERE id = ?").get(id) as PipelineRow | undefined;
    return row && toPipeline(row);
  }

  async list(q: PipelineQuery): Promise<PipelineRecord[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.statuses?.length) {
      where.push(`status IN (${placeholders(q.statuses.length)})`);
      args.push(...q.statuses);
    }
    if (q.ownerId) {
      where.push("owner_id = ?");
      args.push(q.ownerId);
    }
    if (q.beforeSeq !== undefined) {
      where.push("seq < ?");
      args.push(q.beforeSeq);
    }
    const sql = `SELECT * FROM pipelines ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY seq DESC LIMIT ?`;
    return (prepared(this.db, sql).all(...args, q.limit) as PipelineRow[]).map(toPipeline);
  }

  async listUnfinished(): Promise<string[]> {
    const rows = prepared(this.db, "SELECT id FROM pipelines WHERE status IN ('running', 'stop') ORDER BY seq").all();
    return (rows as { id: string }[]).map((r) => r.id);
  }

  async members(pipelineId: string): Promise<MemberRecord[]> {
    const rows = prepared(this.db, "SELECT * FROM pipeline_members WHERE pipeline_id = ? ORDER BY position").all(pipelineId);
    return (rows as MemberRow[]).map(toMember);
  }

  claimMember(pipelineId: string, key: string, run: number, claim: MemberClaim): Promise<MemberRecord | undefined> {
    return this.writes.write(() => {
      prepared(
        this.db,
        `UPDATE pipeline_members SET state = ?, task_id = ?, result = ?
         WHERE pipeline_id = ? AND key = ? AND run = ? AND state = 'pending'`,
      ).run(
        claim.kind === "task" ? "created" : "skipped",
        claim.kind === "task" ? claim.taskId : "",
        claim.kind === "task" ? "none" : "skipped",
        pipelineId,
        key,
        run,
      );
      const row = prepared(this.db, "SELECT * FROM pipeline_members WHERE pipeline_id = ? AND key = ? AND run = ?").get(
        pipelineId,
        key,
        run,
      ) as MemberRow | undefined;
      return row && toMember(row);
    });
  }

  endMember(e: MemberEnd): Promise<boolean> {
    return this.writes.write(
      () =>
        prepared(
          this.db,
          `UPDATE pipeline_members SET result = ?, start_time = ?, end_time = ?
           WHERE pipeline_id = ? AND key = ? AND run = ? AND state = 'created'`,
        ).run(e.result, e.startTime, e.endTime, e.pipelineId, e.key, e.run).changes === 1,
    );
  }

  update(u: PipelineUpdate): Promise<PipelineRecord | undefined> {
    return this.writes.write(() => {
      const sets = ["update_time = ?"];
      const args: unknown[] = [u.now];
      const columns = { status: "status", result: "result", startTime: "start_time", endTime: "end_time" } as const;
      for (const [field, column] of Object.entries(columns) as [keyof typeof columns, string][]) {
        if (u.set[field] !== undefined) {
          sets.push(`${column} = ?`);
          args.push(u.set[field]);
        }
      }
      const where = ["id = ?"];
      args.push(u.id);
      if (u.ifStatus) {
        where.push(`status IN (${placeholders(u.ifStatus.length)})`);
        args.push(...u.ifStatus);
      }
      if (u.ifNotStarted) where.push("start_time IS NULL");
      const changed = prepared(this.db, `UPDATE pipelines SET ${sets.join(", ")} WHERE ${where.join(" AND ")}`).run(...args);
      if (changed.changes !== 1) return undefined;
      return toPipeline(prepared(this.db, "SELECT * FROM pipelines WHERE id = ?").get(u.id) as PipelineRow);
    });
  }

  retry(id: string, fromRun: number, keys: string[], now: number): Promise<PipelineRecord | undefined> {
    return this.writes.write(() => {
      const changed = prepared(
        this.db,
        `UPDATE pipelines SET run = run + 1, status = 'running', result = 'none', end_time = NULL, update_time = ?
         WHERE id = ? AND run = ? AND status IN ('done', 'stopped')`,
      ).run(now, id, fromRun);
      if (changed.changes !== 1) return undefined;
      const reset = prepared(
        this.db,
        `UPDATE pipeline_members SET run = run + 1, state = 'pending', task_id = '', result = 'none', start_time = NULL, end_time = NULL
         WHERE pipeline_id = ? AND key = ?`,
      );
      for (const key of keys) reset.run(id, key);
      return toPipeline(prepared(this.db, "SELECT * FROM pipelines WHERE id = ?").get(id) as PipelineRow);
    });
  }

  delete(id: string): Promise<boolean> {
    return this.writes.write(() => {
      prepared(this.db, "DELETE FROM pipeline_locks WHERE pipeline_id = ?").run(id);
      return prepared(this.db, "DELETE FROM pipelines WHERE id = ?").run(id).changes === 1;
    });
  }

  lock(pipelineId: string, holder: string, now: number, expireTime: number): Promise<boolean> {
    return this.writes.write(
      () =>
        prepared(
          this.db,
          `INSERT INTO pipeline_locks (pipeline_id, holder, expire_time) VALUES (?, ?, ?)
           ON CONFLICT (pipeline_id) DO UPDATE SET holder = excluded.holder, expire_time = excluded.expire_time
           WHERE pipeline_locks.holder = excluded.holder OR pipeline_locks.expire_time <= ?`,
        ).run(pipelineId, holder, expireTime, now).changes === 1,
    );
  }

  unlock(pipelineId: string, holder: string): Promise<void> {
    return this.writes.write(() => {
      prepared(this.db, "DELETE FROM pipeline_locks WHERE pipeline_id = ? AND holder = ?").run(pipelineId, holder);
    });
  }
}
