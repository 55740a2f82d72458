import type { Collection } from "mongodb";
import {
  PlanExistsError,
  type PlanDefinition,
  type PlanQuery,
  type PlanRecord,
  type PlanRunRecord,
  type PlanStore,
} from "../store/plan-store.js";
import type { TaskDefinition } from "../store/task-store.js";
import { fromPairs, isDuplicateKey, type Pairs, toPairs } from "./mongo-common.js";

/** A plan's definition as stored: task labels as pairs (see Pairs). */
export type StoredDefinition = Omit<PlanDefinition, "target"> & {
  target: { kind: "task"; task: Omit<TaskDefinition, "labels"> & { labels: Pairs } } | { kind: "pipeline"; pipeline: string };
};

/** A plan document: `_id` its id. */
export interface PlanDoc {
  _id: string;
  ownerId: string;
  definition: StoredDefinition;
  paused: boolean;
  nextRunTime: number | null;
  createTime: number;
  updateTime: number;
}

/** A plan run document: `_id` its claim key, so the claim is the unique `_id` insert. */
export interface PlanRunDoc extends Omit<PlanRunRecord, "key"> {
  _id: string;
}

/** The collections' indexes (created at start by createMongoStore). */
export async function createPlanIndexes(plans: Collection<PlanDoc>, runs: Collection<PlanRunDoc>): Promise<void> {
  await plans.createIndex({ ownerId: 1, _id: 1 });
  await plans.createIndex({ paused: 1 });
  await runs.createIndex({ planId: 1, fireTime: -1, scheduledTime: -1 });
  await runs.createIndex({ launched: 1, fireTime: 1 });
}

/** The stored form of a plan definition (also for archive import). */
export const storePlanDefinition = (d: PlanDefinition): StoredDefinition => ({
  ...d,
  target:
    d.target.kind === "task"
      ? { kind: "task", task: { ...d.target.task, labels: toPairs(d.target.task.labels) } }
      : // Pipeline specs hold user-chosen map keys (tasks, labels): stored as JSON text, never as field names.
        { kind: "pipeline", pipeline: JSON.stringify(d.target.pipeline) },
});

/** The plan definition of its stored form (also for archive export). */
export const loadPlanDefinition = (d: StoredDefinition): PlanDefinition => ({
  ...d,
  target:
    d.target.kind === "task"
      ? { kind: "task", task: { ...d.target.task, labels: fromPairs(d.target.task.labels) } }
      : { kind: "pipeline", pipeline: JSON.parse(d.target.pipeline) as unknown },
});

const toPlan = (d: PlanDoc): PlanRecord => ({
  id: d._id,
  ownerId: d.ownerId,
  definition: loadPlanDefinition(d.definition),
  paused: d.paused,
  nextRunTime: d.nextRunTime,
  createTime: d.createTime,
  updateTime: d.updateTime,
});

const toRun = ({ _id, ...rest }: PlanRunDoc): PlanRunRecord => ({ key: _id, ...rest });

/**
 * PlanStore on MongoDB. claimRun is an insert keyed by `_id`, single-winner across every process
 * on the database. Without a foreign key, a claim for a plan deleted meanwhile may be inserted;
 * the firing loop reads the plan before it launches, and delete removes the plan first, then its
 * runs.
 */
export class MongoPlanStore implements PlanStore {
  constructor(
    private readonly plans: Collection<PlanDoc>,
    private readonly runs: Collection<PlanRunDoc>,
  ) {}

  async create(p: PlanRecord): Promise<PlanRecord> {
    try {
      await this.plans.insertOne({
        _id: p.id,
        ownerId: p.ownerId,
        definition: storePlanDefinition(p.definition),
        paused: p.paused,
        nextRunTime: p.nextRunTime,
        createTime: p.createTime,
        updateTime: p.updateTime,
      });
    } catch (err) {
      if (isDuplicateKey(err)) throw new PlanExistsError(p.id);
      throw err;
    }
    return { ...p };
  }

  async get(id: string): Promise<PlanRecord | undefined> {
    const doc = await this.plans.findOne({ _id: id });
    return doc ? toPlan(doc) : undefined;
  }

  async list(q: PlanQuery): Promise<PlanRecord[]> {
    const filter: Record<string, unknown> = { _id: { $gt: q.afterId ?? "" } };
    if (q.ownerId !== undefined) filter.ownerId = q.ownerId;
    const docs = await this.plans.find(filter).sort({ _id: 1 }).limit(q.limit).toArray();
    return docs.map(toPlan);
  }

  async listActive(): Promise<PlanRecord[]> {
    return (await this.plans.find({ paused: false }).sort({ _id: 1 }).toArray()).map(toPlan);
  }

  async update(
    id: string,
    c: Pick<PlanRecord, "definition" | "paused" | "nextRunTime" | "updateTime">,
  ): Promise<PlanRecord | undefined> {
    const doc = await this.plans.findOneAndUpdate(
      { _id: id },
      {
        $set: {
          definition: storePlanDefinition(c.definition),
          paused: c.paused,
          nextRunTime: c.nextRunTime,
          updateTime: c.updateTime,
        },
      },
      { returnDocument: "after" },
    );
    return doc ? toPlan(doc) : undefined;
  }

  async advance(id: string, updateTime: number, next: number): Promise<boolean> {
    const result = await this.plans.updateOne(
      { _id: id, updateTime, $or: [{ nextRunTime: null }, { nextRunTime: { $lt: next } }] },
      { $set: { nextRunTime: next } },
    );
    return result.modifiedCount === 1;
  }

  async delete(id: string): Promise<boolean> {
    const result = await this.plans.deleteOne({ _id: id });
    await this.runs.deleteMany({ planId: id });
    return result.deletedCount === 1;
  }

  async claimRun(r: PlanRunRecord): Promise<boolean> {
    const { key, ...rest } = r;
    try {
      await this.runs.insertOne({ _id: key, ...rest });
      return true;
    } catch (err) {
      if (isDuplicateKey(err)) return false;
      throw err;
    }
  }

  async markLaunched(key: string): Promise<void> {
    await this.runs.updateOne({ _id: key }, { $set: { launched: true } });
  }

  async listRuns(planId: string, limit: number): Promise<PlanRunRecord[]> {
    const docs = await this.runs.find({ planId }).sort({ fireTime: -1, scheduledTime: -1 }).limit(limit).toArray();
    return docs.map(toRun);
  }

  async listUnlaunched(claimedBefore: number, limit: number): Promise<PlanRunRecord[]> {
    const docs = await this.runs
      .find({ launched: false, fireTime: { $lt: claimedBefore } })
      .sort({ fireTime: 1 })
      .limit(limit)
      .toArray();
    return docs.map(toRun);
  }
}
