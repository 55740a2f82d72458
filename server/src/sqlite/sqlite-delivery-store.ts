import type { Database } from "better-sqlite3";
import type {
  DeliveryRecord,
  DeliveryState,
  DeliveryStore,
  PublisherKind,
  PublisherRecord,
  TagMove,
} from "../store/delivery-store.js";
import type { GroupCommit } from "./group-commit.js";
import { prepared } from "./statement-cache.js";

interface PublisherRow {
  id: string;
  namespace: string;
  kind: string;
  target: string;
  branch: string;
  tag: string;
  creator_id: string;
  create_time: number;
}

interface DeliveryRow {
  seq: number;
  id: string;
  publisher_id: string;
  namespace: string;
  revision: number;
  tag: string;
  state: string;
  attempts: number;
  error: string;
  next_attempt_time: number;
  create_time: number;
  update_time: number;
}

const publisherFromRow = (r: PublisherRow): PublisherRecord => ({
  id: r.id,
  namespace: r.namespace,
  kind: r.kind as PublisherKind,
  target: r.target,
  branch: r.branch,
  tag: r.tag,
  creatorId: r.creator_id,
  createTime: r.create_time,
});

const deliveryFromRow = (r: DeliveryRow): DeliveryRecord => ({
  id: r.id,
  publisherId: r.publisher_id,
  namespace: r.namespace,
  revision: r.revision,
  tag: r.tag,
  state: r.state as DeliveryState,
  attempts: r.attempts,
  error: r.error,
  nextAttemptTime: r.next_attempt_time,
  createTime: r.create_time,
  updateTime: r.update_time,
});

/** DeliveryStore on SQLite (tables namespace_publishers, deliveries, delivery_cursor). */
export class SqliteDeliveryStore implements DeliveryStore {
  constructor(
    private readonly db: Database,
    private readonly writes: GroupCommit,
  ) {}

  async addPublisher(p: PublisherRecord): Promise<void> {
    return this.writes.write(() => {
      prepared(
        this.db,
        `INSERT INTO namespace_publishers (id, namespace, kind, target, branch, tag, creator_id, create_time)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(p.id, p.namespace, p.kind, p.target, p.branch, p.tag, p.creatorId, p.createTime);
    });
  }

  async getPublisher(id: string): Promise<PublisherRecord | undefined> {
    const row = prepared(this.db, "SELECT * FROM namespace_publishers WHERE id = ?").get(id) as PublisherRow | undefined;
    return row && publisherFromRow(row);
  }

  async listPublishers(namespace: string): Promise<PublisherRecord[]> {
    const rows = prepared(this.db, "SELECT * FROM namespace_publishers WHERE namespace = ? ORDER BY create_time, id").all(
      namespace,
    ) as PublisherRow[];
    return rows.map(publisherFromRow);
  }

  async removePublisher(id: string): Promise<boolean> {
    return this.writes.write(() => {
      prepared(this.db, "DELETE FROM deliveries WHERE publisher_id = ?").run(id);
      return prepared(this.db, "DELETE FROM namespace_publishers WHERE id = ?").run(id).changes > 0;
    });
  }

  async enqueueTagMove(
    move: TagMove,
    now: number,
    newId: () => string,
  ): Promise<{ created: DeliveryRecord[]; superseded: DeliveryRecord[] }> {
    return this.writes.write(() => {
      const publishers = (
        prepared(this.db, "SELECT * FROM namespace_publishers WHERE namespace = ? AND tag = ? ORDER BY create_time, id").all(
          move.namespace,
          move.tag,
        ) as PublisherRow[]
      ).filter((p) => move.publisherId === undefined || p.id === move.publisherId);
      const created: DeliveryRecord[] = [];
      const superseded: DeliveryRecord[] = [];
      for (const publisher of publishers) {
        const replaced = prepared(
          this.db,
          `UPDATE deliveries SET state = 'superseded', update_time = ?
           WHERE publisher_id = ? AND state = 'pending' RETURNING *`,
        ).all(now, publisher.id) as DeliveryRow[];
        superseded.push(...replaced.map(deliveryFromRow));
        const row = prepared(
          this.db,
          `INSERT INTO deliveries (id, publisher_id, namespace, revision, tag, state, attempts, error, next_attempt_time, create_time, update_time)
           VALUES (?, ?, ?, ?, ?, 'pending', 0, '', ?, ?, ?) RETURNING *`,
        ).get(newId(), publisher.id, move.namespace, move.revision, move.tag, now, now, now) as DeliveryRow;
        created.push(deliveryFromRow(row));
      }
      if (move.eventSequence !== undefined) this.writeCursor(move.eventSequence);
      return { created, superseded };
    });
  }

  async eventCursor(): Promise<number | undefined> {
    const row = prepared(this.db, "SELECT event_sequence FROM delivery_cursor WHERE id = 1").get() as
      { event_sequence: number } | undefined;
    return row?.event_sequence;
  }

  setEventCursor(sequence: number): Promise<void> {
    return this.writes.write(() => this.writeCursor(sequence));
  }

  private writeCursor(sequence: number): void {
    prepared(
      this.db,
      `INSERT INTO delivery_cursor (id, event_sequence) VALUES (1, ?)
       ON CONFLICT (id) DO UPDATE SET event_sequence = max(event_sequence, excluded.event_sequence)`,
    ).run(sequence);
  }

  async get(id: string): Promise<DeliveryRecord | undefined> {
    const row = prepared(this.db, "SELECT * FROM deliveries WHERE id = ?").get(id) as DeliveryRow | undefined;
    return row && deliveryFromRow(row);
  }

  async list(filter: { namespace: string; publisherId?: string; limit: number }): Promise<DeliveryRecord[]> {
    const rows = (
      filter.publisherId === undefined
        ? prepared(this.db, "SELECT * FROM deliveries WHERE namespace = ? ORDER BY seq DESC LIMIT ?").all(
            filter.namespace,
            filter.limit,
          )
        : prepared(this.db, "SELECT * FROM deliveries WHERE namespace = ? AND publisher_id = ? ORDER BY seq DESC LIMIT ?").all(
            filter.namespace,
            filter.publisherId,
            filter.limit,
          )
    ) as DeliveryRow[];
    return rows.map(deliveryFromRow);
  }

  async listDue(now: number, limit: number): Promise<DeliveryRecord[]> {
    const rows = prepared(
      this.db,
      `SELECT d.* FROM deliveries d
       WHERE d.state = 'pending' AND d.next_attempt_time <= ?
         AND NOT EXISTS (SELECT 1 FROM deliveries r WHERE r.publisher_id = d.publisher_id AND r.state = 'running')
         AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.publisher_id = d.publisher_id AND o.state = 'pending' AND o.seq < d.seq)
       ORDER BY d.seq LIMIT ?`,
    ).all(now, limit) as DeliveryRow[];
    return rows.map(deliveryFromRow);
  }

  async nextDueTime(): Promise<number | undefined> {
    const row = prepared(
      this.db,
      `SELECT min(d.next_attempt_time) AS t FROM deliveries d
       WHERE d.state = 'pending'
         AND NOT EXISTS (SELECT 1 FROM deliveries r WHERE r.publisher_id = d.publisher_id AND r.state = 'running')`,
    ).get() as { t: number | null };
    return row.t ?? undefined;
  }

  async claim(id: string, now: number): Promise<DeliveryRecord | undefined> {
    return this.writes.write(() => {
      const row = prepared(
        this.db,
        `UPDATE deliveries SET state = 'running', attempts = attempts + 1, update_time = ?
         WHERE id = ? AND state = 'pending' RETURNING *`,
      ).get(now, id) as DeliveryRow | undefined;
      return row && deliveryFromRow(row);
    });
  }

  async finish(
    id: string,
    update: { state: Exclude<DeliveryState, "running">; error: string; nextAttemptTime: number },
    now: number,
  ): Promise<DeliveryRecord | undefined> {
    return this.writes.write(() => {
      const row = prepared(
        this.db,
        `UPDATE deliveries SET state = ?, error = ?, next_attempt_time = ?, update_time = ?
         WHERE id = ? AND state = 'running' RETURNING *`,
      ).get(update.state, update.error, update.nextAttemptTime, now, id) as DeliveryRow | undefined;
      return row && deliveryFromRow(row);
    });
  }

  async newerThan(delivery: DeliveryRecord): Promise<DeliveryRecord | undefined> {
    const row = prepared(
      this.db,
      `SELECT * FROM deliveries
       WHERE publisher_id = ? AND state != 'superseded' AND seq > (SELECT seq FROM deliveries WHERE id = ?)
       ORDER BY seq DESC LIMIT 1`,
    ).get(delivery.publisherId, delivery.id) as DeliveryRow | undefined;
    return row && deliveryFromRow(row);
  }

  async retry(id: string, now: number): Promise<DeliveryRecord | undefined> {
    return this.writes.write(() => {
      const row = prepared(
        this.db,
        `UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_time = ?, update_time = ?
         WHERE id = ? AND state IN ('pending', 'failed') RETURNING *`,
      ).get(now, now, id) as DeliveryRow | undefined;
      return row && deliveryFromRow(row);
    });
  }

  async requeueRunning(now: number): Promise<DeliveryRecord[]> {
    return this.writes.write(() => {
      const rows = prepared(
        this.db,
        `UPDATE deliveries SET state = 'pending', next_attempt_time = ?, update_time = ?
         WHERE state = 'running' RETURNING *`,
      ).all(now, now) as DeliveryRow[];
      return rows.map(deliveryFromRow);
    });
  }
}
