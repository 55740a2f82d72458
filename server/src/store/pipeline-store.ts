import type { TaskDefinition, TaskOutcome } from "./task-store.js";

/**
 * Where a pipeline is: `running` while members may still run, `stop` once a stop was requested
 * and members still run, then `done` (every member finished) or `stopped`.
 */
export type PipelineState = "running" | "stop" | "done" | "stopped";

/** A member's outcome: its task's, or `skipped` when it never ran. */
export type MemberOutcome = TaskOutcome | "skipped";

/** Where a member is: no task yet, its task was created, or it will not run. */
export type MemberState = "pending" | "created" | "skipped";

/** One member as defined: its task and its compiled parents. */
export interface PipelineMemberDefinition {
  key: string;
  /** The task as written in the pipeline (its own queue, possibly empty). */
  definition: TaskDefinition;
  /** Keys of the members it waits for (chain, chord and depends_on edges). */
  dependsOn: string[];
  inheritArtefacts: boolean;
}

/** A pipeline as defined: the file's lists, its defaults and its members in file order. */
export interface PipelineDefinition {
  name: string;
  /** Default queue of members whose own queue is empty. */
  queue: string;
  /** At most this many members run at once; 0 for no limit. */
  concurrency: number;
  chain: string[];
  group: string[];
  chord: string[];
  members: PipelineMemberDefinition[];
}

/** A pipeline row. Times are milliseconds since the epoch. */
export interface PipelineRecord {
  id: string;
  /** Insertion order; listings follow it. */
  seq: number;
  ownerId: string;
  definition: PipelineDefinition;
  status: PipelineState;
  /** "none" until done; then success only if every member succeeded. */
  result: TaskOutcome;
  /** 1, plus one per retry. */
  run: number;
  createTime: number;
  /** When the first member task was created; null before. */
  startTime: number | null;
  endTime: number | null;
  updateTime: number;
}

/** A member's state in its pipeline's latest run of it. */
export interface MemberRecord {
  pipelineId: string;
  key: string;
  /** Which run of the member this row is about: 1, plus one per retry that reran it. */
  run: number;
  state: MemberState;
  /** The member task's id once created; "" while pending or when skipped. */
  taskId: string;
  /** "none" until its task finished; "skipped" when skipped. */
  result: MemberOutcome;
  startTime: number | null;
  endTime: number | null;
}

/** Filter and page of a pipeline listing; results are newest first. */
export interface PipelineQuery {
  ownerId?: string;
  statuses?: PipelineState[];
  /** Only pipelines with seq below this (the page token). */
  beforeSeq?: number;
  limit: number;
}

/** What a compare-and-set update of a pipeline changes. */
export interface PipelineUpdate {
  id: string;
  /** Only when the pipeline is in one of these states. Default any. */
  ifStatus?: PipelineState[];
  /** Only when its startTime is still null. Default false. */
  ifNotStarted?: boolean;
  set: Partial<Pick<PipelineRecord, "status" | "result" | "startTime" | "endTime">>;
  now: number;
}

/** How a member is claimed: its task (with the id the task will have) or a skip. */
export type MemberClaim = { kind: "task"; taskId: string } | { kind: "skip" };

/** The final state of a member whose task finished. */
export interface MemberEnd {
  pipelineId: string;
  key: string;
  run: number;
  result: TaskOutcome;
  startTime: number | null;
  endTime: number | null;
}

/**
 * Persistence of pipelines and their members. Progress is decided from here only, so that
 * several servers on one database, or a server restarted at any point, advance a pipeline
 * exactly as one server running without interruption would.
 *
 * The one cross-process invariant: a member run is claimed once. claimMember is single-winner on
 * (pipeline id, member key, run) — a unique key in the database — and the claim carries the id
 * of the task to create, chosen before the claim; so whoever finds a claimed member without its
 * task creates the task under that id, and a task store's unique id makes a second creation
 * fail. Every other write is idempotent (any server writes the same value) or a
 * compare-and-set on the pipeline's state. Each method is atomic on its own; callers serialize
 * nothing.
 */
export interface PipelineStore {
  /** Inserts a pipeline with every member pending at run 1; seq is assigned and returned. */
  create(pipeline: Omit<PipelineRecord, "seq">): Promise<PipelineRecord>;
  get(id: string): Promise<PipelineRecord | undefined>;
  list(query: PipelineQuery): Promise<PipelineRecord[]>;
  /** Ids of every pipeline running or stopping, oldest first: what a server start sweeps. */
  listUnfinished(): Promise<string[]>;
  /** The pipeline's members in definition order; [] for an unknown pipeline. */
  members(pipelineId: string): Promise<MemberRecord[]>;
  /**
   * Claims a pending member at run `run`: for its task, or to skip it. Single-winner: resolves
   * to the member afterwards, whose state and taskId are the winning claim's (compare them with
   * yours to know whether you won); undefined when the member does not exist or is at another run.
   */
  claimMember(pipelineId: string, key: string, run: number, claim: MemberClaim): Promise<MemberRecord | undefined>;
  /** Records how a created member's task ended (idempotent); false when the member is at another run or not created. */
  endMember(end: MemberEnd): Promise<boolean>;
  /** Compare-and-set update; the updated pipeline, or undefined when the condition failed. */
  update(update: PipelineUpdate): Promise<PipelineRecord | undefined>;
  /**
   * Starts a new run of a finished (done or stopped) pipeline at run fromRun: the pipeline goes
   * back to running with run + 1, result none and no end time, and the members named by keys
   * become pending at their next run (the others keep their state and result). Undefined when
   * the pipeline is not finished or not at fromRun (a concurrent retry won).
   */
  retry(id: string, fromRun: number, keys: string[], now: number): Promise<PipelineRecord | undefined>;
  /** Removes a pipeline and its members; false when it did not exist. */
  delete(id: string): Promise<boolean>;
  /**
   * Takes the pipeline's advance lock for holder until expireTime: true when it was free (or
   * expired at now, or already this holder's). Single-winner across processes, so that passes
   * over one pipeline never overlap anywhere and `concurrency` holds cluster-wide. A lock whose
   * holder died is free again once it expired.
   */
  lock(pipelineId: string, holder: string, now: number, expireTime: number): Promise<boolean>;
  /** Releases the lock if holder has it. */
  unlock(pipelineId: string, holder: string): Promise<void>;
}
