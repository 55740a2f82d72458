import type { Database } from "better-sqlite3";
import {
  PlanExistsError,
  type PlanDefinition,
  type PlanQuery,
  type PlanRecord,
  type PlanRunRecord,
  type PlanStore,
} from "../store/plan-store.js";
import type { GroupCommit } from "./group-commit.js";
import { prepared } from "./statement-cache.js";

interface PlanRow {
  id: string;
  owner_id: string;
  definition: string;
  paused: number;
  next_run_time: number | null;
  create_time: number;
  update_time: number;
}

interface PlanRunRow {
  key: string;
  plan_id: string;
  scheduled_time: number;
  fire_time: number;
  kind: string;
  target_id: string;
  manual: number;
  launched: number;
}

const toPlan = (r: PlanRow): PlanRecord => ({
  id: r.id,
  ownerId: r.owner_id,
  definition: JSON.parse(r.definition) as PlanDefinition,
  paused: r.paused !== 0,
  nextRunTime: r.next_run_time,
  createTime: r.create_time,
  updateTime: r.update_time,
});

const toRun = (r: PlanRunRow): PlanRunRecord => ({
  key: r.key,
  planId: r.plan_id,
  scheduledTime: r.scheduled_time,
  fireTime: r.fire_time,
  kind: r.kind === "pipeline" ? "pipeline" : "task",
  targetId: r.target_id,
  manual: r.manual !== 0,
  launched: r.launched !== 0,
});

const code = (err: unknown) => (err as { code?: string }).code ?? "";

/**
 * PlanStore on SQLite. Runs go with their plan through ON DELETE CASCADE, and a claim for a plan
 * that no longer exists fails its foreign key, so it is lost (false) rather than an error.
 */
export class SqlitePlanStore implements PlanStore {
  constructor(
    private readonly db: Database,
    private readonly writes: GroupCommit,
  ) {}

  create(p: PlanRecord): Promise<PlanRecord> {
    return this.writes.write(() => {
      try {
        prepared(
          this.db,
          `INSERT INTO plans (id, owner_id, definition, paused, next_run_time, create_time, update_time)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
        ).run(p.id, p.ownerId, JSON.stringify(p.definition), p.paused ? 1 : 0, p.nextRunTime, p.createTime, p.updateTime);
      } catch (err) {
        if (code(err).startsWith("SQLITE_CONSTRAINT")) throw new PlanExistsError(p.id);
        throw err;
      }
      return { ...p };
    });
  }

  async get(id: string): Promise<PlanRecord | undefined> {
    const row = prepared(this.db, "SELECT * FROM plans WHERE id = ?").get(id) as PlanRow | undefined;
    return row && toPlan(row);
  }

  async list(q: PlanQuery): Promise<PlanRecord[]> {
    const rows = prepared(
      this.db,
      "SELECT * FROM plans WHERE (@ownerId IS NULL OR owner_id = @ownerId) AND id > @afterId ORDER BY id LIMIT @limit",
    ).all({ ownerId: q.ownerId ?? null, afterId: q.afterId ?? "", limit: q.limit }) as PlanRow[];
    return rows.map(toPlan);
  }

  async listActive(): Promise<PlanRecord[]> {
    return (prepared(this.db, "SELECT * FROM plans WHERE paused = 0 ORDER BY id").all() as PlanRow[]).map(toPlan);
  }

  update(
    id: string,
    c: Pick<PlanRecord, "definition" | "paused" | "nextRunTime" | "updateTime">,
  ): Promise<PlanRecord | undefined> {
    return this.writes.write(() => {
      const row = prepared(
        this.db,
        `UPDATE plans SET definition = ?, paused = ?, next_run_time = ?, update_time = ? WHERE id = ? RETURNING *`,
      ).get(JSON.stringify(c.definition), c.paused ? 1 : 0, c.nextRunTime, c.updateTime, id) as PlanRow | undefined;
      return row && toPlan(row);
    });
  }

  advance(id: string, updateTime: number, next: number): Promise<boolean> {
    return this.writes.write(
      () =>
        prepared(
          this.db,
          `UPDATE plans SET next_run_time = ?
           WHERE id = ? AND update_time = ? AND (next_run_time IS NULL OR next_run_time < ?)`,
        ).run(next, id, updateTime, next).changes === 1,
    );
  }

  delete(id: string): Promise<boolean> {
    return this.writes.write(() => prepared(this.db, "DELETE FROM plans WHERE id = ?").run(id).changes === 1);
  }

  claimRun(r: PlanRunRecord): Promise<boolean> {
    return this.writes.write(() => {
      try {
        prepared(
          this.db,
          `INSERT INTO plan_runs (key, plan_id, scheduled_time, fire_time, kind, target_id, manual, launched)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(r.key, r.planId, r.scheduledTime, r.fireTime, r.kind, r.targetId, r.manual ? 1 : 0, r.launched ? 1 : 0);
        return true;
      } catch (err) {
        if (code(err).startsWith("SQLITE_CONSTRAINT")) return false;
        throw err;
      }
    });
  }

  async markLaunched(key: string): Promise<void> {
    await this.writes.write(() => prepared(this.db, "UPDATE plan_runs SET launched = 1 WHERE key = ?").run(key));
  }

  async listRuns(planId: string, limit: number): Promise<PlanRunRecord[]> {
    const rows = prepared(
      this.db,
      "SELECT * FROM plan_runs WHERE plan_id = ? ORDER BY fire_time DESC, scheduled_time DESC LIMIT ?",
    ).all(planId, limit) as PlanRunRow[];
    return rows.map(toRun);
  }

  async listUnlaunched(claimedBefore: number, limit: number): Promise<PlanRunRecord[]> {
    const rows = prepared(this.db, "SELECT * FROM plan_runs WHERE launched = 0 AND fire_time < ? ORDER BY fire_time LIMIT ?").all(
      claimedBefore,
      limit,
    ) as PlanRunRow[];
    return rows.map(toRun);
  }
}
