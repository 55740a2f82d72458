/** A sealed piece of a task's log, stored as a content-addressed blob. */
export interface LogSegmentRecord {
  taskId: string;
  /** Offset of the segment's first byte in the task's log. */
  start: number;
  length: number;
  sha256: string;
}

/** Index of sealed log segments. Each method is atomic. */
export interface LogSegmentStore {
  /** Records a segment; recording the same (task, start) again is a no-op. */
  add(segment: LogSegmentRecord): Promise<void>;
  /** The task's segments in log order. */
  list(taskId: string): Promise<LogSegmentRecord[]>;
  /**
   * The task's segments that start at or after start, in log order: what a reader that knows
   * the log up to start has not seen (several servers append to one log; SharedLogs).
   */
  listFrom(taskId: string, start: number): Promise<LogSegmentRecord[]>;
  /** Deletes the task's segments and returns the digests no segment references any more. */
  deleteTask(taskId: string): Promise<string[]>;
}
