import type { Database } from "better-sqlite3";
import type {
  Assignment,
  AttemptEnd,
  AttemptRecord,
  TaskCount,
  TaskQuery,
  TaskRecord,
  TaskStore,
  WaitingQuery,
} from "../store/task-store.js";
import type { GroupCommit } from "./group-commit.js";
import { prepared } from "./statement-cache.js";

interface TaskRow {
  seq: number;
  id: string;
  definition: string;
  queue: string;
  target_node: string;
  status: TaskRecord["status"];
  result: TaskRecord["result"];
  exit_code: number | null;
  error: string;
  owner_id: string;
  pipeline_id: string;
  node_id: string;
  attempt: number;
  lease_id: string;
  lease_expire_time: number;
  infra_failures: number;
  script_retries: number;
  log_size: number;
  not_before: number;
  create_time: number;
  start_time: number | null;
  end_time: number | null;
  update_time: number;
}

interface AttemptRow {
  task_id: string;
  number: number;
  node_id: string;
  lease_id: string;
  status: AttemptRecord["status"];
  result: AttemptRecord["result"];
  exit_code: number | null;
  error: string;
  log_base: number;
  start_time: number;
  end_time: number | null;
}

const ACTIVE = "('setup', 'running', 'stop')";

const toTask = (r: TaskRow): TaskRecord => ({
  id: r.id,
  seq: r.seq,
  definition: JSON.parse(r.definition),
  queue: r.queue,
  targetNode: r.target_node,
  status: r.status,
  result: r.result,
  exitCode: r.exit_code,
  error: r.error,
  ownerId: r.owner_id,
  pipelineId: r.pipeline_id,
  nodeId: r.node_id,
  attempt: r.attempt,
  leaseId: r.lease_id,
  leaseExpireTime: r.lease_expire_time,
  infraFailures: r.infra_failures,
  scriptRetries: r.script_retries,
  logSize: r.log_size,
  notBefore: r.not_before,
  createTime: r.create_time,
  startTime: r.start_time,
  endTime: r.end_time,
  updateTime: r.update_time,
});

const toAttempt = (r: AttemptRow): AttemptRecord => ({
  taskId: r.task_id,
  number: r.number,
  nodeId: r.node_id,
  leaseId: r.lease_id,
  status: r.status,
  result: r.result,
  exitCode: r.exit_code,
  error: r.error,
  logBase: r.log_base,
  startTime: r.start_time,
  endTime: r.end_time,
});

/** TaskStore on SQLite. Compare-and-set methods check (id, attempt, lease) in their WHERE clause. */
export class SqliteTaskStore implements TaskStore {
  constructor(
    private readonly db: Database,
    private readonly writes: GroupCommit,
  ) {}

  create(t: Omit<TaskRecord, "seq">): Promise<TaskRecord> {
    return this.writes.write(() => {
      const info = prepared(
        this.db,
        `INSERT INTO tasks (id, definition, type, queue, target_node, status, result, exit_code, error, owner_id, pipeline_id,
           node_id, attempt, lease_id, lease_expire_time, infra_failures, script_retries, log_size, not_before,
           create_time, start_time, end_time, update_time)
         VALUES (@id, @definition, @type, @queue, @targetNode, @status, @result, @exitCode, @error, @ownerId, @pipelineId,
           @nodeId, @attempt, @leaseId, @leaseExpireTime, @infraFailures, @scriptRetries, @logSize, @notBefore,
           @createTime, @startTime, @endTime, @updateTime)`,
      ).run({ ...t, definition: JSON.stringify(t.definition), type: t.definition.type });
      return { ...t, seq: Number(info.lastInsertRowid) };
    });
  }

  async get(id: string): Promise<TaskRecord | undefined> {
    const row = prepared(this.db, "SELECT * FROM tasks WHERE id = ?").get(id) as TaskRow | undefined;
    return row && toTask(row);
  }

  async list(q: TaskQuery): Promise<TaskRecord[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.statuses?.length) {
      where.push(`status IN (${q.statuses.map(() => "?").join(", ")})`);
      args.push(...q.statuses);
    }
    for (const [column, value] of [
      ["result", q.result],
      ["owner_id", q.ownerId],
      ["pipeline_id", q.pipelineId],
      ["queue", q.queue],
    ] as const) {
      if (value) {
        where.push(`${column} = ?`);
        args.push(value);
      }
    }
    if (q.beforeSeq !== undefined) {
      where.push("seq < ?");
      args.push(q.beforeSeq);
    }
    const sql = `SELECT * FROM tasks ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY seq DESC LIMIT ?`;
    return (prepared(this.db, sql).all(...args, q.limit) as TaskRow[]).map(toTask);
  }

  async listWaiting(q: WaitingQuery): Promise<TaskRecord[]> {
    if (q.queues.length === 0 || q.types.length === 0) return [];
    const list = (values: string[]) => values.map(() => "?").join(", ");
    const sql = `SELECT * FROM (
        SELECT *, ROW_NUMBER() OVER (PARTITION BY owner_id ORDER BY seq) AS owner_rank FROM tasks
        WHERE status = 'waiting' AND not_before <= ? AND queue IN (${list(q.queues)}) AND type IN (${list(q.types)})
      ) WHERE owner_rank <= ? ORDER BY owner_rank, seq LIMIT ?`;
    return (prepared(this.db, sql).all(q.now, ...q.queues, ...q.types, q.perOwner, q.limit) as TaskRow[]).map(toTask);
  }

  async hasWaiting(): Promise<boolean> {
    return prepared(this.db, "SELECT 1 FROM tasks WHERE status = 'waiting' LIMIT 1").get() !== undefined;
  }

  async listActive(): Promise<TaskRecord[]> {
    return (prepared(this.db, `SELECT * FROM tasks WHERE status IN ${ACTIVE} ORDER BY seq`).all() as TaskRow[]).map(toTask);
  }

  async countUnfinished(): Promise<TaskCount[]> {
    return prepared(
      this.db,
      `SELECT status, queue, COUNT(*) AS count FROM tasks WHERE status = 'waiting' OR status IN ${ACTIVE} GROUP BY status, queue`,
    ).all() as TaskCount[];
  }

  async listExpiredLeases(now: number): Promise<TaskRecord[]> {
    return (
      prepared(this.db, `SELECT * FROM tasks WHERE status IN ${ACTIVE} AND lease_expire_time < ? ORDER BY seq`).all(
        now,
      ) as TaskRow[]
    ).map(toTask);
  }

  async listFinishedBefore(endTime: number, limit: number): Promise<TaskRecord[]> {
    return (
      prepared(
        this.db,
        "SELECT * FROM tasks WHERE status IN ('done', 'stopped') AND end_time < ? ORDER BY end_time, seq LIMIT ?",
      ).all(endTime, limit) as TaskRow[]
    ).map(toTask);
  }

  async attempts(taskId: string): Promise<AttemptRecord[]> {
    return (prepared(this.db, "SELECT * FROM task_attempts WHERE task_id = ? ORDER BY number").all(taskId) as AttemptRow[]).map(
      toAttempt,
    );
  }

  async attemptByTokenHash(tokenHash: string): Promise<AttemptRecord | undefined> {
    if (tokenHash === "") return undefined;
    const row = prepared(this.db, "SELECT * FROM task_attempts WHERE token_hash = ?").get(tokenHash) as AttemptRow | undefined;
    return row && toAttempt(row);
  }

  async assign(a: Assignment): Promise<TaskRecord | undefined> {
    return this.writes.write(() => {
      const moved = prepared(
        this.db,
        `UPDATE tasks SET status = 'setup', result = 'none', exit_code = NULL, error = '', node_id = ?, attempt = ?,
             lease_id = ?, lease_expire_time = ?, start_time = COALESCE(start_time, ?), end_time = NULL, update_time = ?
           WHERE id = ? AND status = 'waiting' AND attempt = ? RETURNING *`,
      ).get(a.nodeId, a.fromAttempt + 1, a.leaseId, a.leaseExpireTime, a.now, a.now, a.taskId, a.fromAttempt);
      if (!moved) return undefined;
      prepared(
        this.db,
        `INSERT INTO task_attempts (task_id, number, node_id, lease_id, status, result, exit_code, error, log_base,
             start_time, end_time, token_hash) VALUES (?, ?, ?, ?, 'setup', 'none', NULL, '', ?, ?, NULL, ?)`,
      ).run(a.taskId, a.fromAttempt + 1, a.nodeId, a.leaseId, a.logBase, a.now, a.tokenHash ?? "");
      return toTask(moved as TaskRow);
    });
  }

  async markRunning(taskId: string, attempt: number, leaseId: string, now: number): Promise<TaskRecord | undefined> {
    return this.writes.write(() => {
      const moved = prepared(
        this.db,
        "UPDATE tasks SET status = 'running', update_time = ? WHERE id = ? AND attempt = ? AND lease_id = ? AND status = 'setup' RETURNING *",
      ).get(now, taskId, attempt, leaseId);
      if (!moved) return undefined;
      prepared(this.db, "UPDATE task_attempts SET status = 'running' WHERE task_id = ? AND number = ?").run(taskId, attempt);
      return toTask(moved as TaskRow);
    });
  }

  renewLeases(nodeId: string, leaseExpireTime: number): Promise<void> {
    return this.writes.write(() => {
      prepared(this.db, `UPDATE tasks SET lease_expire_time = ? WHERE node_id = ? AND status IN ${ACTIVE}`).run(
        leaseExpireTime,
        nodeId,
      );
    });
  }

  shortenLeases(nodeId: string, leaseExpireTime: number): Promise<void> {
    return this.writes.write(() => {
      prepared(
        this.db,
        `UPDATE tasks SET lease_expire_time = MIN(lease_expire_time, ?) WHERE node_id = ? AND status IN ${ACTIVE}`,
      ).run(leaseExpireTime, nodeId);
    });
  }

  async endAttempt(e: AttemptEnd): Promise<TaskRecord | undefined> {
    return this.writes.write(() => {
      const finished = e.taskStatus !== "waiting";
      const moved = prepared(
        this.db,
        `UPDATE tasks SET status = ?, result = ?, exit_code = ?, error = ?, lease_id = '', lease_expire_time = 0,
             infra_failures = ?, script_retries = ?, log_size = ?, end_time = ?, update_time = ?
           WHERE id = ? AND attempt = ? AND lease_id = ? AND status IN ${ACTIVE} RETURNING *`,
      ).get(
        e.taskStatus,
        finished ? e.result : "none",
        finished ? e.exitCode : null,
        finished ? e.error : "",
        e.infraFailures,
        e.scriptRetries,
        e.logSize,
        finished ? e.now : null,
        e.now,
        e.taskId,
        e.attempt,
        e.leaseId,
      );
      if (!moved) return undefined;
      prepared(
        this.db,
        `UPDATE task_attempts SET status = ?, result = ?, exit_code = ?, error = ?, end_time = ?
           WHERE task_id = ? AND number = ?`,
      ).run(e.taskStatus === "stopped" ? "stopped" : "done", e.result, e.exitCode, e.error, e.now, e.taskId, e.attempt);
      return toTask(moved as TaskRow);
    });
  }

  async requestStop(taskId: string, now: number): Promise<TaskRecord | undefined> {
    return this.writes.write(() => {
      const row = prepared(
        this.db,
        "UPDATE tasks SET status = 'stop', update_time = ? WHERE id = ? AND status IN ('setup', 'running') RETURNING *",
      ).get(now, taskId);
      return row ? toTask(row as TaskRow) : undefined;
    });
  }

  async stopWaiting(taskId: string, now: number): Promise<TaskRecord | undefined> {
    return this.writes.write(() => {
      const row = prepared(
        this.db,
        `UPDATE tasks SET status = 'stopped', result = 'error', error = 'stopped before it ran', end_time = ?,
               update_time = ? WHERE id = ? AND status = 'waiting' RETURNING *`,
      ).get(now, now, taskId);
      return row ? toTask(row as TaskRow) : undefined;
    });
  }

  async restart(taskId: string, now: number): Promise<TaskRecord | undefined> {
    return this.writes.write(() => {
      const row = prepared(
        this.db,
        `UPDATE tasks SET status = 'waiting', result = 'none', exit_code = NULL, error = '', node_id = '',
               infra_failures = 0, script_retries = 0, start_time = NULL, end_time = NULL, not_before = ?, update_time = ?
             WHERE id = ? AND status IN ('done', 'stopped') RETURNING *`,
      ).get(now, now, taskId);
      return row ? toTask(row as TaskRow) : undefined;
    });
  }

  delete(taskId: string): Promise<boolean> {
    return this.writes.write(() => prepared(this.db, "DELETE FROM tasks WHERE id = ?").run(taskId).changes > 0);
  }
}
