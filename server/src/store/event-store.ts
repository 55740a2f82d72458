/** A stored event. The payload is the store's own JSON snapshot of the subject, not protobuf. */
export interface EventRecord {
  /** Assigned by the store: strictly increasing from 1. */
  sequence: number;
  time: number;
  type: string;
  subjectId: string;
  /** Kind of snapshot in payload: "task", "node", "pipeline" or "" when none. */
  payloadKind: string;
  payload: unknown;
  attributes: Record<string, string>;
}

/** Append-only event log. append is atomic and assigns the next sequence. */
export interface EventStore {
  append(event: Omit<EventRecord, "sequence">): Promise<EventRecord>;
  /** Events with sequence greater than after, oldest first. */
  listAfter(after: number, limit: number): Promise<EventRecord[]>;
  lastSequence(): Promise<number>;
  /** The oldest kept sequence; 0 when the log is empty. */
  firstSequence(): Promise<number>;
  /**
   * Retention: removes the events older than `olderThan` (a time, ms) and those beyond the
   * newest `keepLast` (0: no count cap), oldest first, but never the newest event (so that
   * firstSequence() keeps telling resuming readers what was removed). Resolves to how many went.
   */
  prune(olderThan: number, keepLast: number): Promise<number>;
  /**
   * Optional: calls onAppend soon after any process appends, for a store that can push that
   * (MongoDB change streams). Only a hint that makes readers look sooner: readers must still
   * poll, since a notification can be late or lost. Where the database cannot push (a standalone
   * server, the jongodb test server) onUnavailable is called once and nothing else happens.
   * Returns the function that stops watching.
   */
  watchAppends?(onAppend: () => void, onUnavailable: (err: Error) => void): () => Promise<void>;
}
