import type { Collection } from "mongodb";
import type { ArtefactRecord, ArtefactStore } from "../store/artefact-store.js";
import { pathPrefixFilter, upsertRetrying } from "./mongo-common.js";

/** An artefact document, unique on (taskId, path). */
export type ArtefactDoc = ArtefactRecord;

/** The collection's indexes (created at start by createMongoStore). */
export async function createArtefactIndexes(artefacts: Collection<ArtefactDoc>): Promise<void> {
  await artefacts.createIndex({ taskId: 1, path: 1 }, { unique: true });
  await artefacts.createIndex({ sha256: 1 });
}

const toArtefact = (d: ArtefactDoc): ArtefactRecord => ({
  taskId: d.taskId,
  path: d.path,
  size: d.size,
  sha256: d.sha256,
  createTime: d.createTime,
});

/**
 * ArtefactStore on MongoDB. There is no cascade from a task: the task service calls
 * deleteForTask before it deletes the task (as it does on SQLite, where a foreign key also does).
 */
export class MongoArtefactStore implements ArtefactStore {
  constructor(private readonly artefacts: Collection<ArtefactDoc>) {}

  async put(a: ArtefactRecord): Promise<ArtefactRecord> {
    await upsertRetrying(() =>
      this.artefacts.updateOne(
        { taskId: a.taskId, path: a.path },
        { $set: { size: a.size, sha256: a.sha256, createTime: a.createTime } },
        { upsert: true },
      ),
    );
    return { ...a };
  }

  async get(taskId: string, path: string): Promise<ArtefactRecord | undefined> {
    const doc = await this.artefacts.findOne({ taskId, path });
    return doc ? toArtefact(doc) : undefined;
  }

  async list(taskId: string, prefix: string): Promise<ArtefactRecord[]> {
    const docs = await this.artefacts
      .find({ taskId, ...pathPrefixFilter(prefix) })
      .sort({ path: 1 })
      .toArray();
    return docs.map(toArtefact);
  }

  async deleteForTask(taskId: string): Promise<number> {
    return (await this.artefacts.deleteMany({ taskId })).deletedCount;
  }
}
