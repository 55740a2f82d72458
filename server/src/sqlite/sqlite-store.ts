import Database from "better-sqlite3";
import type { Store } from "../store/store.js";
import { GroupCommit } from "./group-commit.js";
import { migrate } from "./migrations.js";
import { SqliteArtefactStore } from "./sqlite-artefact-store.js";
import { SqliteBlobReferences } from "./sqlite-blob-references.js";
import { SqliteDeliveryStore } from "./sqlite-delivery-store.js";
import { SqliteEventStore } from "./sqlite-event-store.js";
import { SqliteLogSegmentStore } from "./sqlite-log-segment-store.js";
import { SqliteNamespaceStore } from "./sqlite-namespace-store.js";
import { SqliteNodeStore } from "./sqlite-node-store.js";
import { SqliteOrganizationStore } from "./sqlite-organization-store.js";
import { SqlitePipelineStore } from "./sqlite-pipeline-store.js";
import { SqlitePlanStore } from "./sqlite-plan-store.js";
import { SqliteStorageStore } from "./sqlite-storage-store.js";
import { SqliteTaskStore } from "./sqlite-task-store.js";
import { SqliteUserStore } from "./sqlite-user-store.js";

/**
 * Opens (creating if needed) the SQLite database at path and migrates it. WAL mode with
 * synchronous=NORMAL: a crash of the process loses nothing committed; a power loss may lose the
 * last transactions. Writes are group-committed: those of one event-loop turn share one
 * transaction, and each resolves once it is committed (GroupCommit). ":memory:" gives a throwaway
 * store for tests.
 */
export function openSqliteStore(path: string): Store {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  migrate(db);
  const writes = new GroupCommit(db);
  return {
    tasks: new SqliteTaskStore(db, writes),
    nodes: new SqliteNodeStore(db, writes),
    users: new SqliteUserStore(db, writes),
    events: new SqliteEventStore(db, writes),
    logSegments: new SqliteLogSegmentStore(db, writes),
    artefacts: new SqliteArtefactStore(db, writes),
    storages: new SqliteStorageStore(db, writes),
    organizations: new SqliteOrganizationStore(db, writes),
    namespaces: new SqliteNamespaceStore(db, writes),
    deliveries: new SqliteDeliveryStore(db, writes),
    pipelines: new SqlitePipelineStore(db, writes),
    blobReferences: new SqliteBlobReferences(db),
    plans: new SqlitePlanStore(db, writes),
    close: async () => {
      writes.flush();
      db.close();
    },
  };
}
