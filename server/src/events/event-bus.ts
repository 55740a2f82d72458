import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { EventRecord, EventStore } from "../store/event-store.js";
import type { TaskRecord } from "../store/task-store.js";
import { EventFeed } from "./event-feed.js";
import { taskSnapshot } from "./task-snapshot.js";

/** How an EventBus learns about the events other servers append to a shared store. */
export interface SharedEventsOptions {
  logger: Logger;
  /** Time between two reads of the shared log. Default 200 ms. */
  pollIntervalMs?: number;
  /** How long events wait behind a missing sequence; see EventFeed. */
  gapTimeoutMs?: number;
}

/**
 * Appends events to the store and fans them out to live subscribers in sequence order.
 *
 * Alone on its store (SQLite), the bus notifies right after each append. On a store that several
 * servers share (MongoDB), pass `shared`: every event, this server's and the others', then
 * reaches listeners through an {@link EventFeed} tailing the log, so listeners on every server
 * see every event once, in sequence order; this server's own events are handed to the feed
 * directly and are not delayed by the poll. Call start() before publishing and close() at
 * shutdown (both do nothing without `shared`).
 *
 * Subscribers that want history too: listen first, then read watermark(), replay the stored
 * events up to it, then take live events above what they replayed. Every event is seen exactly
 * once that way.
 */
export class EventBus {
  private readonly emitter = new EventEmitter();
  private readonly feed: EventFeed | undefined;

  constructor(
    private readonly store: EventStore,
    private readonly now: () => number = Date.now,
    shared?: SharedEventsOptions,
  ) {
    this.emitter.setMaxListeners(0);
    if (shared) {
      this.feed = new EventFeed({
        store,
        emit: (e) => this.emitter.emit("event", e),
        logger: shared.logger,
        pollIntervalMs: shared.pollIntervalMs,
        gapTimeoutMs: shared.gapTimeoutMs,
        now,
      });
    }
  }

  /** Whether events of other servers reach this bus (a shared store). */
  get shared(): boolean {
    return this.feed !== undefined;
  }

  /** Starts tailing the shared log. */
  async start(): Promise<void> {
    await this.feed?.start();
  }

  /** Stops tailing the shared log. Idempotent. */
  async close(): Promise<void> {
    await this.feed?.close();
  }

  /**
   * Up to which sequence a replay may read the stored log: on a shared store, the highest
   * sequence listeners have been notified of (or the feed moved past); alone on its store, any
   * (events are stored in sequence order, and a replay that reads one about to be announced
   * drops the announcement as already seen).
   */
  watermark(): number {
    return this.feed ? this.feed.watermark : Number.MAX_SAFE_INTEGER;
  }

  /**
   * Stores the event and notifies subscribers; resolves to the stored event. A task payload is
   * stored as its taskSnapshot (no script, environment or private key); a pipeline payload must
   * already be a pipelineSnapshot.
   */
  async publish(
    type: string,
    subjectId: string,
    payload: { kind: "task" | "node" | "pipeline" | ""; value: unknown } = { kind: "", value: null },
    attributes: Record<string, string> = {},
  ): Promise<EventRecord> {
    const event = await this.store.append({
      time: this.now(),
      type,
      subjectId,
      payloadKind: payload.kind,
      payload: payload.kind === "task" ? taskSnapshot(payload.value as TaskRecord) : payload.value,
      attributes,
    });
    if (this.feed) {
      this.feed.offer(event);
    } else {
      this.emitter.emit("event", event);
    }
    return event;
  }

  /** Calls listener for every event published from now on; returns the unsubscribe function. */
  listen(listener: (event: EventRecord) => void): () => void {
    this.emitter.on("event", listener);
    return () => this.emitter.off("event", listener);
  }
}
