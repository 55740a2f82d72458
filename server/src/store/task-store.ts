/** Lifecycle states of a task (DESIGN §3). */
export type TaskState = "waiting" | "setup" | "running" | "done" | "stop" | "stopped";

/** Outcome of a task or attempt; "none" until it ends. */
export type TaskOutcome = "none" | "success" | "failed" | "error";

/**
 * A task definition as stored: the original task format's fields under their TaskSpec names.
 * It is the store's own type, not a protobuf message, so the wire and the database evolve apart.
 */
export interface TaskDefinition {
  name: string;
  type: string;
  image: string;
  script: string[];
  entrypoint: string[];
  environment: string[];
  source: string;
  commit: string;
  directory: string;
  privkey: string;
  binds: string[];
  artefactPath: string;
  artefactPushFilters: string[];
  storage: string[];
  storagePath: string;
  namespace: string[];
  namespaceFilters: string[];
  namespaceMerged: boolean;
  rootTask: string[];
  tagNamespace: string;
  publishMode: string;
  queue: string;
  retry: number;
  timeout: number;
  eta: number;
  cacheImage: boolean;
  cacheClean: boolean;
  prune: boolean;
  disablePushOnFailure: boolean;
  quota: string;
  labels: Record<string, string>;
  /**
   * Pipeline member tasks only: the member's parents (keys). Absent on other tasks and on tasks
   * stored before pipelines existed.
   */
  dependsOn?: string[];
  /** Pipeline member tasks only: the last dependsOn.length rootTask entries are the parents' tasks, fetched into `artefact_path/<key>/`. */
  inheritArtefacts?: boolean;
}

/** A task row. Times are milliseconds since the epoch. */
export interface TaskRecord {
  id: string;
  /** Insertion order; FIFO dispatch and listing follow it. */
  seq: number;
  definition: TaskDefinition;
  /** Effective queue (the definition's, or "general"). */
  queue: string;
  /** Regular expression over node names; empty for any node. */
  targetNode: string;
  status: TaskState;
  result: TaskOutcome;
  exitCode: number | null;
  error: string;
  ownerId: string;
  pipelineId: string;
  nodeId: string;
  /** Number of the latest attempt; 0 before the first dispatch. */
  attempt: number;
  /** Lease of the current attempt, empty when none is running. */
  leaseId: string;
  leaseExpireTime: number;
  /** Attempts lost to infrastructure so far (bounded by the server's requeue limit). */
  infraFailures: number;
  /** Script failures retried so far (bounded by definition.retry). */
  scriptRetries: number;
  /** Bytes of log committed. */
  logSize: number;
  /** Earliest dispatch time (the definition's eta). */
  notBefore: number;
  createTime: number;
  startTime: number | null;
  endTime: number | null;
  updateTime: number;
}

/** Number of tasks in one status and queue. */
export interface TaskCount {
  status: TaskState;
  queue: string;
  count: number;
}

/** One run of a task on one node. */
export interface AttemptRecord {
  taskId: string;
  number: number;
  nodeId: string;
  leaseId: string;
  status: TaskState;
  result: TaskOutcome;
  exitCode: number | null;
  error: string;
  /** Task log offset at which this attempt's output starts. */
  logBase: number;
  startTime: number;
  endTime: number | null;
}

/** Filter and page of a task listing; results are newest first. */
export interface TaskQuery {
  statuses?: TaskState[];
  result?: TaskOutcome;
  ownerId?: string;
  pipelineId?: string;
  queue?: string;
  /** Only tasks with seq below this (the page token). */
  beforeSeq?: number;
  limit: number;
}

/** Which waiting tasks a dispatch pass may consider. */
export interface WaitingQuery {
  /** Only tasks whose notBefore is at or before now. */
  now: number;
  /** Only tasks in these queues. */
  queues: string[];
  /** Only tasks of these types. */
  types: string[];
  /** At most this many tasks per owner. */
  perOwner: number;
  /** At most this many tasks in all. */
  limit: number;
}

/** What an assignment writes: the attempt, its lease and the node. */
export interface Assignment {
  taskId: string;
  /** The attempt number the task must be moving from (compare-and-set). */
  fromAttempt: number;
  nodeId: string;
  leaseId: string;
  leaseExpireTime: number;
  /** Task log offset at which the new attempt's output starts. */
  logBase: number;
  /** sha256 (hashSecret) of the attempt's task token; the secret itself is never stored. Default none. */
  tokenHash?: string;
  now: number;
}

/** How an attempt ended, as the store records it. */
export interface AttemptEnd {
  taskId: string;
  attempt: number;
  leaseId: string;
  result: TaskOutcome;
  exitCode: number | null;
  error: string;
  /** Task state afterwards: done, stopped, or waiting when the task is requeued. */
  taskStatus: TaskState;
  infraFailures: number;
  scriptRetries: number;
  /** Bytes of the task's log committed so far. */
  logSize: number;
  now: number;
}

/**
 * Persistence of tasks and their attempts. Methods that change a running task are
 * compare-and-set on (task id, attempt, lease id), so a stale agent or a second server can never
 * overwrite a newer attempt: they return the updated task, or undefined when the set failed. Implementations must make each
 * method atomic; callers serialize nothing.
 */
export interface TaskStore {
  /** Inserts a new task; seq is assigned by the store and returned. */
  create(task: Omit<TaskRecord, "seq">): Promise<TaskRecord>;
  get(id: string): Promise<TaskRecord | undefined>;
  list(query: TaskQuery): Promise<TaskRecord[]>;
  /**
   * Waiting tasks a dispatch pass may assign, in fair order: every owner's oldest task first
   * (oldest of those first), then every owner's second oldest, and so on. So one owner's
   * thousands of waiting tasks never starve another owner's single task, and FIFO holds within
   * one owner and queue.
   */
  listWaiting(query: WaitingQuery): Promise<TaskRecord[]>;
  /** Whether any task waits (whatever its queue, type or eta). */
  hasWaiting(): Promise<boolean>;
  /** Every task in setup, running or stop (an attempt holds a lease). */
  listActive(): Promise<TaskRecord[]>;
  /**
   * How many unfinished tasks (waiting, setup, running, stop) there are per status and queue,
   * in no particular order; pairs with no task are absent. For the metrics gauges, read at
   * every scrape: cluster-wide, since the store is shared by every server.
   */
  countUnfinished(): Promise<TaskCount[]>;
  /** Active tasks whose lease expired before now. */
  listExpiredLeases(now: number): Promise<TaskRecord[]>;
  /**
   * Finished tasks (done or stopped) that ended before endTime, oldest end first, at most
   * limit: what the task retention removes.
   */
  listFinishedBefore(endTime: number, limit: number): Promise<TaskRecord[]>;
  attempts(taskId: string): Promise<AttemptRecord[]>;
  /** The attempt whose task token hashes to tokenHash (any state); undefined when none does. */
  attemptByTokenHash(tokenHash: string): Promise<AttemptRecord | undefined>;
  /** Moves a waiting task at attempt fromAttempt into setup with a new attempt; undefined if it moved. */
  assign(assignment: Assignment): Promise<TaskRecord | undefined>;
  /** Sets the status of the current attempt (setup → running); undefined when the lease is stale. */
  markRunning(taskId: string, attempt: number, leaseId: string, now: number): Promise<TaskRecord | undefined>;
  /** Extends the leases of every active attempt on the node. */
  renewLeases(nodeId: string, leaseExpireTime: number): Promise<void>;
  /** Brings the leases of every active attempt on the node forward to expire by leaseExpireTime. */
  shortenLeases(nodeId: string, leaseExpireTime: number): Promise<void>;
  /** Ends the current attempt; undefined when the lease is stale. */
  endAttempt(end: AttemptEnd): Promise<TaskRecord | undefined>;
  /** Marks an active task as stop requested; undefined when it is not active. */
  requestStop(taskId: string, now: number): Promise<TaskRecord | undefined>;
  /** Stops a waiting task at once; undefined when it is no longer waiting. */
  stopWaiting(taskId: string, now: number): Promise<TaskRecord | undefined>;
  /** Puts a finished task back to waiting for a new attempt; undefined when it is not finished. */
  restart(taskId: string, now: number): Promise<TaskRecord | undefined>;
  /** Removes a task and its attempts; false when it did not exist. */
  delete(taskId: string): Promise<boolean>;
}
