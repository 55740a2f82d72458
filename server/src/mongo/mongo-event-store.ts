import type { Collection } from "mongodb";
import type { EventRecord, EventStore } from "../store/event-store.js";
import { type CounterDoc, fromPairs, isDuplicateKey, nextValue, type Pairs, toPairs } from "./mongo-common.js";

/**
 * An event document: `_id` is the sequence. The payload is stored as JSON text: it is an
 * arbitrary snapshot whose keys (task labels, for one) need not be valid field names.
 */
export interface EventDoc {
  _id: number;
  time: number;
  type: string;
  subjectId: string;
  payloadKind: string;
  payload: string;
  attributes: Pairs;
}

/**
 * EventStore on MongoDB. The sequence comes from the "events" counter (findOneAndUpdate $inc), so
 * it increases strictly across every process on the database, and `_id` orders the log.
 *
 * Appends from this process are serialized: each resolves only after the previous one is stored,
 * so events are stored and announced (EventBus) in sequence order and a reader never sees a later
 * event of this process before an earlier one. Appends from other processes can still become
 * visible out of order (a reader may briefly see n+1 before n): the EventFeed that tails the
 * log across servers holds back behind such a gap for a bounded time.
 */
export class MongoEventStore implements EventStore {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly events: Collection<EventDoc>,
    private readonly counters: Collection<CounterDoc>,
  ) {}

  append(event: Omit<EventRecord, "sequence">): Promise<EventRecord> {
    const stored = this.tail.then(async () => {
      // A sequence the counter handed out twice (jongodb's $inc is not atomic across
      // connections) fails the insert on `_id`: take a fresh one.
      for (let tries = 1; ; tries++) {
        const sequence = await nextValue(this.counters, "events");
        try {
          await this.events.insertOne({
            _id: sequence,
            time: event.time,
            type: event.type,
            subjectId: event.subjectId,
            payloadKind: event.payloadKind,
            payload: JSON.stringify(event.payload ?? null),
            attributes: toPairs(event.attributes),
          });
          return { ...event, sequence };
        } catch (err) {
          if (!isDuplicateKey(err) || tries >= 10) throw err;
        }
      }
    });
    this.tail = stored.catch(() => undefined);
    return stored;
  }

  async listAfter(after: number, limit: number): Promise<EventRecord[]> {
    const docs = await this.events
      .find({ _id: { $gt: after } })
      .sort({ _id: 1 })
      .limit(limit)
      .toArray();
    return docs.map((d) => ({
      sequence: d._id,
      time: d.time,
      type: d.type,
      subjectId: d.subjectId,
      payloadKind: d.payloadKind,
      payload: JSON.parse(d.payload),
      attributes: fromPairs(d.attributes),
    }));
  }

  /** A change stream of inserts into the events collection; see EventStore.watchAppends. */
  watchAppends(onAppend: () => void, onUnavailable: (err: Error) => void): () => Promise<void> {
    const stream = this.events.watch([{ $match: { operationType: "insert" } }]);
    stream.on("change", () => onAppend());
    stream.once("error", (err: Error) => {
      onUnavailable(err);
      void stream.close().catch(() => undefined);
    });
    return () => stream.close().catch(() => undefined);
  }

  async firstSequence(): Promise<number> {
    const [first] = await this.events.find({}).sort({ _id: 1 }).limit(1).toArray();
    return first?._id ?? 0;
  }

  async prune(olderThan: number, keepLast: number): Promise<number> {
    const last = await this.lastSequence();
    const [byTime] = await this.events
      .find({ time: { $lt: olderThan } })
      .sort({ _id: -1 })
      .limit(1)
      .toArray();
    const byCount = keepLast > 0 ? last - keepLast : 0;
    const through = Math.min(Math.max(byTime?._id ?? 0, byCount), last - 1);
    if (through <= 0) return 0;
    return (await this.events.deleteMany({ _id: { $lte: through } })).deletedCount;
  }

  async lastSequence(): Promise<number> {
    const [last] = await this.events.find({}).sort({ _id: -1 }).limit(1).toArray();
    return last?._id ?? 0;
  }
}
