import { mkdir, rm } from "node:fs/promises";
import type { Logger } from "pino";
import type { BlobStore } from "../blob/blob-store.js";
import type { EventBus } from "../events/event-bus.js";
import type { DeliveryRecord, DeliveryStore, PublisherKind, PublisherRecord } from "../store/delivery-store.js";
import { PermanentDeliveryError, type Deliverer, type RevisionFile } from "./deliverer.js";
import {
  DELIVERY_FAILED,
  DELIVERY_RETRYING,
  DELIVERY_STARTED,
  DELIVERY_SUCCEEDED,
  DELIVERY_SUPERSEDED,
  deliveryAttributes,
} from "./delivery-events.js";
import { materializeRevision } from "./materialize-revision.js";

/** Backoff of {@link DeliveryWorker}: base and cap of the exponential delay. */
export interface BackoffOptions {
  /** Delay after the first failed attempt. Default 10 s. */
  baseMs: number;
  /** Longest delay. Default 1 h. */
  maxMs: number;
}

/** Delay before the attempt after `attempts` failed ones: base · 2^(attempts−1), capped at max. */
export function deliveryBackoffMs(attempts: number, options: BackoffOptions): number {
  const exponent = Math.max(0, attempts - 1);
  return Math.min(options.maxMs, options.baseMs * 2 ** Math.min(exponent, 40));
}

/** Timers of the worker (injectable so that tests drive time). */
export interface WorkerTimers {
  set(callback: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

/** Options of {@link DeliveryWorker}. */
export interface DeliveryWorkerOptions {
  store: DeliveryStore;
  /**
   * The files of a namespace revision; rejects with PermanentDeliveryError when the revision does
   * not exist (see namespaceRevisionFiles).
   */
  revisionFiles(namespace: string, revision: number): Promise<readonly RevisionFile[]>;
  blobs: BlobStore;
  deliverers: Record<PublisherKind, Deliverer>;
  events: Pick<EventBus, "publish">;
  logger: Logger;
  /** Directory of the deliverers' temporary files; emptied by start(). Not emptied when omitted. */
  workDir?: string;
  /** Attempts before a delivery fails. Default 8. */
  maxAttempts?: number;
  backoff?: Partial<BackoffOptions>;
  /** Deliveries of different publishers running at once. Default 4. */
  concurrency?: number;
  now?: () => number;
  timers?: WorkerTimers;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Runs the persisted delivery queue: takes due pending deliveries (at most one running per
 * publisher, `concurrency` publishers at once), runs the publisher's Deliverer, and records the
 * outcome: succeeded; pending again after deliveryBackoffMs when attempts remain; failed after
 * maxAttempts (or a PermanentDeliveryError); superseded when the attempt failed and a newer tag
 * move of the publisher is already queued. Every transition publishes an event (delivery-events).
 *
 * Lifecycle: start() requeues deliveries left running by a previous process (their attempt
 * counts), cleans workDir, and from then on wakes up by itself at the next due time and on
 * notify() (call it after queueing something). close() stops taking work, aborts running
 * deliveries (they go back to pending, due at once) and resolves when they have stopped.
 * Without start(), nothing runs by itself: runDue() drives the queue (tests, with `now`).
 */
export class DeliveryWorker {
  private readonly active = new Map<string, Promise<void>>();
  private readonly abort = new AbortController();
  private readonly now: () => number;
  private readonly timers: WorkerTimers;
  private readonly maxAttempts: number;
  private readonly backoff: BackoffOptions;
  private readonly concurrency: number;
  private started = false;
  private closed = false;
  private timer: unknown;
  private pumping: Promise<void> | undefined;
  private pumpAgain = false;

  constructor(private readonly options: DeliveryWorkerOptions) {
    this.now = options.now ?? Date.now;
    this.timers = options.timers ?? {
      set: (callback, ms) => setTimeout(callback, ms).unref(),
      clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
    };
    this.maxAttempts = options.maxAttempts ?? 8;
    this.backoff = { baseMs: options.backoff?.baseMs ?? 10_000, maxMs: options.backoff?.maxMs ?? 3_600_000 };
    this.concurrency = options.concurrency ?? 4;
  }

  /** Requeues interrupted deliveries, cleans workDir and starts running the queue. */
  async start(): Promise<void> {
    if (this.options.workDir) {
      await rm(this.options.workDir, { recursive: true, force: true });
      await mkdir(this.options.workDir, { recursive: true, mode: 0o700 });
    }
    const requeued = await this.options.store.requeueRunning(this.now());
    for (const d of requeued) {
      this.options.logger.info({ delivery: d.id, publisher: d.publisherId }, "requeued a delivery interrupted by a restart");
    }
    this.started = true;
    this.notify();
  }

  /** Something was queued or retried: look for due deliveries now. */
  notify(): void {
    if (!this.started || this.closed) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = (async () => {
      do {
        this.pumpAgain = false;
        try {
          await this.startDue();
          await this.schedule();
        } catch (err) {
          this.options.logger.error({ err }, "delivery queue: cannot read the queue; trying again in 10 s");
          this.setTimer(10_000);
        }
      } while (this.pumpAgain && !this.closed);
    })().finally(() => {
      this.pumping = undefined;
    });
  }

  /**
   * Starts every due delivery a free publisher has and waits until all running deliveries have
   * finished; resolves to how many it started. For tests that drive the queue with `now`.
   */
  async runDue(): Promise<number> {
    const started = await this.startDue();
    while (this.active.size > 0) await Promise.all(this.active.values());
    return started;
  }

  /** Stops taking work, aborts running deliveries and waits for them. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) this.timers.clear(this.timer);
    this.abort.abort();
    await this.pumping;
    while (this.active.size > 0) await Promise.all(this.active.values());
  }

  private async startDue(): Promise<number> {
    if (this.closed) return 0;
    const free = this.concurrency - this.active.size;
    if (free <= 0) return 0;
    const due = await this.options.store.listDue(this.now(), free + this.active.size);
    let started = 0;
    for (const candidate of due) {
      if (this.active.size >= this.concurrency || this.closed) break;
      if (this.active.has(candidate.publisherId)) continue;
      const claimed = await this.options.store.claim(candidate.id, this.now());
      if (!claimed) continue;
      started++;
      const run = this.run(claimed)
        .catch((err: unknown) => {
          this.options.logger.error({ err, delivery: claimed.id }, "delivery: cannot record the outcome of an attempt");
        })
        .finally(() => {
          this.active.delete(claimed.publisherId);
          this.notify();
        });
      this.active.set(claimed.publisherId, run);
    }
    return started;
  }

  private async schedule(): Promise<void> {
    if (this.closed) return;
    const next = await this.options.store.nextDueTime();
    if (next === undefined) return;
    const delay = next - this.now();
    // Due but not started: every slot is busy, and a finishing delivery calls notify().
    if (delay <= 0 && this.active.size > 0) return;
    this.setTimer(delay > 0 ? delay : 1000);
  }

  private setTimer(delayMs: number): void {
    if (this.timer !== undefined) this.timers.clear(this.timer);
    this.timer = this.timers.set(
      () => {
        this.timer = undefined;
        this.notify();
      },
      Math.min(MAX_TIMER_MS, Math.max(0, delayMs)),
    );
  }

  private async run(delivery: DeliveryRecord): Promise<void> {
    const { store, logger: parent } = this.options;
    const logger = parent.child({ delivery: delivery.id, publisher: delivery.publisherId });
    const publisher = await store.getPublisher(delivery.publisherId);
    if (!publisher) return; // removed meanwhile, with its deliveries
    await this.event(DELIVERY_STARTED, delivery, publisher);
    logger.info({ namespace: delivery.namespace, revision: delivery.revision, attempt: delivery.attempts }, "delivering");
    let failure: unknown;
    try {
      const files = await this.options.revisionFiles(delivery.namespace, delivery.revision);
      const deliverer = this.options.deliverers[publisher.kind];
      if (!deliverer) throw new PermanentDeliveryError(`no deliverer for publisher kind "${publisher.kind}"`);
      await deliverer.deliver({
        publisher,
        delivery,
        files,
        materialize: (dir) => materializeRevision(this.options.blobs, files, dir),
        signal: this.abort.signal,
      });
    } catch (err) {
      failure = err;
    }
    const now = this.now();
    if (failure === undefined) {
      const done = await store.finish(delivery.id, { state: "succeeded", error: "", nextAttemptTime: 0 }, now);
      if (!done) return;
      logger.info({ namespace: done.namespace, revision: done.revision }, "delivered");
      await this.event(DELIVERY_SUCCEEDED, done, publisher);
      return;
    }
    const error = failure instanceof Error ? failure.message : String(failure);
    if (this.abort.signal.aborted) {
      await store.finish(
        delivery.id,
        { state: "pending", error: `interrupted by shutdown: ${error}`, nextAttemptTime: now },
        now,
      );
      logger.info("delivery interrupted by shutdown; it runs again after the restart");
      return;
    }
    const newer = await store.newerThan(delivery);
    if (newer) {
      const done = await store.finish(delivery.id, { state: "superseded", error, nextAttemptTime: 0 }, now);
      if (!done) return;
      logger.warn({ error, newer: newer.id }, "delivery failed and a newer one is queued: superseded");
      await this.event(DELIVERY_SUPERSEDED, done, publisher, { error, superseded_by: newer.id });
      return;
    }
    if (delivery.attempts >= this.maxAttempts || failure instanceof PermanentDeliveryError) {
      const done = await store.finish(delivery.id, { state: "failed", error, nextAttemptTime: 0 }, now);
      if (!done) return;
      logger.warn({ error, attempts: done.attempts }, "delivery failed");
      await this.event(DELIVERY_FAILED, done, publisher, { error });
      return;
    }
    const nextAttemptTime = now + deliveryBackoffMs(delivery.attempts, this.backoff);
    const done = await store.finish(delivery.id, { state: "pending", error, nextAttemptTime }, now);
    if (!done) return;
    logger.warn(
      { error, attempts: done.attempts, nextAttemptTime: new Date(nextAttemptTime).toISOString() },
      "delivery attempt failed; retrying",
    );
    await this.event(DELIVERY_RETRYING, done, publisher, {
      error,
      next_attempt_time: new Date(nextAttemptTime).toISOString(),
    });
  }

  private async event(
    type: string,
    delivery: DeliveryRecord,
    publisher: PublisherRecord,
    extra: Record<string, string> = {},
  ): Promise<void> {
    try {
      await this.options.events.publish(type, delivery.id, undefined, deliveryAttributes(delivery, publisher, extra));
    } catch (err) {
      this.options.logger.error({ err, delivery: delivery.id, type }, "delivery: cannot publish an event");
    }
  }
}
