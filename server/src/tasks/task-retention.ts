import type { Logger } from "pino";
import { removeTask, type RemoveTaskDeps } from "./remove-task.js";

/** Options of {@link TaskRetention}. */
export interface TaskRetentionOptions extends RemoveTaskDeps {
  /** Finished tasks that ended longer ago than this are removed; 0 keeps every task. */
  retentionMs: number;
  logger: Logger;
  now?: () => number;
}

/** What one sweep removed. */
export interface TaskSweep {
  removed: number;
}

/** Tasks read and removed per page. */
const PAGE = 200;

/**
 * Server-side retention of tasks (the original kept every task, log and artefact forever): a
 * sweep removes each task that is done or stopped and ended more than retentionMs ago, with its
 * attempts, artefact records and log (removeTask), oldest first, publishing `task.deleted` with
 * the attribute `reason: retention`. Running and waiting tasks are never touched, however old.
 * The blobs freed this way go with the blob garbage collection that follows (the server runs a
 * sweep right before each collection). Several servers may sweep at once: each task is removed,
 * and announced, once.
 */
export class TaskRetention {
  private readonly now: () => number;

  constructor(private readonly o: TaskRetentionOptions) {
    this.now = o.now ?? Date.now;
  }

  async sweep(): Promise<TaskSweep> {
    const result: TaskSweep = { removed: 0 };
    if (this.o.retentionMs <= 0) return result;
    const cutoff = this.now() - this.o.retentionMs;
    for (;;) {
      const page = await this.o.store.tasks.listFinishedBefore(cutoff, PAGE);
      for (const task of page) {
        if (await removeTask(this.o, task.id, { reason: "retention" })) result.removed++;
      }
      if (page.length < PAGE) break;
    }
    if (result.removed > 0) {
      this.o.logger.info({ ...result, retentionMs: this.o.retentionMs }, `task retention removed ${result.removed} tasks`);
    }
    return result;
  }
}
