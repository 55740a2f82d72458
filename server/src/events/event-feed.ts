import type { Logger } from "pino";
import type { EventRecord, EventStore } from "../store/event-store.js";

/** Options of {@link EventFeed}. */
export interface EventFeedOptions {
  store: Pick<EventStore, "listAfter" | "lastSequence" | "watchAppends">;
  /** Receives every event once, in increasing sequence order. */
  emit: (event: EventRecord) => void;
  logger: Logger;
  /** Time between two reads of the log. Default 200 ms. */
  pollIntervalMs?: number;
  /**
   * How long events stay held back behind a missing sequence before the feed moves past it.
   * Default ten poll intervals, at least 1 s.
   */
  gapTimeoutMs?: number;
  now?: () => number;
}

/** Events read per poll. */
const PAGE = 500;

/**
 * Tails a shared event log so that the events every server appends reach this server's
 * listeners, once each and in sequence order (DESIGN §3.8, several servers on one database).
 *
 * It reads `listAfter(cursor)` every poll interval (an indexed range read on the sequence), and
 * this server's own appends are offered to it directly, so that they are emitted at once instead
 * of at the next poll. Nothing is emitted twice: an event is emitted only when it is the one right
 * after the cursor, and the cursor then moves past it.
 *
 * Gaps: a sequence is taken from a counter before its event is inserted, so another server's n+1
 * can be readable before its n. Events behind a missing sequence are held back until it appears
 * or gapTimeoutMs passes; then the feed moves on (a server killed between taking a sequence and
 * inserting leaves a hole that never fills). An event that turns up after the feed moved past its
 * sequence is not emitted live; it is in the log, so replays (EventService.Subscribe from a
 * sequence, ListEvents) still return it.
 *
 * Change streams: where the store can push appends (EventStore.watchAppends: MongoDB change
 * streams on a replica set), each one triggers a read at once, so events of other servers arrive
 * in milliseconds instead of within a poll interval. The poll goes on regardless: correctness
 * never depends on the change stream, and without one (a standalone server, the jongodb test
 * server) the feed only polls.
 *
 * Lifecycle: start() reads the current end of the log (history is not emitted), close() stops
 * polling and watching.
 */
export class EventFeed {
  private cursor = 0;
  private readonly pending = new Map<number, EventRecord>();
  /** When the feed first waited for cursor + 1 while later events were pending. */
  private gapSince: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private unwatch: (() => Promise<void>) | undefined;
  private polling: Promise<void> | undefined;
  private again = false;
  private closed = false;
  private readonly pollIntervalMs: number;
  private readonly gapTimeoutMs: number;
  private readonly now: () => number;

  constructor(private readonly o: EventFeedOptions) {
    this.pollIntervalMs = o.pollIntervalMs ?? 200;
    this.gapTimeoutMs = o.gapTimeoutMs ?? Math.max(1000, 10 * this.pollIntervalMs);
    this.now = o.now ?? Date.now;
  }

  /** The highest sequence emitted (or skipped): every later event is still to come. */
  get watermark(): number {
    return this.cursor;
  }

  /** Starts at the current end of the log and polls from then on. */
  async start(): Promise<void> {
    this.cursor = await this.o.store.lastSequence();
    this.timer = setInterval(() => this.poll(), this.pollIntervalMs);
    this.timer.unref();
    this.unwatch = this.o.store.watchAppends?.(
      () => this.poll(),
      (err) => {
        this.unwatch = undefined;
        this.o.logger.info(
          { reason: err.message, pollIntervalMs: this.pollIntervalMs },
          "the database has no change streams: reading new events by polling only",
        );
      },
    );
  }

  /** Stops polling; waits for a read in progress. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.unwatch?.();
    await this.polling;
  }

  /** An event this server just stored: emitted at once when nothing before it is missing. */
  offer(event: EventRecord): void {
    if (event.sequence <= this.cursor) return;
    this.pending.set(event.sequence, event);
    this.drain();
    // Something before it is not here yet: look for it now rather than at the next tick.
    if (this.pending.size > 0) this.poll();
  }

  /** Reads the log after the cursor (one read at a time; a request during one runs after it). */
  poll(): void {
    if (this.closed) return;
    if (this.polling) {
      this.again = true;
      return;
    }
    this.polling = (async () => {
      do {
        this.again = false;
        try {
          for (;;) {
            const page = await this.o.store.listAfter(this.cursor, PAGE);
            for (const e of page) if (e.sequence > this.cursor) this.pending.set(e.sequence, e);
            const before = this.cursor;
            this.drain();
            if (page.length < PAGE || this.cursor === before) break;
          }
        } catch (err) {
          this.o.logger.error({ err }, "reading the event log failed; the next poll retries");
        }
      } while (this.again && !this.closed);
    })().finally(() => {
      this.polling = undefined;
    });
  }

  private drain(): void {
    for (;;) {
      let next = this.pending.get(this.cursor + 1);
      while (next) {
        this.pending.delete(next.sequence);
        this.cursor = next.sequence;
        this.emit(next);
        next = this.pending.get(this.cursor + 1);
      }
      if (this.pending.size === 0) {
        this.gapSince = undefined;
        return;
      }
      const now = this.now();
      this.gapSince ??= now;
      if (now - this.gapSince < this.gapTimeoutMs) return;
      const first = Math.min(...this.pending.keys());
      this.o.logger.warn(
        { from: this.cursor + 1, to: first - 1, heldMs: now - this.gapSince },
        "event sequences never appeared in the log; moving past them",
      );
      this.cursor = first - 1;
      this.gapSince = undefined;
    }
  }

  private emit(event: EventRecord): void {
    try {
      this.o.emit(event);
    } catch (err) {
      this.o.logger.error({ err, sequence: event.sequence }, "an event listener threw");
    }
  }
}
