import type { Logger } from "pino";
import type { EventBus } from "../events/event-bus.js";
import { NAMESPACE_TAG_MOVED } from "../namespaces/namespace-events.js";
import type { DeliveryRecord, DeliveryStore, PublisherRecord, TagMove } from "../store/delivery-store.js";
import type { EventRecord, EventStore } from "../store/event-store.js";
import { DELIVERY_QUEUED, DELIVERY_SUPERSEDED, deliveryAttributes } from "./delivery-events.js";

/** Options of {@link TagMoveFeed}. */
export interface TagMoveFeedOptions {
  store: DeliveryStore;
  /** The event log, read from the delivery cursor on. */
  eventLog: Pick<EventStore, "listAfter" | "lastSequence">;
  /**
   * Live notifications of new events, and where delivery.queued/superseded are published. The
   * log is read only up to its watermark (when it has one): on a store several servers share, a
   * later event can be readable before an earlier one, and the cursor must not pass the gap.
   */
  bus: Pick<EventBus, "listen" | "publish"> & Partial<Pick<EventBus, "watermark">>;
  /** Called after deliveries were queued (DeliveryWorker.notify). */
  onQueued(): void;
  logger: Logger;
  newId: () => string;
  now?: () => number;
}

/** Events read per page when catching up. */
const PAGE = 500;

/**
 * Turns namespace.tag_moved events into deliveries. It reads the persisted event log from the
 * store's delivery cursor, and each move is queued in the same transaction that advances the
 * cursor, so a move is queued exactly once even across crashes and restarts (moves made while
 * the server was down cannot happen: the server makes them). The first start ever begins at the
 * current end of the log (history is not delivered). Live events only wake it up.
 */
export class TagMoveFeed {
  private readonly now: () => number;
  private cursor = 0;
  private unlisten: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;

  constructor(private readonly options: TagMoveFeedOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Loads the cursor, starts listening and catches up with the log; resolves once caught up. */
  async start(): Promise<void> {
    const { store, eventLog, bus } = this.options;
    let cursor = await store.eventCursor();
    if (cursor === undefined) {
      cursor = await eventLog.lastSequence();
      await store.setEventCursor(cursor);
    }
    this.cursor = cursor;
    this.unlisten = bus.listen((event) => {
      if (event.type === NAMESPACE_TAG_MOVED) this.poke();
    });
    this.poke();
    await this.running;
  }

  /** Stops listening; waits for the move being queued. */
  async close(): Promise<void> {
    this.closed = true;
    this.unlisten?.();
    await this.running;
  }

  private poke(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.catchUp();
        } catch (err) {
          this.options.logger.error({ err }, "delivery: cannot read tag moves from the event log; the next move retries");
        }
      } while (this.again && !this.closed);
    })().finally(() => {
      this.running = undefined;
    });
  }

  private async catchUp(): Promise<void> {
    const upTo = this.options.bus.watermark?.() ?? Number.MAX_SAFE_INTEGER;
    for (;;) {
      const page = (await this.options.eventLog.listAfter(this.cursor, PAGE)).filter((e) => e.sequence <= upTo);
      if (page.length === 0) return;
      let queued = false;
      for (const event of page) {
        if (event.type === NAMESPACE_TAG_MOVED) {
          const move = tagMoveOf(event);
          if (move) {
            await this.queue(move);
            queued = true;
          } else {
            this.options.logger.warn(
              { sequence: event.sequence, attributes: event.attributes },
              "ignoring a malformed tag-move event",
            );
          }
        }
        this.cursor = event.sequence;
      }
      await this.options.store.setEventCursor(this.cursor);
      if (queued) this.options.onQueued();
      if (page.length < PAGE) return;
    }
  }

  private async queue(move: TagMove): Promise<void> {
    const { created, superseded } = await this.options.store.enqueueTagMove(move, this.now(), this.options.newId);
    await publishQueued(this.options.bus, this.options.store, created, superseded, this.options.logger);
  }
}

/** The move an event announces; undefined when its attributes are malformed. */
function tagMoveOf(event: EventRecord): TagMove | undefined {
  const { namespace, tag, revision } = event.attributes;
  if (!namespace || !tag || !revision || !/^\d+$/.test(revision)) return undefined;
  return { namespace, tag, revision: Number(revision), eventSequence: event.sequence };
}

/** Publishes delivery.queued for created and delivery.superseded for superseded deliveries. */
export async function publishQueued(
  bus: Pick<EventBus, "publish">,
  store: Pick<DeliveryStore, "getPublisher">,
  created: readonly DeliveryRecord[],
  superseded: readonly DeliveryRecord[],
  logger: Logger,
  extra: Record<string, string> = {},
): Promise<void> {
  const publishers = new Map<string, PublisherRecord | undefined>();
  const publisherOf = async (id: string) => {
    if (!publishers.has(id)) publishers.set(id, await store.getPublisher(id));
    return publishers.get(id);
  };
  try {
    for (const d of superseded) {
      await bus.publish(DELIVERY_SUPERSEDED, d.id, undefined, deliveryAttributes(d, await publisherOf(d.publisherId)));
    }
    for (const d of created) {
      await bus.publish(DELIVERY_QUEUED, d.id, undefined, deliveryAttributes(d, await publisherOf(d.publisherId), extra));
    }
  } catch (err) {
    logger.error({ err }, "delivery: cannot publish an event");
  }
}
