import type { Collection, Filter } from "mongodb";
import type {
  Assignment,
  AttemptEnd,
  AttemptRecord,
  TaskCount,
  TaskDefinition,
  TaskQuery,
  TaskRecord,
  TaskState,
  TaskStore,
  WaitingQuery,
} from "../store/task-store.js";
import { type CounterDoc, fromPairs, isDuplicateKey, nextValue, type Pairs, toPairs } from "./mongo-common.js";

/** A stored task definition: as TaskDefinition, with labels as pairs (see Pairs). */
export type DefinitionDoc = Omit<TaskDefinition, "labels"> & { labels: Pairs };

/** One attempt inside its task document; tokenHash is the sha256 of its task token, or "". */
export type AttemptDoc = Omit<AttemptRecord, "taskId"> & { tokenHash: string };

/**
 * A task document: the task's fields, `_id` its id, and its attempts embedded as a map from the
 * attempt number ("1", "2", …) to the attempt. Embedding makes every change of a task and its
 * current attempt one single-document findOneAndUpdate, atomic without transactions. A map, not
 * an array: `attempts.<n>.status` is then a plain field path (array element paths and $push are
 * missing from the jongodb test server). tokenHashes lists every attempt's task token hash, so one
 * multikey index finds the attempt a token belongs to.
 */
export type TaskDoc = Omit<TaskRecord, "id" | "definition"> & {
  _id: string;
  definition: DefinitionDoc;
  attempts: Record<string, AttemptDoc>;
  tokenHashes: string[];
};

const ACTIVE: TaskState[] = ["setup", "running", "stop"];

/**
 * A claim: the right to make one transition of one task, taken by inserting the document (its
 * `_id` names the transition: `<task>:<attempt>` to dispatch that attempt, `<task>:<attempt>:<lease>:end`
 * to end it). The unique `_id` lets exactly one inserter win even where findOneAndUpdate is not
 * atomic across connections (the jongodb test server; docs/mongodb.md); on MongoDB it costs one
 * insert and changes nothing.
 */
export interface ClaimDoc {
  _id: string;
  taskId: string;
  time: number;
}

/**
 * A claim older than this whose transition did not happen (its holder died between the claim
 * and the write) may be taken over.
 */
const CLAIM_STALE_MS = 60_000;

/** The collections' indexes (created at start by openMongoStore). */
export async function createTaskIndexes(tasks: Collection<TaskDoc>, claims: Collection<ClaimDoc>): Promise<void> {
  await claims.createIndex({ taskId: 1 });
  await tasks.createIndex({ seq: 1 }, { unique: true });
  await tasks.createIndex({ status: 1, queue: 1, "definition.type": 1, ownerId: 1, seq: 1 });
  await tasks.createIndex({ ownerId: 1, seq: -1 });
  await tasks.createIndex({ pipelineId: 1, seq: -1 });
  await tasks.createIndex({ nodeId: 1, status: 1 });
  await tasks.createIndex({ status: 1, leaseExpireTime: 1 });
  await tasks.createIndex({ status: 1, endTime: 1 });
  await tasks.createIndex({ tokenHashes: 1 });
}

const toTask = (d: TaskDoc): TaskRecord => ({
  id: d._id,
  seq: d.seq,
  definition: { ...d.definition, labels: fromPairs(d.definition.labels) },
  queue: d.queue,
  targetNode: d.targetNode,
  status: d.status,
  result: d.result,
  exitCode: d.exitCode ?? null,
  error: d.error,
  ownerId: d.ownerId,
  pipelineId: d.pipelineId,
  nodeId: d.nodeId,
  attempt: d.attempt,
  leaseId: d.leaseId,
  leaseExpireTime: d.leaseExpireTime,
  infraFailures: d.infraFailures,
  scriptRetries: d.scriptRetries,
  logSize: d.logSize,
  notBefore: d.notBefore,
  createTime: d.createTime,
  startTime: d.startTime ?? null,
  endTime: d.endTime ?? null,
  updateTime: d.updateTime,
});

const toAttempt = (taskId: string, a: AttemptDoc): AttemptRecord => ({
  taskId,
  number: a.number,
  nodeId: a.nodeId,
  leaseId: a.leaseId,
  status: a.status,
  result: a.result,
  exitCode: a.exitCode ?? null,
  error: a.error,
  logBase: a.logBase,
  startTime: a.startTime,
  endTime: a.endTime ?? null,
});

/**
 * TaskStore on MongoDB. seq comes from the "tasks" counter. Compare-and-set methods are one
 * findOneAndUpdate filtered on (id, attempt, lease id, status) exactly like the SQLite WHERE
 * clauses, so two servers racing for a task or a stale agent's message cannot both win.
 */
export class MongoTaskStore implements TaskStore {
  constructor(
    private readonly tasks: Collection<TaskDoc>,
    private readonly counters: Collection<CounterDoc>,
    private readonly claims: Collection<ClaimDoc>,
  ) {}

  /**
   * A seq the counter handed out twice (jongodb's $inc is not atomic across connections) fails
   * the unique seq index: the insert is retried with a fresh one.
   */
  async create(t: Omit<TaskRecord, "seq">): Promise<TaskRecord> {
    const { id, definition, ...rest } = t;
    for (let tries = 1; ; tries++) {
      const seq = await nextValue(this.counters, "tasks");
      try {
        await this.tasks.insertOne({
          ...rest,
          _id: id,
          seq,
          definition: { ...definition, labels: toPairs(definition.labels) },
          attempts: {},
          tokenHashes: [],
        });
        return { ...t, seq };
      } catch (err) {
        if (!isDuplicateKey(err) || tries >= 10 || (await this.tasks.findOne({ _id: id }))) throw err;
      }
    }
  }

  /**
   * Takes the claim named id (see ClaimDoc); false when another holds it. A stale claim is taken
   * over when stillOpen() says its transition never happened.
   */
  private async claim(id: string, taskId: string, now: number, stillOpen: () => Promise<boolean>): Promise<boolean> {
    const insert = async () => {
      try {
        await this.claims.insertOne({ _id: id, taskId, time: now });
        return true;
      } catch (err) {
        if (isDuplicateKey(err)) return false;
        throw err;
      }
    };
    if (await insert()) return true;
    const held = await this.claims.findOne({ _id: id });
    if (!held || held.time > now - CLAIM_STALE_MS || !(await stillOpen())) return false;
    await this.claims.deleteOne({ _id: id, time: held.time });
    return insert();
  }

  async get(id: string): Promise<TaskRecord | undefined> {
    const doc = await this.tasks.findOne({ _id: id });
    return doc ? toTask(doc) : undefined;
  }

  async list(q: TaskQuery): Promise<TaskRecord[]> {
    const filter: Filter<TaskDoc> = {};
    if (q.statuses?.length) filter.status = { $in: q.statuses };
    if (q.result) filter.result = q.result;
    if (q.ownerId) filter.ownerId = q.ownerId;
    if (q.pipelineId) filter.pipelineId = q.pipelineId;
    if (q.queue) filter.queue = q.queue;
    if (q.beforeSeq !== undefined) filter.seq = { $lt: q.beforeSeq };
    return (await this.tasks.find(filter).sort({ seq: -1 }).limit(q.limit).toArray()).map(toTask);
  }

  /**
   * The owners with a matching task (one distinct), then each owner's oldest perOwner tasks (one
   * indexed query each, in parallel), merged by (rank within owner, seq). The SQLite store does
   * this in one window query; the jongodb test server has neither $setWindowFields nor $push in
   * $group, so this form runs on every server.
   */
  async listWaiting(q: WaitingQuery): Promise<TaskRecord[]> {
    if (q.queues.length === 0 || q.types.length === 0 || q.limit <= 0 || q.perOwner <= 0) return [];
    const filter: Filter<TaskDoc> = {
      status: "waiting",
      queue: { $in: q.queues },
      "definition.type": { $in: q.types },
      notBefore: { $lte: q.now },
    };
    const owners = (await this.tasks.distinct("ownerId", filter)) as string[];
    const perOwner = Math.min(q.perOwner, q.limit);
    const lists = await Promise.all(
      owners.map((ownerId) =>
        this.tasks
          .find({ ...filter, ownerId })
          .sort({ seq: 1 })
          .limit(perOwner)
          .toArray(),
      ),
    );
    const ranked = lists.flatMap((docs) => docs.map((doc, rank) => ({ doc, rank })));
    ranked.sort((a, b) => a.rank - b.rank || a.doc.seq - b.doc.seq);
    return ranked.slice(0, q.limit).map((r) => toTask(r.doc));
  }

  async hasWaiting(): Promise<boolean> {
    return (await this.tasks.findOne({ status: "waiting" }, { projection: { _id: 1 } })) !== null;
  }

  async countUnfinished(): Promise<TaskCount[]> {
    const counts = new Map<string, TaskCount>();
    const cursor = this.tasks.find({ status: { $in: ["waiting", ...ACTIVE] } }, { projection: { _id: 0, status: 1, queue: 1 } });
    for await (const doc of cursor) {
      const key = `${doc.status}\u0000${doc.queue}`;
      const entry = counts.get(key);
      if (entry) entry.count++;
      else counts.set(key, { status: doc.status, queue: doc.queue, count: 1 });
    }
    return [...counts.values()];
  }

  async listActive(): Promise<TaskRecord[]> {
    return (
      await this.tasks
        .find({ status: { $in: ACTIVE } })
        .sort({ seq: 1 })
        .toArray()
    ).map(toTask);
  }

  async listFinishedBefore(endTime: number, limit: number): Promise<TaskRecord[]> {
    return (
      await this.tasks
        .find({ status: { $in: ["done", "stopped"] }, endTime: { $ne: null, $lt: endTime } })
        .sort({ endTime: 1, seq: 1 })
        .limit(limit)
        .toArray()
    ).map(toTask);
  }

  async listExpiredLeases(now: number): Promise<TaskRecord[]> {
    return (
      await this.tasks
        .find({ status: { $in: ACTIVE }, leaseExpireTime: { $lt: now } })
        .sort({ seq: 1 })
        .toArray()
    ).map(toTask);
  }

  async attempts(taskId: string): Promise<AttemptRecord[]> {
    const doc = await this.tasks.findOne({ _id: taskId });
    if (!doc) return [];
    return Object.values(doc.attempts ?? {})
      .sort((a, b) => a.number - b.number)
      .map((a) => toAttempt(taskId, a));
  }

  async attemptByTokenHash(tokenHash: string): Promise<AttemptRecord | undefined> {
    if (tokenHash === "") return undefined;
    const doc = await this.tasks.findOne({ tokenHashes: tokenHash });
    const attempt = doc && Object.values(doc.attempts ?? {}).find((a) => a.tokenHash === tokenHash);
    return attempt ? toAttempt(doc._id, attempt) : undefined;
  }

  /**
   * startTime keeps the first attempt's start (SQLite's COALESCE). Update pipelines are missing
   * from jongodb, so that is two filters: first "never started", then "started before"; each is
   * the full compare-and-set, so at most one of them can match.
   */
  async assign(a: Assignment): Promise<TaskRecord | undefined> {
    const number = a.fromAttempt + 1;
    const attempt: AttemptDoc = {
      number,
      nodeId: a.nodeId,
      leaseId: a.leaseId,
      status: "setup",
      result: "none",
      exitCode: null,
      error: "",
      logBase: a.logBase,
      startTime: a.now,
      endTime: null,
      tokenHash: a.tokenHash ?? "",
    };
    const set = {
      status: "setup" as const,
      result: "none" as const,
      exitCode: null,
      error: "",
      nodeId: a.nodeId,
      attempt: number,
      leaseId: a.leaseId,
      leaseExpireTime: a.leaseExpireTime,
      endTime: null,
      updateTime: a.now,
      [`attempts.${number}`]: attempt,
    };
    const token = a.tokenHash ? { $addToSet: { tokenHashes: a.tokenHash } } : {};
    const cas = { _id: a.taskId, status: "waiting" as const, attempt: a.fromAttempt };
    const claimId = `${a.taskId}:${number}`;
    const open = async () => (await this.tasks.countDocuments(cas)) > 0;
    if (!(await this.claim(claimId, a.taskId, a.now, open))) return undefined;
    const assigned = await this.casAssign(cas, set, token, a.now);
    if (!assigned) await this.claims.deleteOne({ _id: claimId });
    return assigned;
  }

  private async casAssign(
    cas: Filter<TaskDoc>,
    set: Record<string, unknown>,
    token: object,
    now: number,
  ): Promise<TaskRecord | undefined> {
    const first = await this.tasks.findOneAndUpdate(
      { ...cas, startTime: null },
      { $set: { ...set, startTime: now }, ...token },
      { returnDocument: "after" },
    );
    if (first) return toTask(first);
    const again = await this.tasks.findOneAndUpdate(
      { ...cas, startTime: { $ne: null } },
      { $set: set, ...token },
      { returnDocument: "after" },
    );
    return again ? toTask(again) : undefined;
  }

  async markRunning(taskId: string, attempt: number, leaseId: string, now: number): Promise<TaskRecord | undefined> {
    const doc = await this.tasks.findOneAndUpdate(
      { _id: taskId, attempt, leaseId, status: "setup" },
      { $set: { status: "running", updateTime: now, [`attempts.${attempt}.status`]: "running" } },
      { returnDocument: "after" },
    );
    return doc ? toTask(doc) : undefined;
  }

  async renewLeases(nodeId: string, leaseExpireTime: number): Promise<void> {
    await this.tasks.updateMany({ nodeId, status: { $in: ACTIVE } }, { $set: { leaseExpireTime } });
  }

  /** MIN(lease, t) as a filter on leases later than t ($min is missing from jongodb). */
  async shortenLeases(nodeId: string, leaseExpireTime: number): Promise<void> {
    await this.tasks.updateMany(
      { nodeId, status: { $in: ACTIVE }, leaseExpireTime: { $gt: leaseExpireTime } },
      { $set: { leaseExpireTime } },
    );
  }

  /** One claim per (attempt, lease) first: two servers' lease sweeps cannot both end it. */
  async endAttempt(e: AttemptEnd): Promise<TaskRecord | undefined> {
    const finished = e.taskStatus !== "waiting";
    const cas: Filter<TaskDoc> = { _id: e.taskId, attempt: e.attempt, leaseId: e.leaseId, status: { $in: ACTIVE } };
    const claimId = `${e.taskId}:${e.attempt}:${e.leaseId}:end`;
    if (!(await this.claim(claimId, e.taskId, e.now, async () => (await this.tasks.countDocuments(cas)) > 0))) return undefined;
    const doc = await this.tasks.findOneAndUpdate(
      cas,
      {
        $set: {
          status: e.taskStatus,
          result: finished ? e.result : "none",
          exitCode: finished ? e.exitCode : null,
          error: finished ? e.error : "",
          leaseId: "",
          leaseExpireTime: 0,
          infraFailures: e.infraFailures,
          scriptRetries: e.scriptRetries,
          logSize: e.logSize,
          endTime: finished ? e.now : null,
          updateTime: e.now,
          [`attempts.${e.attempt}.status`]: e.taskStatus === "stopped" ? "stopped" : "done",
          [`attempts.${e.attempt}.result`]: e.result,
          [`attempts.${e.attempt}.exitCode`]: e.exitCode,
          [`attempts.${e.attempt}.error`]: e.error,
          [`attempts.${e.attempt}.endTime`]: e.now,
        },
      },
      { returnDocument: "after" },
    );
    if (!doc) await this.claims.deleteOne({ _id: claimId });
    return doc ? toTask(doc) : undefined;
  }

  async requestStop(taskId: string, now: number): Promise<TaskRecord | undefined> {
    const doc = await this.tasks.findOneAndUpdate(
      { _id: taskId, status: { $in: ["setup", "running"] } },
      { $set: { status: "stop", updateTime: now } },
      { returnDocument: "after" },
    );
    return doc ? toTask(doc) : undefined;
  }

  async stopWaiting(taskId: string, now: number): Promise<TaskRecord | undefined> {
    const doc = await this.tasks.findOneAndUpdate(
      { _id: taskId, status: "waiting" },
      { $set: { status: "stopped", result: "error", error: "stopped before it ran", endTime: now, updateTime: now } },
      { returnDocument: "after" },
    );
    return doc ? toTask(doc) : undefined;
  }

  async restart(taskId: string, now: number): Promise<TaskRecord | undefined> {
    const doc = await this.tasks.findOneAndUpdate(
      { _id: taskId, status: { $in: ["done", "stopped"] } },
      {
        $set: {
          status: "waiting",
          result: "none",
          exitCode: null,
          error: "",
          nodeId: "",
          infraFailures: 0,
          scriptRetries: 0,
          startTime: null,
          endTime: null,
          notBefore: now,
          updateTime: now,
        },
      },
      { returnDocument: "after" },
    );
    return doc ? toTask(doc) : undefined;
  }

  async delete(taskId: string): Promise<boolean> {
    const deleted = (await this.tasks.deleteOne({ _id: taskId })).deletedCount > 0;
    await this.claims.deleteMany({ taskId });
    return deleted;
  }
}
