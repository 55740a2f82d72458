import Database from "better-sqlite3";
import type { Store } from "../store/store.js";
import { migrate } from "./migrations.js";
import { SqliteEventStore } from "./sqlite-event-store.js";
import { SqliteLogSegmentStore } from "./sqlite-log-segment-store.js";
import { SqliteNodeStore } from "./sqlite-node-store.js";
import { SqliteTaskStore } from "./sqlite-task-store.js";
import { SqliteUserStore } from "./sqlite-user-store.js";

/**
 * Opens (creating if needed) the SQLite database at path and migrates it. WAL mode with
 * synchronous=NORMAL: a crash of the process loses nothing committed; a power loss may lose the
 * last transactions. ":memory:" gives a throwaway store for tests.
 */
export function openSqliteStore(path: string): Store {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  migrate(db);
  return {
    tasks: new SqliteTaskStore(db),
    nodes: new SqliteNodeStore(db),
    users: new SqliteUserStore(db),
    events: new SqliteEventStore(db),
    logSegments: new SqliteLogSegmentStore(db),
    close: async () => {
      db.close();
    },
  };
}
