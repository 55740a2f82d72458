import type { Collection } from "mongodb";
import type { DeliveryRecord, DeliveryState, DeliveryStore, PublisherRecord, TagMove } from "../store/delivery-store.js";
import { type CounterDoc, isDuplicateKey, nextValue } from "./mongo-common.js";

/** A publisher document: PublisherRecord with `_id` its id. */
export type PublisherDoc = Omit<PublisherRecord, "id"> & { _id: string };

/** A delivery document: DeliveryRecord with `_id` its id and seq its insertion order (a counter). */
export type DeliveryDoc = Omit<DeliveryRecord, "id"> & { _id: string; seq: number };

/** The delivery event cursor: one document, `_id` "deliveries". */
export interface DeliveryCursorDoc {
  _id: string;
  eventSequence: number;
}

const CURSOR_ID = "deliveries";

/** The collections' indexes (created at start by createMongoStore). */
export async function createDeliveryIndexes(
  publishers: Collection<PublisherDoc>,
  deliveries: Collection<DeliveryDoc>,
): Promise<void> {
  await publishers.createIndex({ namespace: 1, tag: 1 });
  await publishers.createIndex({ namespace: 1, createTime: 1 });
  await deliveries.createIndex({ seq: 1 }, { unique: true });
  await deliveries.createIndex({ state: 1, nextAttemptTime: 1 });
  await deliveries.createIndex({ publisherId: 1, seq: -1 });
  await deliveries.createIndex({ namespace: 1, seq: -1 });
}

const toPublisher = (d: PublisherDoc): PublisherRecord => ({
  id: d._id,
  namespace: d.namespace,
  kind: d.kind,
  target: d.target,
  branch: d.branch,
  tag: d.tag,
  creatorId: d.creatorId,
  createTime: d.createTime,
});

const toDelivery = (d: DeliveryDoc): DeliveryRecord => ({
  id: d._id,
  publisherId: d.publisherId,
  namespace: d.namespace,
  revision: d.revision,
  tag: d.tag,
  state: d.state,
  attempts: d.attempts,
  error: d.error,
  nextAttemptTime: d.nextAttemptTime,
  createTime: d.createTime,
  updateTime: d.updateTime,
});

/**
 * DeliveryStore on MongoDB. Every state transition is one compare-and-set findOneAndUpdate on the
 * delivery (filtered on its state), so racing workers never both win. enqueueTagMove is not one
 * transaction: it supersedes, inserts, then advances the cursor, so a crash in between makes a
 * restart handle the move again, whose new deliveries supersede the ones left pending: the same
 * outcome. Deliveries are ordered by a counter (seq), like SQLite's rowid.
 */
export class MongoDeliveryStore implements DeliveryStore {
  constructor(
    private readonly publishers: Collection<PublisherDoc>,
    private readonly deliveries: Collection<DeliveryDoc>,
    private readonly cursor: Collection<DeliveryCursorDoc>,
    private readonly counters: Collection<CounterDoc>,
  ) {}

  async addPublisher(p: PublisherRecord): Promise<void> {
    const { id, ...rest } = p;
    await this.publishers.insertOne({ _id: id, ...rest });
  }

  async getPublisher(id: string): Promise<PublisherRecord | undefined> {
    const doc = await this.publishers.findOne({ _id: id });
    return doc ? toPublisher(doc) : undefined;
  }

  async listPublishers(namespace: string): Promise<PublisherRecord[]> {
    return (await this.publishers.find({ namespace }).sort({ createTime: 1, _id: 1 }).toArray()).map(toPublisher);
  }

  async removePublisher(id: string): Promise<boolean> {
    const deleted = (await this.publishers.deleteOne({ _id: id })).deletedCount > 0;
    await this.deliveries.deleteMany({ publisherId: id });
    return deleted;
  }

  async enqueueTagMove(
    move: TagMove,
    now: number,
    newId: () => string,
  ): Promise<{ created: DeliveryRecord[]; superseded: DeliveryRecord[] }> {
    const publishers = (
      await this.publishers.find({ namespace: move.namespace, tag: move.tag }).sort({ createTime: 1, _id: 1 }).toArray()
    ).filter((p) => move.publisherId === undefined || p._id === move.publisherId);
    const created: DeliveryRecord[] = [];
    const superseded: DeliveryRecord[] = [];
    for (const publisher of publishers) {
      for (const pending of await this.deliveries
        .find({ publisherId: publisher._id, state: "pending" })
        .sort({ seq: 1 })
        .toArray()) {
        const doc = await this.deliveries.findOneAndUpdate(
          { _id: pending._id, state: "pending" },
          { $set: { state: "superseded", updateTime: now } },
          { returnDocument: "after" },
        );
        if (doc) superseded.push(toDelivery(doc));
      }
      const doc = await this.insertDelivery(newId(), {
        publisherId: publisher._id,
        namespace: move.namespace,
        revision: move.revision,
        tag: move.tag,
        state: "pending",
        attempts: 0,
        error: "",
        nextAttemptTime: now,
        createTime: now,
        updateTime: now,
      });
      created.push(toDelivery(doc));
    }
    if (move.eventSequence !== undefined) await this.setEventCursor(move.eventSequence);
    return { created, superseded };
  }

  /**
   * Inserts a delivery with the next seq. A seq already taken (jongodb's counters are not atomic
   * across connections; never on MongoDB) is retried with a fresh value, like event sequences.
   */
  private async insertDelivery(id: string, fields: Omit<DeliveryDoc, "_id" | "seq">): Promise<DeliveryDoc> {
    for (let attempt = 1; ; attempt++) {
      const doc: DeliveryDoc = { _id: id, seq: await nextValue(this.counters, "deliveries"), ...fields };
      try {
        await this.deliveries.insertOne(doc);
        return doc;
      } catch (err) {
        if (!isDuplicateKey(err) || attempt >= 5 || (await this.deliveries.findOne({ _id: id }))) throw err;
      }
    }
  }

  async eventCursor(): Promise<number | undefined> {
    return (await this.cursor.findOne({ _id: CURSOR_ID }))?.eventSequence;
  }

  /** Moves the cursor forward only: an update filtered on a smaller value (no $max on jongodb). */
  async setEventCursor(sequence: number): Promise<void> {
    try {
      await this.cursor.updateOne(
        { _id: CURSOR_ID, eventSequence: { $lt: sequence } },
        { $set: { eventSequence: sequence } },
        { upsert: true },
      );
    } catch (err) {
      // The cursor exists and is already at or past sequence: the upsert's insert collided.
      if (!isDuplicateKey(err)) throw err;
    }
  }

  async get(id: string): Promise<DeliveryRecord | undefined> {
    const doc = await this.deliveries.findOne({ _id: id });
    return doc ? toDelivery(doc) : undefined;
  }

  async list(filter: { namespace: string; publisherId?: string; limit: number }): Promise<DeliveryRecord[]> {
    const query =
      filter.publisherId === undefined
        ? { namespace: filter.namespace }
        : { namespace: filter.namespace, publisherId: filter.publisherId };
    return (await this.deliveries.find(query).sort({ seq: -1 }).limit(filter.limit).toArray()).map(toDelivery);
  }

  /** Publishers that have a running delivery. */
  private async busyPublishers(): Promise<Set<string>> {
    return new Set((await this.deliveries.distinct("publisherId", { state: "running" })) as string[]);
  }

  async listDue(now: number, limit: number): Promise<DeliveryRecord[]> {
    const busy = await this.busyPublishers();
    const seen = new Set<string>();
    const due: DeliveryRecord[] = [];
    // Pending deliveries are few: a tag move supersedes a publisher's pending ones.
    for await (const doc of this.deliveries.find({ state: "pending" }).sort({ seq: 1 })) {
      if (due.length >= limit) break;
      if (seen.has(doc.publisherId)) continue;
      seen.add(doc.publisherId);
      if (!busy.has(doc.publisherId) && doc.nextAttemptTime <= now) due.push(toDelivery(doc));
    }
    return due;
  }

  async nextDueTime(): Promise<number | undefined> {
    const busy = await this.busyPublishers();
    for await (const doc of this.deliveries.find({ state: "pending" }).sort({ nextAttemptTime: 1 })) {
      if (!busy.has(doc.publisherId)) return doc.nextAttemptTime;
    }
    return undefined;
  }

  async claim(id: string, now: number): Promise<DeliveryRecord | undefined> {
    const doc = await this.deliveries.findOneAndUpdate(
      { _id: id, state: "pending" },
      { $set: { state: "running", updateTime: now }, $inc: { attempts: 1 } },
      { returnDocument: "after" },
    );
    return doc ? toDelivery(doc) : undefined;
  }

  async finish(
    id: string,
    update: { state: Exclude<DeliveryState, "running">; error: string; nextAttemptTime: number },
    now: number,
  ): Promise<DeliveryRecord | undefined> {
    const doc = await this.deliveries.findOneAndUpdate(
      { _id: id, state: "running" },
      { $set: { state: update.state, error: update.error, nextAttemptTime: update.nextAttemptTime, updateTime: now } },
      { returnDocument: "after" },
    );
    return doc ? toDelivery(doc) : undefined;
  }

  async newerThan(delivery: DeliveryRecord): Promise<DeliveryRecord | undefined> {
    const self = await this.deliveries.findOne({ _id: delivery.id });
    if (!self) return undefined;
    const doc = await this.deliveries
      .find({ publisherId: delivery.publisherId, state: { $ne: "superseded" }, seq: { $gt: self.seq } })
      .sort({ seq: -1 })
      .limit(1)
      .next();
    return doc ? toDelivery(doc) : undefined;
  }

  async retry(id: string, now: number): Promise<DeliveryRecord | undefined> {
    const doc = await this.deliveries.findOneAndUpdate(
      { _id: id, state: { $in: ["pending", "failed"] } },
      { $set: { state: "pending", attempts: 0, nextAttemptTime: now, updateTime: now } },
      { returnDocument: "after" },
    );
    return doc ? toDelivery(doc) : undefined;
  }

  async requeueRunning(now: number): Promise<DeliveryRecord[]> {
    const requeued: DeliveryRecord[] = [];
    for (const running of await this.deliveries.find({ state: "running" }).sort({ seq: 1 }).toArray()) {
      const doc = await this.deliveries.findOneAndUpdate(
        { _id: running._id, state: "running" },
        { $set: { state: "pending", nextAttemptTime: now, updateTime: now } },
        { returnDocument: "after" },
      );
      if (doc) requeued.push(toDelivery(doc));
    }
    return requeued;
  }

  /** Removes the publishers of a deleted namespace and their deliveries (NamespaceStore.delete). */
  async deleteNamespace(namespace: string): Promise<void> {
    const ids = (await this.publishers.find({ namespace }).toArray()).map((p) => p._id);
    await this.publishers.deleteMany({ namespace });
    await this.deliveries.deleteMany({ $or: [{ namespace }, { publisherId: { $in: ids } }] });
  }
}
