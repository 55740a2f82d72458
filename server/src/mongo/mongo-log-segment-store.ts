import type { Collection } from "mongodb";
import type { LogSegmentRecord, LogSegmentStore } from "../store/log-segment-store.js";
import { isDuplicateKey } from "./mongo-common.js";

/** A log segment document, unique on (taskId, start). */
export type LogSegmentDoc = LogSegmentRecord;

/** The collection's indexes (created at start by openMongoStore). */
export async function createLogSegmentIndexes(segments: Collection<LogSegmentDoc>): Promise<void> {
  await segments.createIndex({ taskId: 1, start: 1 }, { unique: true });
  await segments.createIndex({ sha256: 1 });
}

/**
 * LogSegmentStore on MongoDB. deleteTask is a delete followed by one lookup per digest, not one
 * transaction: a digest it returns was unreferenced when it looked, as with SQLite, and the blob
 * store's own rules cover a segment added with the same digest afterwards.
 */
export class MongoLogSegmentStore implements LogSegmentStore {
  constructor(private readonly segments: Collection<LogSegmentDoc>) {}

  async add(s: LogSegmentRecord): Promise<void> {
    try {
      await this.segments.insertOne({ taskId: s.taskId, start: s.start, length: s.length, sha256: s.sha256 });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
    }
  }

  async list(taskId: string): Promise<LogSegmentRecord[]> {
    const docs = await this.segments.find({ taskId }).sort({ start: 1 }).toArray();
    return docs.map((d) => ({ taskId: d.taskId, start: d.start, length: d.length, sha256: d.sha256 }));
  }

  async listFrom(taskId: string, start: number): Promise<LogSegmentRecord[]> {
    const docs = await this.segments
      .find({ taskId, start: { $gte: start } })
      .sort({ start: 1 })
      .toArray();
    return docs.map((d) => ({ taskId: d.taskId, start: d.start, length: d.length, sha256: d.sha256 }));
  }

  async deleteTask(taskId: string): Promise<string[]> {
    const digests = [...new Set((await this.segments.find({ taskId }).toArray()).map((d) => d.sha256))];
    await this.segments.deleteMany({ taskId });
    const unreferenced: string[] = [];
    for (const sha256 of digests) {
      if ((await this.segments.findOne({ sha256 }, { projection: { _id: 1 } })) === null) unreferenced.push(sha256);
    }
    return unreferenced;
  }
}
