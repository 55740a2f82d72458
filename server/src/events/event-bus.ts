import { EventEmitter } from "node:events";
import type { EventRecord, EventStore } from "../store/event-store.js";
import type { TaskRecord } from "../store/task-store.js";
import { taskSnapshot } from "./task-snapshot.js";

/**
 * Appends events to the store and fans them out to live subscribers in sequence order.
 * Subscribers that want history read it from the store first and then listen; publish() only
 * notifies after the event is stored, so a subscriber that replays up to lastSequence() and then
 * listens sees every event exactly once if it drops those at or below what it replayed.
 */
export class EventBus {
  private readonly emitter = new EventEmitter();

  constructor(
    private readonly store: EventStore,
    private readonly now: () => number = Date.now,
  ) {
    this.emitter.setMaxListeners(0);
  }

  /**
   * Stores the event and notifies subscribers; resolves to the stored event. A task payload is
   * stored as its taskSnapshot (no script, environment or private key).
   */
  async publish(
    type: string,
    subjectId: string,
    payload: { kind: "task" | "node" | ""; value: unknown } = { kind: "", value: null },
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
    this.emitter.emit("event", event);
    return event;
  }

  /** Calls listener for every event published from now on; returns the unsubscribe function. */
  listen(listener: (event: EventRecord) => void): () => void {
    this.emitter.on("event", listener);
    return () => this.emitter.off("event", listener);
  }
}
