import type { Collection } from "mongodb";
import type {
  MemberClaim,
  MemberEnd,
  MemberRecord,
  PipelineDefinition,
  PipelineQuery,
  PipelineRecord,
  PipelineStore,
  PipelineUpdate,
} from "../store/pipeline-store.js";
import type { TaskDefinition } from "../store/task-store.js";
import { type CounterDoc, fromPairs, isDuplicateKey, nextValue, type Pairs, toPairs } from "./mongo-common.js";

/** A stored pipeline definition: as PipelineDefinition, with each task's labels as pairs (see Pairs). */
type PipelineDefinitionDoc = Omit<PipelineDefinition, "members"> & {
  members: (Omit<PipelineDefinition["members"][number], "definition"> & {
    definition: Omit<TaskDefinition, "labels"> & { labels: Pairs };
  })[];
};

/** A pipeline document: `_id` its id. */
export type PipelineDoc = Omit<PipelineRecord, "id" | "definition"> & { _id: string; definition: PipelineDefinitionDoc };

/** A member document, unique on (pipelineId, key); position is its place in the definition. */
export type PipelineMemberDoc = MemberRecord & { position: number };

/**
 * A member claim: `_id` is [pipeline id, key, run] as JSON, so that the unique _id makes the
 * claim single-winner across servers (the only atomic primitive the jongodb test server keeps
 * across connections).
 */
export interface PipelineClaimDoc {
  _id: string;
  pipelineId: string;
  key: string;
  run: number;
  kind: MemberClaim["kind"];
  taskId: string;
}

/** A pipeline's advance lock: `_id` the pipeline id (single-winner insert). */
export interface PipelineLockDoc {
  _id: string;
  holder: string;
  expireTime: number;
}

/** The collections' indexes (created at start by createMongoStore). */
export async function createPipelineIndexes(
  pipelines: Collection<PipelineDoc>,
  members: Collection<PipelineMemberDoc>,
  claims: Collection<PipelineClaimDoc>,
): Promise<void> {
  await pipelines.createIndex({ seq: -1 });
  await pipelines.createIndex({ ownerId: 1, seq: -1 });
  await pipelines.createIndex({ status: 1, seq: 1 });
  await members.createIndex({ pipelineId: 1, key: 1 }, { unique: true });
  await members.createIndex({ pipelineId: 1, position: 1 });
  await claims.createIndex({ pipelineId: 1 });
}

const claimId = (pipelineId: string, key: string, run: number) => JSON.stringify([pipelineId, key, run]);

const toPipeline = (d: PipelineDoc): PipelineRecord => {
  const { _id, definition, ...rest } = d;
  return {
    id: _id,
    ...rest,
    definition: {
      ...definition,
      members: definition.members.map((m) => ({ ...m, definition: { ...m.definition, labels: fromPairs(m.definition.labels) } })),
    },
  };
};

const toMember = (d: PipelineMemberDoc): MemberRecord => ({
  pipelineId: d.pipelineId,
  key: d.key,
  run: d.run,
  state: d.state,
  taskId: d.taskId,
  result: d.result,
  startTime: d.startTime,
  endTime: d.endTime,
});

/** A member as its claim makes it, when the member document was not updated yet. */
const claimed = (m: MemberRecord, c: PipelineClaimDoc | undefined): MemberRecord =>
  m.state !== "pending" || !c
    ? m
    : {
        ...m,
        state: c.kind === "task" ? "created" : "skipped",
        taskId: c.taskId,
        result: c.kind === "task" ? "none" : "skipped",
      };

/**
 * PipelineStore on MongoDB. A claim is an insert into the claims collection (single-winner on
 * its _id); the member document is then brought to the claim, and members() applies claims
 * whose member update a crash cut off.
 */
export class MongoPipelineStore implements PipelineStore {
  constructor(
    private readonly pipelines: Collection<PipelineDoc>,
    private readonly memberDocs: Collection<PipelineMemberDoc>,
    private readonly claims: Collection<PipelineClaimDoc>,
    private readonly counters: Collection<CounterDoc>,
    private readonly locks: Collection<PipelineLockDoc>,
  ) {}

  async create(p: Omit<PipelineRecord, "seq">): Promise<PipelineRecord> {
    const seq = await nextValue(this.counters, "pipelines");
    const { id, definition, ...rest } = p;
    const members = definition.members.map((m, position) => ({
      pipelineId: id,
      key: m.key,
      position,
      run: 1,
      state: "pending" as const,
      taskId: "",
      result: "none" as const,
      startTime: null,
      endTime: null,
    }));
    if (members.length > 0) await this.memberDocs.insertMany(members);
    await this.pipelines.insertOne({
      _id: id,
      ...rest,
      seq,
      definition: {
        ...definition,
        members: definition.members.map((m) => ({ ...m, definition: { ...m.definition, labels: toPairs(m.definition.labels) } })),
      },
    });
    return { ...p, seq };
  }

  async get(id: string): Promise<PipelineRecord | undefined> {
    const doc = await this.pipelines.findOne({ _id: id });
    return doc ? toPipeline(doc) : undefined;
  }

  async list(q: PipelineQuery): Promise<PipelineRecord[]> {
    const filter: Record<string, unknown> = {};
    if (q.statuses?.length) filter.status = { $in: q.statuses };
    if (q.ownerId) filter.ownerId = q.ownerId;
    if (q.beforeSeq !== undefined) filter.seq = { $lt: q.beforeSeq };
    const docs = await this.pipelines.find(filter).sort({ seq: -1 }).limit(q.limit).toArray();
    return docs.map(toPipeline);
  }

  async listUnfinished(): Promise<string[]> {
    const docs = await this.pipelines
      .find({ status: { $in: ["running", "stop"] } }, { projection: { _id: 1 } })
      .sort({ seq: 1 })
      .toArray();
    return docs.map((d) => d._id);
  }

  async members(pipelineId: string): Promise<MemberRecord[]> {
    const [docs, claims] = await Promise.all([
      this.memberDocs.find({ pipelineId }).sort({ position: 1 }).toArray(),
      this.claims.find({ pipelineId }).toArray(),
    ]);
    const byId = new Map(claims.map((c) => [c._id, c]));
    return docs.map((d) => claimed(toMember(d), byId.get(claimId(pipelineId, d.key, d.run))));
  }

  async claimMember(pipelineId: string, key: string, run: number, claim: MemberClaim): Promise<MemberRecord | undefined> {
    const doc = await this.memberDocs.findOne({ pipelineId, key });
    if (!doc || doc.run !== run) return undefined;
    const _id = claimId(pipelineId, key, run);
    try {
      await this.claims.insertOne({
        _id,
        pipelineId,
        key,
        run,
        kind: claim.kind,
        taskId: claim.kind === "task" ? claim.taskId : "",
      });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
    }
    const winner = await this.claims.findOne({ _id });
    if (!winner) return undefined;
    const member = claimed(toMember(doc), winner);
    await this.memberDocs.updateOne(
      { pipelineId, key, run, state: "pending" },
      { $set: { state: member.state, taskId: member.taskId, result: member.result } },
    );
    return member;
  }

  async endMember(e: MemberEnd): Promise<boolean> {
    const claim = await this.claims.findOne({ _id: claimId(e.pipelineId, e.key, e.run) });
    if (claim?.kind !== "task") return false;
    const updated = await this.memberDocs.updateOne(
      { pipelineId: e.pipelineId, key: e.key, run: e.run },
      { $set: { state: "created", taskId: claim.taskId, result: e.result, startTime: e.startTime, endTime: e.endTime } },
    );
    return updated.matchedCount === 1;
  }

  async update(u: PipelineUpdate): Promise<PipelineRecord | undefined> {
    const filter: Record<string, unknown> = { _id: u.id };
    if (u.ifStatus) filter.status = { $in: u.ifStatus };
    if (u.ifNotStarted) filter.startTime = null;
    const set: Record<string, unknown> = { updateTime: u.now };
    for (const [field, value] of Object.entries(u.set)) if (value !== undefined) set[field] = value;
    const doc = await this.pipelines.findOneAndUpdate(filter, { $set: set }, { returnDocument: "after" });
    return doc ? toPipeline(doc) : undefined;
  }

  async retry(id: string, fromRun: number, keys: string[], now: number): Promise<PipelineRecord | undefined> {
    const doc = await this.pipelines.findOneAndUpdate(
      { _id: id, run: fromRun, status: { $in: ["done", "stopped"] } },
      { $set: { run: fromRun + 1, status: "running", result: "none", endTime: null, updateTime: now } },
      { returnDocument: "after" },
    );
    if (!doc) return undefined;
    for (const key of keys) {
      const member = await this.memberDocs.findOne({ pipelineId: id, key });
      if (!member) continue;
      await this.memberDocs.updateOne(
        { pipelineId: id, key, run: member.run },
        { $set: { run: member.run + 1, state: "pending", taskId: "", result: "none", startTime: null, endTime: null } },
      );
    }
    return toPipeline(doc);
  }

  async delete(id: string): Promise<boolean> {
    const deleted = await this.pipelines.deleteOne({ _id: id });
    await this.memberDocs.deleteMany({ pipelineId: id });
    await this.claims.deleteMany({ pipelineId: id });
    await this.locks.deleteOne({ _id: id });
    return deleted.deletedCount === 1;
  }

  /** Insert-only (single-winner on _id): an expired lock is deleted first, by its exact expiry, so a fresh one is never removed. */
  async lock(pipelineId: string, holder: string, now: number, expireTime: number): Promise<boolean> {
    const current = await this.locks.findOne({ _id: pipelineId });
    if (current && current.holder !== holder && current.expireTime > now) return false;
    if (current) await this.locks.deleteOne({ _id: pipelineId, holder: current.holder, expireTime: current.expireTime });
    try {
      await this.locks.insertOne({ _id: pipelineId, holder, expireTime });
      return true;
    } catch (err) {
      if (isDuplicateKey(err)) return false;
      throw err;
    }
  }

  async unlock(pipelineId: string, holder: string): Promise<void> {
    await this.locks.deleteOne({ _id: pipelineId, holder });
  }
}
