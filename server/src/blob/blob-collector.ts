import type { Logger } from "pino";
import type { BlobReferences } from "../store/blob-references.js";
import type { BlobStore, StoredBlobInfo } from "./blob-store.js";

/** Options of {@link BlobCollector}. */
export interface BlobCollectorOptions {
  blobs: BlobStore;
  references: BlobReferences;
  logger: Logger;
  /**
   * Unreferenced blobs younger than this are kept: the window in which whoever put a blob must
   * reference it (an upload being committed, a publish, a log segment being sealed). Default 24 h.
   */
  retentionMs?: number;
  /** Time between two collections once started; 0 disables the periodic runs. Default 1 h. */
  intervalMs?: number;
  /** Delay of the first collection after start(). Default the smaller of 1 min and intervalMs. */
  startDelayMs?: number;
  /**
   * Runs before each collection, so that what it frees (the tasks the task retention removes)
   * goes in the same collection. A failure is logged and the collection runs anyway.
   */
  beforeCollection?: () => Promise<unknown>;
  now?: () => number;
}

/** What one collection did. */
export interface BlobCollection {
  /** Blobs listed. */
  scanned: number;
  /** Blobs deleted and the bytes they held. */
  deleted: number;
  freedBytes: number;
  /** Blobs kept because something references them. */
  referenced: number;
  /** Blobs kept because they are younger than the retention (their references are not checked). */
  young: number;
}

/** Blobs whose references are checked, and then deleted, together. */
const BATCH = 500;

/**
 * Garbage collection of the blob store (issue 6, item 4): deletes blobs that nothing in the
 * metadata store references (artefacts, storage files, namespace entries of any revision, log
 * segments) and whose content was last put longer than the retention ago. It lists the blob
 * store, checks references per batch right before deleting that batch, and logs what it freed.
 * Old namespace revisions are kept forever, so their blobs are never collected: there is no
 * revision retention.
 *
 * The retention is what makes it safe against concurrent writers: a put refreshes createTime and
 * its reference is written within seconds. What remains is a put of content identical to an old
 * unreferenced blob landing between the reference check and the delete of its batch (a few
 * milliseconds); that publish then names a missing blob, which reads report as such.
 *
 * Lifecycle: start() schedules one collection after startDelayMs and then one every intervalMs
 * (never two at once); collect() runs one now (joining a running one); close() stops the timer
 * and waits for a running collection, which stops at its next batch.
 */
export class BlobCollector {
  private readonly now: () => number;
  private readonly retentionMs: number;
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<BlobCollection> | undefined;
  private closed = false;

  constructor(private readonly options: BlobCollectorOptions) {
    this.now = options.now ?? Date.now;
    this.retentionMs = options.retentionMs ?? 24 * 3_600_000;
    this.intervalMs = options.intervalMs ?? 3_600_000;
  }

  /** Schedules the first collection and the periodic ones (none when intervalMs is 0). */
  start(): void {
    if (this.intervalMs <= 0 || this.closed) return;
    this.schedule(this.options.startDelayMs ?? Math.min(60_000, this.intervalMs));
  }

  /** Stops scheduling and waits for a running collection. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** Runs one collection now (or joins the running one) and resolves to what it did. */
  collect(): Promise<BlobCollection> {
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.collect()
        .catch((err: unknown) => this.options.logger.error({ err }, "blob garbage collection failed"))
        .finally(() => {
          if (!this.closed) this.schedule(this.intervalMs);
        });
    }, delayMs);
    this.timer.unref();
  }

  private async run(): Promise<BlobCollection> {
    await this.options
      .beforeCollection?.()
      .catch((err: unknown) => this.options.logger.error({ err }, "the step before blob garbage collection failed"));
    const started = this.now();
    const cutoff = started - this.retentionMs;
    const result: BlobCollection = { scanned: 0, deleted: 0, freedBytes: 0, referenced: 0, young: 0 };
    let batch: StoredBlobInfo[] = [];
    const flush = async () => {
      const candidates = batch;
      batch = [];
      if (candidates.length === 0) return;
      const used = await this.options.references.referenced(candidates.map((b) => b.sha256));
      for (const blob of candidates) {
        if (used.has(blob.sha256)) {
          result.referenced++;
          continue;
        }
        await this.options.blobs.delete(blob.sha256);
        result.deleted++;
        result.freedBytes += blob.size;
      }
    };
    for await (const blob of this.options.blobs.list()) {
      if (this.closed) break;
      result.scanned++;
      if (blob.createTime.getTime() > cutoff) {
        result.young++;
        continue;
      }
      batch.push(blob);
      if (batch.length >= BATCH) await flush();
    }
    if (!this.closed) await flush();
    this.options.logger.info(
      { ...result, retentionMs: this.retentionMs, durationMs: this.now() - started },
      `blob garbage collection freed ${result.deleted} blobs (${result.freedBytes} bytes)`,
    );
    return result;
  }
}
