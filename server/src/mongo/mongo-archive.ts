import { randomUUID } from "node:crypto";
import { type AnyBulkWriteOperation, type Db, type Document, MongoClient, type ObjectId, type Sort } from "mongodb";
import {
  ARCHIVE_KINDS,
  type ArchiveKind,
  type ArchiveRecords,
  type ArchiveSource,
  type SequenceName,
  type StoreArchive,
} from "../store/store-archive.js";
import { fromPairs, type Pairs, toPairs } from "./mongo-common.js";
import type { EntryDoc, NamespaceDoc, RevisionDoc, TagDoc } from "./mongo-namespace-store.js";
import { tagKey } from "./mongo-namespace-store.js";
import { createMongoStore, DEFAULT_MONGO_DATABASE, mongoDatabaseName } from "./mongo-store.js";
import { loadPlanDefinition, type PlanDoc, storePlanDefinition } from "./mongo-plan-store.js";
import type { AttemptDoc, TaskDoc } from "./mongo-task-store.js";

/** Operations per bulkWrite. */
const BATCH = 500;

/** One write of an imported record: a bulk operation on a collection. */
interface Write {
  collection: string;
  op: AnyBulkWriteOperation;
}

/** What writes of one import share: each namespace's uid (its incarnation), by name. */
interface WriteContext {
  uids: Map<string, string>;
}

/**
 * How one kind maps to documents: where its presence shows (nonEmpty), how it is read in a stable
 * order, and the writes one record becomes (documents, or updates of a parent's document).
 */
interface KindMapping<K extends ArchiveKind> {
  probe: { collection: string; filter: Document };
  read(db: Db): AsyncIterable<ArchiveRecords[K]>;
  write(record: ArchiveRecords[K], ctx: WriteContext): Write[];
}

const withoutId = <T>(doc: Document): T => {
  const { _id, ...rest } = doc;
  void _id;
  return rest as T;
};

async function* scan<T>(
  db: Db,
  collection: string,
  filter: Document,
  sort: Sort,
  map: (d: Document) => T | T[],
): AsyncIterable<T> {
  for await (const doc of db.collection(collection).find(filter).sort(sort)) {
    const out = map(doc);
    if (Array.isArray(out)) yield* out;
    else yield out;
  }
}

const insert = (collection: string, document: object): Write => ({
  collection,
  op: { insertOne: { document: document as Document } },
});

/** An update of the document whose `_id` (a string, never an ObjectId here) is id. */
const updateById = (collection: string, id: string, update: Document): Write => ({
  collection,
  op: { updateOne: { filter: { _id: id as unknown as ObjectId }, update } },
});

/** Records stored as the record itself with one field as `_id`. */
const keyed = <K extends ArchiveKind>(collection: string, idField: string, sort: Sort): KindMapping<K> => ({
  probe: { collection, filter: {} },
  read: (db) => scan(db, collection, {}, sort, (d) => ({ [idField]: d._id, ...withoutId<object>(d) }) as ArchiveRecords[K]),
  write: (r) => {
    const { [idField]: id, ...rest } = r as Record<string, unknown>;
    return [insert(collection, { _id: id, ...rest })];
  },
});

/** Records stored as they are, under a generated `_id`. */
const plain = <K extends ArchiveKind>(collection: string, sort: Sort): KindMapping<K> => ({
  probe: { collection, filter: {} },
  read: (db) => scan(db, collection, {}, sort, (d) => withoutId<ArchiveRecords[K]>(d)),
  write: (r) => [insert(collection, { ...r })],
});

/** The `to` of a namespace entry still in the newest revision (mongo-namespace-store.ts). */
const OPEN = Number.MAX_SAFE_INTEGER;

/**
 * Each namespace document (by name) with what is committed of it: revisions and entries hang off
 * its uid, and only those up to the head count (a claimed revision above the head is a publish
 * that never finished; an entry it closed is still open at the head).
 */
async function* namespaceDocs(db: Db): AsyncIterable<NamespaceDoc> {
  yield* db.collection<NamespaceDoc>("namespaces").find({}).sort({ _id: 1 });
}

const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

const MAPPINGS: { [K in ArchiveKind]: KindMapping<K> } = {
  users: keyed("users", "id", { createTime: 1, _id: 1 }),
  tokens: keyed("tokens", "id", { createTime: 1, _id: 1 }),
  organizations: {
    probe: { collection: "organizations", filter: {} },
    async *read(db) {
      for await (const o of db.collection("organizations").find({}).sort({ name: 1 })) {
        const members = await db.collection("organization_members").find({ organizationId: o._id }).toArray();
        yield {
          id: o._id as unknown as string,
          name: o.name,
          createTime: o.createTime,
          members: members.map((m) => ({ userId: m.userId, role: m.role })).sort((a, b) => byString(a.userId, b.userId)),
        };
      }
    },
    write: (o) => [
      insert("organizations", { _id: o.id, name: o.name, createTime: o.createTime }),
      ...o.members.map((m) => insert("organization_members", { organizationId: o.id, userId: m.userId, role: m.role })),
    ],
  },
  nodes: {
    probe: { collection: "nodes", filter: {} },
    read: (db) =>
      scan(db, "nodes", {}, { createTime: 1, _id: 1 }, (d) => ({
        id: d._id,
        name: d.name,
        hostname: d.hostname,
        credentialHash: d.credentialHash,
        draining: d.draining,
        labels: fromPairs(d.labels as Pairs),
        queues: (d.queues as { queue: string; slots: number }[]).map((q) => ({ queue: q.queue, slots: q.slots })),
        executors: d.executors,
        capacity: d.capacity,
        agentVersion: d.agentVersion,
        createTime: d.createTime,
        connectTime: d.connectTime,
        lastHeartbeatTime: d.lastHeartbeatTime,
      })),
    write: ({ id, labels, ...rest }) => [insert("nodes", { _id: id, ...rest, labels: toPairs(labels) })],
  },
  registrationTokens: keyed("registration_tokens", "id", { createTime: 1, _id: 1 }),
  tasks: {
    probe: { collection: "tasks", filter: {} },
    read: (db) =>
      scan(db, "tasks", {}, { seq: 1 }, (d) => {
        const t = d as TaskDoc;
        return {
          id: t._id,
          seq: t.seq,
          definition: { ...t.definition, labels: fromPairs(t.definition.labels) },
          queue: t.queue,
          targetNode: t.targetNode,
          status: t.status,
          result: t.result,
          exitCode: t.exitCode ?? null,
          error: t.error,
          ownerId: t.ownerId,
          pipelineId: t.pipelineId,
          nodeId: t.nodeId,
          attempt: t.attempt,
          leaseId: t.leaseId,
          leaseExpireTime: t.leaseExpireTime,
          infraFailures: t.infraFailures,
          scriptRetries: t.scriptRetries,
          logSize: t.logSize,
          notBefore: t.notBefore,
          createTime: t.createTime,
          startTime: t.startTime ?? null,
          endTime: t.endTime ?? null,
          updateTime: t.updateTime,
        };
      }),
    write: ({ id, definition, ...rest }) => {
      const doc: TaskDoc = {
        ...rest,
        _id: id,
        definition: { ...definition, labels: toPairs(definition.labels) },
        attempts: {},
        tokenHashes: [],
      };
      return [insert("tasks", doc)];
    },
  },
  attempts: {
    probe: { collection: "tasks", filter: { "attempts.1": { $exists: true } } },
    read: (db) =>
      scan(db, "tasks", {}, { seq: 1 }, (d) =>
        Object.values((d as TaskDoc).attempts ?? {})
          .sort((a, b) => a.number - b.number)
          .map((a) => ({
            taskId: d._id as string,
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
            tokenHash: a.tokenHash ?? "",
          })),
      ),
    write: ({ taskId, ...attempt }) => {
      const doc: AttemptDoc = attempt;
      const update: Document = { $set: { [`attempts.${attempt.number}`]: doc } };
      if (attempt.tokenHash) update.$addToSet = { tokenHashes: attempt.tokenHash };
      return [updateById("tasks", taskId, update)];
    },
  },
  logSegments: plain("log_segments", { taskId: 1, start: 1 }),
  artefacts: plain("artefacts", { taskId: 1, path: 1 }),
  events: {
    probe: { collection: "events", filter: {} },
    read: (db) =>
      scan(db, "events", {}, { _id: 1 }, (d) => ({
        sequence: d._id as unknown as number,
        time: d.time,
        type: d.type,
        subjectId: d.subjectId,
        payloadKind: d.payloadKind,
        payload: JSON.parse(d.payload as string),
        attributes: fromPairs(d.attributes as Pairs),
      })),
    write: (e) => [
      insert("events", {
        _id: e.sequence,
        time: e.time,
        type: e.type,
        subjectId: e.subjectId,
        payloadKind: e.payloadKind,
        payload: JSON.stringify(e.payload ?? null),
        attributes: toPairs(e.attributes),
      }),
    ],
  },
  storages: keyed("storages", "id", { name: 1 }),
  storageFiles: plain("storage_files", { storageId: 1, path: 1 }),
  namespaces: {
    probe: { collection: "namespaces", filter: {} },
    async *read(db) {
      for await (const n of namespaceDocs(db)) {
        yield {
          name: n._id,
          ownerId: n.ownerId,
          organizationId: n.organizationId,
          visibility: n.visibility,
          headRevision: n.headRevision,
          createTime: n.createTime,
        };
      }
    },
    write: (n, ctx) => {
      const uid = randomUUID();
      ctx.uids.set(n.name, uid);
      const doc: NamespaceDoc = {
        _id: n.name,
        uid,
        ownerId: n.ownerId,
        organizationId: n.organizationId,
        visibility: n.visibility,
        headRevision: n.headRevision,
        createTime: n.createTime,
        tags: {},
      };
      return [insert("namespaces", doc)];
    },
  },
  namespaceRevisions: {
    probe: { collection: "namespace_revisions", filter: {} },
    async *read(db) {
      for await (const n of namespaceDocs(db)) {
        const revisions = db.collection<RevisionDoc>("namespace_revisions");
        for await (const r of revisions.find({ uid: n.uid, number: { $lte: n.headRevision } }).sort({ number: 1 })) {
          yield {
            namespace: n._id,
            number: r.number,
            parent: r.parent,
            fileCount: r.fileCount,
            totalSize: r.totalSize,
            taskId: r.taskId,
            message: r.message,
            creatorId: r.creatorId,
            createTime: r.createTime,
          };
        }
      }
    },
    write: (r, ctx) => {
      const uid = uidOf(ctx, r.namespace);
      const doc: RevisionDoc = { ...r, _id: `${uid}:${r.number}`, uid, tag: "", state: "committed", claimTime: r.createTime };
      return [insert("namespace_revisions", doc)];
    },
  },
  namespaceEntries: {
    probe: { collection: "namespace_entries", filter: {} },
    async *read(db) {
      for await (const n of namespaceDocs(db)) {
        const entries = db.collection<EntryDoc>("namespace_entries");
        const head = n.headRevision;
        for await (const e of entries.find({ uid: n.uid, from: { $lte: head } }).sort({ path: 1, from: 1 })) {
          yield {
            namespace: n._id,
            path: e.path,
            fromRevision: e.from,
            toRevision: e.to > head ? null : e.to,
            size: e.size,
            sha256: e.sha256,
          };
        }
      }
    },
    write: (e, ctx) => {
      const doc: EntryDoc = {
        uid: uidOf(ctx, e.namespace),
        path: e.path,
        from: e.fromRevision,
        to: e.toRevision ?? OPEN,
        size: e.size,
        sha256: e.sha256,
      };
      return [insert("namespace_entries", doc)];
    },
  },
  namespaceTags: {
    probe: { collection: "namespaces", filter: { tags: { $ne: {} } } },
    async *read(db) {
      for await (const n of namespaceDocs(db)) {
        for (const t of Object.values(n.tags ?? {}).sort((a, b) => byString(a.name, b.name))) {
          yield { namespace: n._id, name: t.name, revision: t.revision, updateTime: t.updateTime };
        }
      }
    },
    write: (t) => {
      const tag: TagDoc = { name: t.name, revision: t.revision, updateTime: t.updateTime };
      return [updateById("namespaces", t.namespace, { $set: { [`tags.${tagKey(t.name)}`]: tag } })];
    },
  },
  publishers: keyed("namespace_publishers", "id", { createTime: 1, _id: 1 }),
  deliveries: keyed("deliveries", "id", { seq: 1 }),
  deliveryCursor: {
    probe: { collection: "delivery_cursor", filter: { _id: "deliveries" } },
    read: (db) => scan(db, "delivery_cursor", { _id: "deliveries" }, { _id: 1 }, (d) => ({ eventSequence: d.eventSequence })),
    write: (c) => [insert("delivery_cursor", { _id: "deliveries", eventSequence: c.eventSequence })],
  },
  plans: {
    probe: { collection: "plans", filter: {} },
    read: (db) =>
      scan(db, "plans", {}, { _id: 1 }, (d) => {
        const p = d as unknown as PlanDoc;
        return {
          id: p._id,
          ownerId: p.ownerId,
          definition: loadPlanDefinition(p.definition),
          paused: p.paused,
          nextRunTime: p.nextRunTime,
          createTime: p.createTime,
          updateTime: p.updateTime,
        };
      }),
    write: ({ id, definition, ...rest }) => [insert("plans", { _id: id, definition: storePlanDefinition(definition), ...rest })],
  },
  planRuns: keyed("plan_runs", "key", { planId: 1, fireTime: 1, _id: 1 }),
  sequences: {
    probe: { collection: "counters", filter: { _id: { $in: ["tasks", "events", "deliveries"] } } },
    read: (db) =>
      scan(db, "counters", { _id: { $in: ["tasks", "events", "deliveries"] } }, { _id: 1 }, (d) => ({
        name: d._id as unknown as SequenceName,
        value: d.value,
      })),
    // Written by writeAll after everything else: the larger of this and the imported maximum.
    write: () => [],
  },
};

function uidOf(ctx: WriteContext, namespace: string): string {
  const uid = ctx.uids.get(namespace);
  if (!uid) throw new Error(`a record names namespace "${namespace}", which the archive lacks`);
  return uid;
}

/** Every collection an import writes: emptied again when it fails. */
const WRITTEN = [
  "users",
  "tokens",
  "organizations",
  "organization_members",
  "nodes",
  "registration_tokens",
  "tasks",
  "log_segments",
  "artefacts",
  "events",
  "storages",
  "storage_files",
  "namespaces",
  "namespace_revisions",
  "namespace_entries",
  "namespace_publishers",
  "deliveries",
  "delivery_cursor",
  "plans",
  "plan_runs",
  "counters",
];

/** The stored value each counter must reach: task seq, event sequence, delivery seq. */
const COUNTED: Partial<Record<ArchiveKind, { name: SequenceName; value: (r: never) => number }>> = {
  tasks: { name: "tasks", value: (r: ArchiveRecords["tasks"]) => r.seq },
  events: { name: "events", value: (r: ArchiveRecords["events"]) => r.sequence },
  deliveries: { name: "deliveries", value: (r: ArchiveRecords["deliveries"]) => r.seq },
};

/**
 * StoreArchive on the MongoDB database url names (or dbName): opens it like a server does (layout
 * version check, indexes), then reads and writes the collections directly, in the layout of the
 * mongo-*-store.ts files. One connection: imports and exports are sequential anyway.
 */
export async function openMongoArchive(url: string, dbName?: string): Promise<StoreArchive> {
  const client = new MongoClient(url, { appName: "mottainai-archive", maxPoolSize: 1 });
  await client.connect();
  try {
    const db = client.db(dbName ?? mongoDatabaseName(url) ?? DEFAULT_MONGO_DATABASE);
    await createMongoStore(db);
    return { ...createMongoArchive(db), close: () => client.close() };
  } catch (err) {
    await client.close();
    throw err;
  }
}

/**
 * The archive on an open database whose indexes exist (createMongoStore); close() does nothing.
 * writeAll inserts with ordered bulk writes; on failure it deletes every document of the
 * collections it writes (the destination held none: jongodb has neither drop nor dropDatabase,
 * and deleting works everywhere), so the database is as empty as before.
 */
export function createMongoArchive(db: Db): StoreArchive {
  return {
    async nonEmpty() {
      const filled: ArchiveKind[] = [];
      for (const kind of ARCHIVE_KINDS) {
        const { collection, filter } = MAPPINGS[kind].probe;
        if ((await db.collection(collection).findOne(filter)) !== null) filled.push(kind);
      }
      return filled;
    },
    read<K extends ArchiveKind>(kind: K): AsyncIterable<ArchiveRecords[K]> {
      return (MAPPINGS[kind] as KindMapping<K>).read(db);
    },
    async writeAll(source: ArchiveSource) {
      const maxima = new Map<SequenceName, number>();
      const ctx: WriteContext = { uids: new Map() };
      const raise = (name: SequenceName, value: number) => maxima.set(name, Math.max(maxima.get(name) ?? 0, value));
      try {
        for (const kind of ARCHIVE_KINDS) {
          if (kind === "sequences") {
            for await (const s of source("sequences")) raise(s.name, s.value);
          } else {
            await writeKind(db, kind, source, ctx, raise);
          }
        }
        const counters = db.collection<{ _id: string; value: number }>("counters");
        for (const [name, value] of maxima) await counters.updateOne({ _id: name }, { $set: { value } }, { upsert: true });
      } catch (err) {
        for (const name of WRITTEN) await db.collection(name).deleteMany({});
        throw err;
      }
    },
    close: async () => {},
  };
}

async function writeKind<K extends ArchiveKind>(
  db: Db,
  kind: K,
  source: ArchiveSource,
  ctx: WriteContext,
  raise: (name: SequenceName, value: number) => void,
): Promise<void> {
  const m = MAPPINGS[kind] as KindMapping<K>;
  const counted = COUNTED[kind] as { name: SequenceName; value: (r: ArchiveRecords[K]) => number } | undefined;
  let pending: Write[] = [];
  let n = 0;
  const flush = async () => {
    const byCollection = new Map<string, AnyBulkWriteOperation[]>();
    for (const w of pending) byCollection.set(w.collection, [...(byCollection.get(w.collection) ?? []), w.op]);
    pending = [];
    for (const [collection, ops] of byCollection) {
      const updates = ops.filter((op) => "updateOne" in op).length;
      try {
        const result = await db.collection(collection).bulkWrite(ops, { ordered: true });
        if (result.matchedCount !== updates) throw new Error(`${updates - result.matchedCount} records name a missing parent`);
      } catch (err) {
        throw new Error(`importing ${kind} (records up to ${n}): ${(err as Error).message}`, { cause: err });
      }
    }
  };
  for await (const record of source(kind)) {
    n++;
    pending.push(...m.write(record, ctx));
    if (counted) raise(counted.name, counted.value(record));
    if (pending.length >= BATCH) await flush();
  }
  await flush();
}
