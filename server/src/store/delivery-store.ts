/** How a publisher delivers a revision: rsync to a path or daemon, or a git commit pushed to a branch. */
export type PublisherKind = "rsync" | "git";

/** A namespace publisher: follows one tag and delivers the revision it points at every time it moves. */
export interface PublisherRecord {
  id: string;
  namespace: string;
  kind: PublisherKind;
  /** rsync: absolute path or rsync:// URL. git: repository URL or path. Validated by publisher-target.ts. */
  target: string;
  /** git only: the branch pushed to; "" for rsync. */
  branch: string;
  /** The tag followed. */
  tag: string;
  creatorId: string;
  createTime: number;
}

/**
 * Where a delivery is: pending (queued, runs at nextAttemptTime) → running → succeeded, or back
 * to pending after a failed attempt (the backoff), or failed after the last attempt. A pending
 * delivery that a newer tag move of the same publisher replaces becomes superseded (so does a
 * running one whose attempt fails once a newer one is queued).
 */
export type DeliveryState = "pending" | "running" | "succeeded" | "failed" | "superseded";

/** One revision to deliver through one publisher. */
export interface DeliveryRecord {
  id: string;
  publisherId: string;
  namespace: string;
  revision: number;
  /** The tag whose move queued it. */
  tag: string;
  state: DeliveryState;
  /** Attempts started so far (claim() counts them). */
  attempts: number;
  /** Why the last attempt failed; "" when none did. */
  error: string;
  /** When a pending delivery is due (epoch ms). */
  nextAttemptTime: number;
  createTime: number;
  updateTime: number;
}

/** A tag that moved: what enqueueTagMove() turns into deliveries. */
export interface TagMove {
  namespace: string;
  tag: string;
  revision: number;
  /**
   * Sequence of the event that announced the move: stored as the event cursor in the same
   * transaction, so that a restart resumes after the last move handled, never twice or never.
   */
  eventSequence?: number;
  /** Only this publisher (its first delivery, when it is added); every follower of the tag otherwise. */
  publisherId?: string;
}

/**
 * Publishers and the persisted delivery queue (issue 6, item 7). Every method is atomic; the
 * state transitions are guarded (claim only a pending delivery, finish only a running one), so a
 * worker that lost a race gets undefined instead of overwriting. Ordering of deliveries is their
 * insertion order (the newest tag move wins), not revision numbers: a rollback is a move too.
 */
export interface DeliveryStore {
  addPublisher(publisher: PublisherRecord): Promise<void>;
  getPublisher(id: string): Promise<PublisherRecord | undefined>;
  /** The namespace's publishers, oldest first. */
  listPublishers(namespace: string): Promise<PublisherRecord[]>;
  /** Deletes the publisher and its deliveries; false when it did not exist. */
  removePublisher(id: string): Promise<boolean>;

  /**
   * For every publisher of move.namespace that follows move.tag (only move.publisherId when
   * given): marks its pending deliveries
   * superseded and inserts a pending delivery of move.revision due at now (ids from newId).
   * Advances the event cursor to move.eventSequence when given. Returns what it created and what
   * it superseded.
   */
  enqueueTagMove(
    move: TagMove,
    now: number,
    newId: () => string,
  ): Promise<{ created: DeliveryRecord[]; superseded: DeliveryRecord[] }>;
  /** Sequence of the last tag-move event handled; undefined before the first setEventCursor(). */
  eventCursor(): Promise<number | undefined>;
  setEventCursor(sequence: number): Promise<void>;

  get(id: string): Promise<DeliveryRecord | undefined>;
  /** Deliveries of a namespace (and publisher, when given), newest first, at most limit. */
  list(filter: { namespace: string; publisherId?: string; limit: number }): Promise<DeliveryRecord[]>;
  /**
   * Pending deliveries due at or before now whose publisher has no running delivery, at most one
   * per publisher (its oldest), oldest first.
   */
  listDue(now: number, limit: number): Promise<DeliveryRecord[]>;
  /**
   * The earliest nextAttemptTime of a pending delivery whose publisher has no running one (those
   * wait for it to finish); undefined when there is none.
   */
  nextDueTime(): Promise<number | undefined>;
  /** pending → running, attempts + 1; undefined when it is not pending (any more). */
  claim(id: string, now: number): Promise<DeliveryRecord | undefined>;
  /**
   * running → update.state ("pending" for a retry, "succeeded", "failed" or "superseded") with
   * error and nextAttemptTime; undefined when it is not running (removed meanwhile).
   */
  finish(
    id: string,
    update: { state: Exclude<DeliveryState, "running">; error: string; nextAttemptTime: number },
    now: number,
  ): Promise<DeliveryRecord | undefined>;
  /** The newest delivery of the delivery's publisher when it is newer than this one and not superseded. */
  newerThan(delivery: DeliveryRecord): Promise<DeliveryRecord | undefined>;
  /**
   * pending or failed → pending, attempts 0, due at now; undefined when the delivery is in another
   * state. The caller checks that no newer delivery of the publisher exists.
   */
  retry(id: string, now: number): Promise<DeliveryRecord | undefined>;
  /** Every running delivery → pending, due at now (after a restart: their worker is gone). */
  requeueRunning(now: number): Promise<DeliveryRecord[]>;
}
