import type { EventStore } from "./event-store.js";
import type { LogSegmentStore } from "./log-segment-store.js";
import type { NodeStore } from "./node-store.js";
import type { TaskStore } from "./task-store.js";
import type { UserStore } from "./user-store.js";

/**
 * The metadata store: one small interface per aggregate. Backends: SQLite (embedded default).
 * close() is called once, after every other call has settled.
 */
export interface Store {
  readonly tasks: TaskStore;
  readonly nodes: NodeStore;
  readonly users: UserStore;
  readonly events: EventStore;
  readonly logSegments: LogSegmentStore;
  close(): Promise<void>;
}
