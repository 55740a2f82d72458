import type { DeliveryRecord, PublisherRecord } from "../store/delivery-store.js";

/** One file of the revision being delivered. */
export interface RevisionFile {
  /** Normalised relative path (normalizeFilePath). */
  path: string;
  size: number;
  sha256: string;
}

/** What a Deliverer gets for one attempt. */
export interface DeliveryJob {
  publisher: PublisherRecord;
  delivery: DeliveryRecord;
  /** The revision's files, by path. */
  files: readonly RevisionFile[];
  /**
   * Writes every file of the revision under dir (which exists and holds nothing the revision
   * names), creating parent directories (mode 0755, files 0644) and verifying each file's size
   * and sha256 against the blob store; rejects on the first mismatch or missing blob.
   */
  materialize(dir: string): Promise<void>;
  /** Aborts when the server shuts down; the deliverer stops its commands and rejects. */
  signal: AbortSignal;
}

/** A failure that another attempt cannot fix (the revision is gone, a path git cannot hold): fails at once. */
export class PermanentDeliveryError extends Error {
  override name = "PermanentDeliveryError";
}

/**
 * Delivers one revision through one kind of publisher (rsync, git). deliver() either resolves
 * (the target holds exactly the revision) or rejects with an Error whose message says why (a
 * command's last lines of stderr); the worker retries, unless it is a PermanentDeliveryError. It must be safe to call again after any
 * failure, including a crash half-way, and must clean up its own temporary files. The worker
 * never runs two deliveries of one publisher at once; different publishers run concurrently.
 */
export interface Deliverer {
  deliver(job: DeliveryJob): Promise<void>;
}
