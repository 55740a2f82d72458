import { randomUUID } from "node:crypto";
import { type AnyBulkWriteOperation, type Collection, MongoBulkWriteError } from "mongodb";
import {
  diffFileRanges,
  type NamespaceDiff,
  type NamespaceFileRecord,
  type NamespaceRecord,
  type NamespaceRevisionRecord,
  type NamespaceStore,
  type NamespaceTagRecord,
  type RevisionCommit,
} from "../store/namespace-store.js";
import { isDuplicateKey, pathPrefixFilter } from "./mongo-common.js";

/** A tag inside its namespace document. */
export interface TagDoc {
  name: string;
  revision: number;
  updateTime: number;
}

/**
 * A namespace document: `_id` its name, `uid` the identity of this incarnation (entries and
 * revisions hang off it, so a namespace deleted and created again never sees what a publish to
 * the old one wrote late), the head and the tags. Tags live here so that a publish moves its
 * tag and the head in one single-document update. Tag names may hold ".", so the map's keys are
 * encoded (tagKey); the value carries the real name.
 */
export interface NamespaceDoc {
  _id: string;
  uid: string;
  ownerId: string;
  organizationId: string;
  visibility: NamespaceRecord["visibility"];
  headRevision: number;
  createTime: number;
  tags: Record<string, TagDoc>;
}

/**
 * A revision document, `_id` "<uid>:<number>". It is inserted before anything of the revision is
 * written (the claim: `_id` uniqueness lets one writer have each number) and holds the revision's
 * metadata and, while pending, the intent: the token of the namespace_intents documents that list
 * its changes. A revision is committed when the head reaches its number; `state` only tells
 * recovery which claims may still need finishing.
 */
export interface RevisionDoc {
  _id: string;
  uid: string;
  namespace: string;
  number: number;
  parent: number;
  fileCount: number;
  totalSize: number;
  taskId: string;
  message: string;
  creatorId: string;
  createTime: number;
  tag: string;
  state: "pending" | "committed";
  /** When the claim was inserted (ms since the epoch, this process's clock). */
  claimTime: number;
  intent?: { token: string; chunks: number };
}

/**
 * One file's content over a range of revisions [from, to): `to` is OPEN while the file is in
 * the newest revision. Unique on (uid, path, from), which makes re-applying a revision's inserts
 * harmless.
 */
export interface EntryDoc {
  uid: string;
  path: string;
  from: number;
  to: number;
  size: number;
  sha256: string;
}

/** Part of a pending revision's changes, `_id` "<token>:<index>". */
export interface IntentDoc {
  _id: string;
  uid: string;
  token: string;
  put: NamespaceFileRecord[];
  remove: string[];
}

/** The `to` of an entry still in the newest revision: after every revision number. */
const OPEN = Number.MAX_SAFE_INTEGER;
/** Changes per intent document (well under the 16 MiB document limit for long paths). */
const INTENT_CHUNK = 1000;
/** Operations per bulkWrite when a revision is applied. */
const BULK = 1000;

/** Options of MongoNamespaceStore. */
export interface MongoNamespaceStoreOptions {
  /**
   * A claimed revision whose head has not moved for this long is finished by the next publish to
   * the namespace (its writer crashed or stalled). Default 10 s. Finishing a claim whose writer is
   * alive is harmless, only duplicate work: every step is idempotent.
   */
  claimTimeoutMs?: number;
  /** Clock, ms since the epoch. Default Date.now. */
  now?: () => number;
}

/** The collections of the namespace store. */
export interface NamespaceCollections {
  namespaces: Collection<NamespaceDoc>;
  revisions: Collection<RevisionDoc>;
  entries: Collection<EntryDoc>;
  intents: Collection<IntentDoc>;
}

/** The collections' indexes (created at start by createMongoStore). */
export async function createNamespaceIndexes(c: NamespaceCollections): Promise<void> {
  await c.revisions.createIndex({ uid: 1, number: -1 });
  await c.entries.createIndex({ uid: 1, path: 1, from: 1 }, { unique: true });
  await c.entries.createIndex({ uid: 1, to: 1, path: 1 });
  await c.entries.createIndex({ uid: 1, from: 1 });
  await c.entries.createIndex({ sha256: 1 });
  await c.intents.createIndex({ token: 1 });
  await c.intents.createIndex({ uid: 1 });
}

/** The tags map key of a tag name: "." and "%" escaped, since "." separates field paths. */
export const tagKey = (tag: string): string => tag.replaceAll("%", "%25").replaceAll(".", "%2E").replaceAll("$", "%24");

const revisionId = (uid: string, number: number) => `${uid}:${number}`;

const toNamespace = (d: NamespaceDoc): NamespaceRecord => ({
  name: d._id,
  ownerId: d.ownerId,
  organizationId: d.organizationId,
  visibility: d.visibility,
  headRevision: d.headRevision,
  createTime: d.createTime,
});

const toRevision = (d: RevisionDoc): NamespaceRevisionRecord => ({
  namespace: d.namespace,
  number: d.number,
  parent: d.parent,
  fileCount: d.fileCount,
  totalSize: d.totalSize,
  taskId: d.taskId,
  message: d.message,
  creatorId: d.creatorId,
  createTime: d.createTime,
});

const toFile = (d: EntryDoc): NamespaceFileRecord => ({ path: d.path, size: d.size, sha256: d.sha256 });

/** Entries whose range holds revision rev. */
const validAt = (uid: string, rev: number) => ({ uid, from: { $lte: rev }, to: { $gt: rev } });

/** Whether a (bulk) write failed only on duplicate keys. */
function onlyDuplicates(err: unknown): boolean {
  if (isDuplicateKey(err)) return true;
  const errors = err instanceof MongoBulkWriteError ? [err.writeErrors].flat() : [];
  return errors.length > 0 && errors.every((e) => e.code === 11000);
}

/**
 * Runs idempotent writes (updates, and inserts that another writer may have made already) in
 * bulks. A bulk that hits a duplicate key is replayed one operation at a time, skipping the
 * duplicates: jongodb aborts an unordered bulk at its first duplicate (real MongoDB goes on and
 * lists it), and replaying idempotent operations is harmless on both.
 */
async function applyIdempotent(collection: Collection<EntryDoc>, ops: AnyBulkWriteOperation<EntryDoc>[]): Promise<void> {
  for (let i = 0; i < ops.length; i += BULK) {
    const batch = ops.slice(i, i + BULK);
    try {
      await collection.bulkWrite(batch, { ordered: false });
      continue;
    } catch (err) {
      if (!onlyDuplicates(err)) throw err;
    }
    for (const op of batch) {
      try {
        await collection.bulkWrite([op]);
      } catch (err) {
        if (!onlyDuplicates(err)) throw err;
      }
    }
  }
}

/**
 * NamespaceStore on MongoDB, without transactions and without relying on findOneAndUpdate being
 * atomic across connections (the jongodb test server breaks both; docs/mongodb.md).
 *
 * Files are entries with revision ranges [from, to), as on SQLite: a publish writes only the
 * changed paths. commitRevision(head → N = head + 1):
 * 1. reads the head revision's counts and the changed paths' current entries (revisions up to
 *    the head never change again, so these reads are stable), and writes the changes as intent
 *    documents under a fresh token;
 * 2. claims N by inserting the revision document `<uid>:<N>` with its metadata and the intent
 *    token: `_id` uniqueness lets exactly one writer claim N (measured on jongodb too); a loser
 *    deletes its intent and returns undefined, so the publisher recomputes against the new head;
 * 3. applies the intent: closes the changed paths' open entries at N and inserts their new
 *    entries from N: invisible to readers, who never look past the head;
 * 4. moves the head N-1 → N and the tag to N in one update of the namespace document: the commit
 *    point, after which readers see the whole revision at once;
 * 5. marks the revision committed and deletes the intent.
 *
 * Recovery rolls forward: every step after the claim is idempotent and determined by the
 * revision document and its intent (closing filters on from < N, inserts are unique on
 * (uid, path, from), the head moves only from N-1). So when a publish finds N claimed but the
 * head still at N-1 for longer than claimTimeoutMs, it finishes N itself (steps 3 to 5) and
 * returns undefined; its publisher then commits on top. A crashed publish thus blocks its
 * namespace for at most claimTimeoutMs and is not lost; a stalled writer that wakes up repeats
 * steps that change nothing and still returns its (committed) revision. The revision's tag
 * move event is published only by the writer that claimed it.
 */
export class MongoNamespaceStore implements NamespaceStore {
  private readonly claimTimeoutMs: number;
  private readonly now: () => number;

  constructor(
    private readonly c: NamespaceCollections,
    /** Removes a deleted namespace's publishers and deliveries. */
    private readonly onDelete: (name: string) => Promise<void>,
    options: MongoNamespaceStoreOptions = {},
  ) {
    this.claimTimeoutMs = options.claimTimeoutMs ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  async create(ns: NamespaceRecord): Promise<boolean> {
    try {
      await this.c.namespaces.insertOne({
        _id: ns.name,
        uid: randomUUID(),
        ownerId: ns.ownerId,
        organizationId: ns.organizationId,
        visibility: ns.visibility,
        headRevision: ns.headRevision,
        createTime: ns.createTime,
        tags: {},
      });
      return true;
    } catch (err) {
      if (isDuplicateKey(err)) return false;
      throw err;
    }
  }

  async get(name: string): Promise<NamespaceRecord | undefined> {
    const doc = await this.c.namespaces.findOne({ _id: name });
    return doc ? toNamespace(doc) : undefined;
  }

  async list(): Promise<NamespaceRecord[]> {
    return (await this.c.namespaces.find({}).sort({ _id: 1 }).toArray()).map(toNamespace);
  }

  async update(
    name: string,
    fields: Pick<NamespaceRecord, "visibility" | "organizationId">,
  ): Promise<NamespaceRecord | undefined> {
    const doc = await this.c.namespaces.findOneAndUpdate(
      { _id: name },
      { $set: { visibility: fields.visibility, organizationId: fields.organizationId } },
      { returnDocument: "after" },
    );
    return doc ? toNamespace(doc) : undefined;
  }

  async delete(name: string): Promise<boolean> {
    const doc = await this.c.namespaces.findOne({ _id: name });
    if (!doc || (await this.c.namespaces.deleteOne({ _id: name, uid: doc.uid })).deletedCount === 0) return false;
    await this.c.intents.deleteMany({ uid: doc.uid });
    await this.c.revisions.deleteMany({ uid: doc.uid });
    await this.c.entries.deleteMany({ uid: doc.uid });
    await this.onDelete(name);
    return true;
  }

  async listRevisions(name: string): Promise<NamespaceRevisionRecord[]> {
    const ns = await this.c.namespaces.findOne({ _id: name });
    if (!ns) return [];
    const docs = await this.c.revisions
      .find({ uid: ns.uid, number: { $lte: ns.headRevision } })
      .sort({ number: -1 })
      .toArray();
    return docs.map(toRevision);
  }

  async getRevision(name: string, number: number): Promise<NamespaceRevisionRecord | undefined> {
    const ns = await this.c.namespaces.findOne({ _id: name });
    if (!ns || number < 1 || number > ns.headRevision) return undefined;
    const doc = await this.c.revisions.findOne({ _id: revisionId(ns.uid, number) });
    return doc ? toRevision(doc) : undefined;
  }

  async commitRevision(c: RevisionCommit): Promise<NamespaceRevisionRecord | undefined> {
    const ns = await this.c.namespaces.findOne({ _id: c.namespace });
    if (!ns || ns.headRevision !== c.head) return undefined;
    const number = c.head + 1;
    const previous = c.head === 0 ? undefined : await this.c.revisions.findOne({ _id: revisionId(ns.uid, c.head) });
    const changed = [...c.remove, ...c.put.map((f) => f.path)];
    const current = await this.filesAt(ns.uid, c.head, changed);
    const revision: NamespaceRevisionRecord = {
      namespace: c.namespace,
      number,
      parent: c.parent,
      fileCount: (previous?.fileCount ?? 0) - current.length + c.put.length,
      totalSize:
        (previous?.totalSize ?? 0) - current.reduce((sum, f) => sum + f.size, 0) + c.put.reduce((sum, f) => sum + f.size, 0),
      taskId: c.taskId,
      message: c.message,
      creatorId: c.creatorId,
      createTime: c.now,
    };

    const token = randomUUID();
    const chunks = Math.ceil(changed.length / INTENT_CHUNK);
    const intents: IntentDoc[] = [];
    for (let k = 0; k < chunks; k++) {
      const from = k * INTENT_CHUNK;
      const to = from + INTENT_CHUNK;
      intents.push({
        _id: `${token}:${k}`,
        uid: ns.uid,
        token,
        remove: c.remove.slice(Math.max(0, from), Math.max(0, Math.min(to, c.remove.length))),
        put: c.put.slice(Math.max(0, from - c.remove.length), Math.max(0, to - c.remove.length)),
      });
    }
    if (intents.length > 0) await this.c.intents.insertMany(intents);
    const claim: RevisionDoc = {
      ...revision,
      _id: revisionId(ns.uid, number),
      uid: ns.uid,
      tag: c.tag,
      state: "pending",
      claimTime: this.now(),
      intent: { token, chunks },
    };
    try {
      await this.c.revisions.insertOne(claim);
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      await this.c.intents.deleteMany({ token });
      await this.finishStaleClaim(ns);
      return undefined;
    }
    return (await this.finish(claim)) ? revision : undefined;
  }

  /**
   * Finishes the claim of revision head + 1 when its writer has not moved the head within
   * claimTimeoutMs (crashed or stalled); see the class comment. Returns whether it did.
   */
  private async finishStaleClaim(ns: NamespaceDoc): Promise<boolean> {
    const claim = await this.c.revisions.findOne({ _id: revisionId(ns.uid, ns.headRevision + 1) });
    if (!claim || claim.state !== "pending" || claim.claimTime > this.now() - this.claimTimeoutMs) return false;
    return this.finish(claim);
  }

  /**
   * Steps 3 to 5 of a claimed revision (idempotent). True when the revision is committed, by
   * this call or another; false when its namespace is gone.
   */
  private async finish(claim: RevisionDoc): Promise<boolean> {
    const n = claim.number;
    if (claim.intent) {
      for (let k = 0; k < claim.intent.chunks; k++) {
        const intent = await this.c.intents.findOne({ _id: `${claim.intent.token}:${k}` });
        // Gone: another writer finished the revision and deleted its intent (or the namespace went).
        if (!intent) return this.isCommitted(claim);
        const ops: AnyBulkWriteOperation<EntryDoc>[] = [];
        for (const path of [...intent.remove, ...intent.put.map((f) => f.path)]) {
          ops.push({
            updateMany: { filter: { uid: claim.uid, path, to: OPEN, from: { $lt: n } }, update: { $set: { to: n } } },
          });
        }
        for (const f of intent.put) {
          ops.push({
            insertOne: { document: { uid: claim.uid, path: f.path, from: n, to: OPEN, size: f.size, sha256: f.sha256 } },
          });
        }
        await applyIdempotent(this.c.entries, ops);
      }
    }
    const moved = await this.c.namespaces.updateOne(
      { _id: claim.namespace, uid: claim.uid, headRevision: n - 1 },
      {
        $set: { headRevision: n, [`tags.${tagKey(claim.tag)}`]: { name: claim.tag, revision: n, updateTime: claim.createTime } },
      },
    );
    if (moved.matchedCount === 0 && !(await this.isCommitted(claim))) return false;
    await this.c.revisions.updateOne({ _id: claim._id }, { $set: { state: "committed" }, $unset: { intent: "" } });
    if (claim.intent) await this.c.intents.deleteMany({ token: claim.intent.token });
    return true;
  }

  private async isCommitted(claim: RevisionDoc): Promise<boolean> {
    const ns = await this.c.namespaces.findOne({ _id: claim.namespace, uid: claim.uid });
    return ns !== null && ns.headRevision >= claim.number;
  }

  async clone(
    fromName: string,
    fromRevision: number,
    to: NamespaceRecord,
    meta: Omit<NamespaceRevisionRecord, "namespace" | "number" | "parent" | "fileCount" | "totalSize">,
    tag: string,
  ): Promise<NamespaceRevisionRecord | undefined> {
    if (await this.c.namespaces.findOne({ _id: to.name })) return undefined;
    const source = await this.c.namespaces.findOne({ _id: fromName });
    const uid = randomUUID();
    let fileCount = 0;
    let totalSize = 0;
    if (source && fromRevision >= 1 && fromRevision <= source.headRevision) {
      let batch: EntryDoc[] = [];
      const flush = async () => {
        if (batch.length > 0) await this.c.entries.insertMany(batch);
        batch = [];
      };
      for await (const e of this.c.entries.find(validAt(source.uid, fromRevision))) {
        batch.push({ uid, path: e.path, from: 1, to: OPEN, size: e.size, sha256: e.sha256 });
        fileCount++;
        totalSize += e.size;
        if (batch.length >= BULK) await flush();
      }
      await flush();
    }
    const revision: NamespaceRevisionRecord = { ...meta, namespace: to.name, number: 1, parent: 0, fileCount, totalSize };
    await this.c.revisions.insertOne({
      ...revision,
      _id: revisionId(uid, 1),
      uid,
      tag,
      state: "committed",
      claimTime: this.now(),
    });
    try {
      // The commit point: until this insert, nothing of the copy is reachable.
      await this.c.namespaces.insertOne({
        _id: to.name,
        uid,
        ownerId: to.ownerId,
        organizationId: to.organizationId,
        visibility: to.visibility,
        headRevision: 1,
        createTime: to.createTime,
        tags: { [tagKey(tag)]: { name: tag, revision: 1, updateTime: meta.createTime } },
      });
    } catch (err) {
      await this.c.revisions.deleteMany({ uid });
      await this.c.entries.deleteMany({ uid });
      if (isDuplicateKey(err)) return undefined;
      throw err;
    }
    return revision;
  }

  /** The given paths' entries valid at rev. */
  private async filesAt(uid: string, rev: number, paths: readonly string[]): Promise<NamespaceFileRecord[]> {
    if (rev < 1 || paths.length === 0) return [];
    const found = new Map<string, NamespaceFileRecord>();
    for (let i = 0; i < paths.length; i += BULK) {
      for (const e of await this.c.entries.find({ ...validAt(uid, rev), path: { $in: paths.slice(i, i + BULK) } }).toArray()) {
        found.set(e.path, toFile(e));
      }
    }
    return paths.flatMap((p) => found.get(p) ?? []);
  }

  async listFiles(name: string, revision: number, prefix = ""): Promise<NamespaceFileRecord[]> {
    const ns = await this.c.namespaces.findOne({ _id: name });
    if (!ns || revision < 1 || revision > ns.headRevision) return [];
    const docs = await this.c.entries
      .find({ ...validAt(ns.uid, revision), ...pathPrefixFilter(prefix) })
      .sort({ path: 1 })
      .toArray();
    return docs.map(toFile);
  }

  async getFiles(name: string, revision: number, paths: readonly string[]): Promise<NamespaceFileRecord[]> {
    const ns = await this.c.namespaces.findOne({ _id: name });
    if (!ns) return [];
    // Past the head reads the head (as on SQLite), never a revision being written.
    return this.filesAt(ns.uid, Math.min(revision, ns.headRevision), paths);
  }

  async diff(name: string, from: number, to: number): Promise<NamespaceDiff> {
    const diff: NamespaceDiff = { added: [], removed: [], changed: [] };
    const ns = await this.c.namespaces.findOne({ _id: name });
    if (!ns) return diff;
    from = Math.min(from, ns.headRevision);
    to = Math.min(to, ns.headRevision);
    if (from === to) return diff;
    const low = Math.min(from, to);
    const high = Math.max(from, to);
    // Only paths with a range starting or ending in (low, high] differ; such a path has no range
    // spanning all of [low, high], so these rows are all of its rows overlapping it.
    const rows = await this.c.entries
      .find({
        uid: ns.uid,
        from: { $lte: high },
        to: { $gt: low },
        $or: [{ from: { $gt: low } }, { to: { $lte: high } }],
      })
      .sort({ path: 1, from: 1 })
      .toArray();
    return diffFileRanges(
      rows.map((r) => ({ ...toFile(r), fromRevision: r.from, toRevision: r.to === OPEN ? null : r.to })),
      from,
      to,
    );
  }

  async listTags(name: string): Promise<NamespaceTagRecord[]> {
    const ns = await this.c.namespaces.findOne({ _id: name });
    return Object.values(ns?.tags ?? {})
      .map((t) => ({ name: t.name, revision: t.revision, updateTime: t.updateTime }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async getTag(name: string, tag: string): Promise<NamespaceTagRecord | undefined> {
    const t = (await this.c.namespaces.findOne({ _id: name }))?.tags[tagKey(tag)];
    return t && { name: t.name, revision: t.revision, updateTime: t.updateTime };
  }

  async setTag(name: string, tag: string, revision: number, now: number): Promise<boolean> {
    if (!Number.isSafeInteger(revision) || revision < 1) return false;
    const result = await this.c.namespaces.updateOne(
      { _id: name, headRevision: { $gte: revision } },
      { $set: { [`tags.${tagKey(tag)}`]: { name: tag, revision, updateTime: now } } },
    );
    return result.matchedCount > 0;
  }

  async deleteTag(name: string, tag: string): Promise<boolean> {
    const key = `tags.${tagKey(tag)}`;
    const result = await this.c.namespaces.updateOne({ _id: name, [key]: { $exists: true } }, { $unset: { [key]: "" } });
    return result.modifiedCount > 0;
  }
}
