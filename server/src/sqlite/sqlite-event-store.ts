import type { Database, Statement } from "better-sqlite3";
import type { EventRecord, EventStore } from "../store/event-store.js";
import type { GroupCommit } from "./group-commit.js";
import { prepared } from "./statement-cache.js";

interface EventRow {
  sequence: number;
  time: number;
  type: string;
  subject_id: string;
  payload_kind: string;
  payload: string;
  attributes: string;
}

const PRUNE_SLICE = 10_000;

/** EventStore on SQLite: the AUTOINCREMENT key is the sequence. */
export class SqliteEventStore implements EventStore {
  private readonly insert: Statement;
  private readonly after: Statement;

  constructor(
    private readonly db: Database,
    private readonly writes: GroupCommit,
  ) {
    this.insert = db.prepare(
      "INSERT INTO events (time, type, subject_id, payload_kind, payload, attributes) VALUES (?, ?, ?, ?, ?, ?)",
    );
    this.after = db.prepare("SELECT * FROM events WHERE sequence > ? ORDER BY sequence LIMIT ?");
  }

  append(event: Omit<EventRecord, "sequence">): Promise<EventRecord> {
    return this.writes.write(() => {
      const info = this.insert.run(
        event.time,
        event.type,
        event.subjectId,
        event.payloadKind,
        JSON.stringify(event.payload ?? null),
        JSON.stringify(event.attributes),
      );
      return { ...event, sequence: Number(info.lastInsertRowid) };
    });
  }

  async listAfter(after: number, limit: number): Promise<EventRecord[]> {
    return (this.after.all(after, limit) as EventRow[]).map((row) => ({
      sequence: row.sequence,
      time: row.time,
      type: row.type,
      subjectId: row.subject_id,
      payloadKind: row.payload_kind,
      payload: JSON.parse(row.payload),
      attributes: JSON.parse(row.attributes),
    }));
  }

  async firstSequence(): Promise<number> {
    const row = prepared(this.db, "SELECT MIN(sequence) AS s FROM events").get() as { s: number | null };
    return row.s ?? 0;
  }

  async prune(olderThan: number, keepLast: number): Promise<number> {
    const last = await this.lastSequence();
    const byTime = (
      prepared(this.db, "SELECT MAX(sequence) AS s FROM events WHERE time < ?").get(olderThan) as { s: number | null }
    ).s;
    const byCount = keepLast > 0 ? last - keepLast : 0;
    const through = Math.min(Math.max(byTime ?? 0, byCount), last - 1);
    let removed = 0;
    // In slices, so that appends are not held up behind one long delete.
    for (let from = await this.firstSequence(); from > 0 && from <= through; from += PRUNE_SLICE) {
      const upTo = Math.min(through, from + PRUNE_SLICE - 1);
      removed += await this.writes.write(() => prepared(this.db, "DELETE FROM events WHERE sequence <= ?").run(upTo).changes);
    }
    return removed;
  }

  async lastSequence(): Promise<number> {
    const row = prepared(this.db, "SELECT MAX(sequence) AS s FROM events").get() as { s: number | null };
    return row.s ?? 0;
  }
}
