import type { Logger } from "pino";
import type { EventStore } from "../store/event-store.js";

/** Options of {@link EventRetention}. */
export interface EventRetentionOptions {
  store: Pick<EventStore, "prune">;
  /** Events older than this go (ServerConfig.eventRetentionMs); 0 keeps them by age. */
  retentionMs: number;
  /** At most this many are kept (ServerConfig.eventRetentionCount); 0 for no cap. */
  maxCount: number;
  logger: Logger;
  /** Time between two sweeps. Default 10 min; the first runs 10 s after start(). */
  intervalMs?: number;
  now?: () => number;
}

/**
 * Keeps the event log bounded (`--event-retention`, `--event-retention-count`): each sweep
 * removes what is older than the retention or beyond the count cap (EventStore.prune). A
 * subscriber that later resumes from a removed sequence is told so by a gap marker
 * (EventService.Subscribe) instead of silently missing events. With several servers on one
 * database every one sweeps; prune is idempotent. Lifecycle: start(), then close() at shutdown.
 */
export class EventRetention {
  private timer: NodeJS.Timeout | undefined;
  private first: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(private readonly o: EventRetentionOptions) {}

  /** Schedules the sweeps (nothing when both limits are 0). */
  start(): void {
    if (this.o.retentionMs === 0 && this.o.maxCount === 0) return;
    this.first = setTimeout(() => void this.sweep(), 10_000);
    this.timer = setInterval(() => void this.sweep(), this.o.intervalMs ?? 600_000);
    this.first.unref();
    this.timer.unref();
  }

  /** One sweep now (a sweep in progress is joined); resolves to how many events went. */
  sweep(): Promise<number> {
    this.running ??= (async () => {
      try {
        const olderThan = this.o.retentionMs > 0 ? (this.o.now ?? Date.now)() - this.o.retentionMs : 0;
        const removed = await this.o.store.prune(olderThan, this.o.maxCount);
        if (removed > 0) this.o.logger.info({ removed }, "removed old events");
        return removed;
      } catch (err) {
        this.o.logger.error({ err }, "event retention failed; the next sweep retries");
        return 0;
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** Stops the sweeps; waits for one in progress. Idempotent. */
  async close(): Promise<void> {
    clearTimeout(this.first);
    clearInterval(this.timer);
    await this.running;
  }
}
