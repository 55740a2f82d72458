import type { TaskDefinition } from "./task-store.js";

/** What the plan fires for the occurrences missed while no server ran. */
export type CatchUpPolicy = "skip" | "once";

/**
 * What a plan fires: a task definition (the store's type), or a pipeline spec held as the
 * wire's JSON form until pipelines have a definition type of their own in the store.
 */
export type PlanTarget = { kind: "task"; task: TaskDefinition } | { kind: "pipeline"; pipeline: unknown };

/** A plan as the user defined it. */
export interface PlanDefinition {
  /** The schedule, as the original's `planned` (server/src/plans/schedule.ts). */
  planned: string;
  /** IANA zone of the cron fields; "" for UTC. */
  timezone: string;
  catchUp: CatchUpPolicy;
  target: PlanTarget;
}

/** A plan row. Times are milliseconds since the epoch. */
export interface PlanRecord {
  id: string;
  ownerId: string;
  definition: PlanDefinition;
  paused: boolean;
  /**
   * The occurrence the plan waits for; null when paused or when the schedule never matches
   * again. Servers move it forward as they fire (advance) and reset it on update and resume.
   */
  nextRunTime: number | null;
  createTime: number;
  /** Changes on every update, pause and resume: advance() compares it so a stale server cannot move a newer schedule. */
  updateTime: number;
}

/**
 * One firing of a plan, claimed under `key` before its task or pipeline exists. The target id is
 * chosen at claim time, so whoever completes the firing (the claimer, or another server after the
 * claimer died) creates the same task.
 */
export interface PlanRunRecord {
  /** Unique: `<plan id>@<scheduled time>` for occurrences, `<plan id>!<run id>` for RunPlan. */
  key: string;
  planId: string;
  /** The occurrence; for a manual run, when it was asked for. */
  scheduledTime: number;
  /** When it was claimed. */
  fireTime: number;
  kind: "task" | "pipeline";
  targetId: string;
  manual: boolean;
  /** Whether its task or pipeline was created. */
  launched: boolean;
}

/** Filter and page of a plan listing, ordered by id. */
export interface PlanQuery {
  ownerId?: string;
  /** Only plans whose id is above this (the page token). */
  afterId?: string;
  limit: number;
}

/** create() of an id that already exists. */
export class PlanExistsError extends Error {
  override name = "PlanExistsError";
  constructor(readonly planId: string) {
    super(`plan ${planId} already exists`);
  }
}

/**
 * Persistence of plans and their firings. Each method is atomic on its own; callers serialize
 * nothing. The exactly-once guarantee across servers rests on claimRun alone: an insert under a
 * unique key that exactly one caller wins, on every backend and across processes (on MongoDB a
 * unique-index insert, the one operation the jongodb test server makes single-winner across
 * connections). Everything else may race harmlessly: a stale nextRunTime only makes a server try
 * a claim that is already taken.
 */
export interface PlanStore {
  /** Inserts a new plan; rejects with PlanExistsError when the id is taken. */
  create(plan: PlanRecord): Promise<PlanRecord>;
  get(id: string): Promise<PlanRecord | undefined>;
  /** A page of plans ordered by id. */
  list(query: PlanQuery): Promise<PlanRecord[]>;
  /** Every plan that is not paused (what the firing loop watches). */
  listActive(): Promise<PlanRecord[]>;
  /**
   * Replaces definition, paused, nextRunTime and updateTime of an existing plan; undefined when
   * it does not exist.
   */
  update(
    id: string,
    change: Pick<PlanRecord, "definition" | "paused" | "nextRunTime" | "updateTime">,
  ): Promise<PlanRecord | undefined>;
  /**
   * Moves nextRunTime forward to next, only if the plan's updateTime is still `updateTime` and
   * next is later than the stored value (or it is null); returns whether it moved.
   */
  advance(id: string, updateTime: number, next: number): Promise<boolean>;
  /** Removes the plan and its runs; false when it did not exist. */
  delete(id: string): Promise<boolean>;
  /** Inserts the run unless its key exists: true for the one caller that inserted it. */
  claimRun(run: PlanRunRecord): Promise<boolean>;
  /** Marks the run launched (idempotent). */
  markLaunched(key: string): Promise<void>;
  /** The plan's latest runs, newest fire time first, at most limit. */
  listRuns(planId: string, limit: number): Promise<PlanRunRecord[]>;
  /** Runs not launched that were claimed before claimedBefore, oldest first, at most limit. */
  listUnlaunched(claimedBefore: number, limit: number): Promise<PlanRunRecord[]>;
}
