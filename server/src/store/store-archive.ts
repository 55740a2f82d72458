import type { ArtefactRecord } from "./artefact-store.js";
import type { DeliveryRecord, PublisherRecord } from "./delivery-store.js";
import type { EventRecord } from "./event-store.js";
import type { LogSegmentRecord } from "./log-segment-store.js";
import type { NamespaceRecord, NamespaceRevisionRecord, NamespaceTagRecord } from "./namespace-store.js";
import type { NodeRecord, RegistrationTokenRecord } from "./node-store.js";
import type { OrganizationRecord } from "./organization-store.js";
import type { PlanRecord, PlanRunRecord } from "./plan-store.js";
import type { StorageFileRecord, StorageRecord } from "./storage-store.js";
import type { AttemptRecord, TaskRecord } from "./task-store.js";
import type { TokenRecord, UserRecord } from "./user-store.js";

/** Names of the counters a store hands out: task seq, event sequence, delivery insertion order. */
export type SequenceName = "tasks" | "events" | "deliveries";

/**
 * Every record of every aggregate, in the backend-neutral form of export archives: the domain
 * types of the store interfaces plus what those interfaces hide but the state needs (attempt token
 * hashes, namespace entry validity ranges, delivery insertion order, counters).
 */
export interface ArchiveRecords {
  users: UserRecord;
  /** API tokens; the hash of the secret, never the secret. */
  tokens: TokenRecord;
  /** With their members. */
  organizations: OrganizationRecord;
  nodes: NodeRecord;
  registrationTokens: RegistrationTokenRecord;
  /** With their seq. */
  tasks: TaskRecord;
  /** tokenHash: sha256 of the attempt's task token, "" when none. */
  attempts: AttemptRecord & { tokenHash: string };
  logSegments: LogSegmentRecord;
  artefacts: ArtefactRecord;
  events: EventRecord;
  /** fileCount and totalSize are computed from the storage's files, so they are not stored. */
  storages: Omit<StorageRecord, "fileCount" | "totalSize">;
  storageFiles: StorageFileRecord;
  namespaces: NamespaceRecord;
  namespaceRevisions: NamespaceRevisionRecord;
  /** A file's content valid in revisions [fromRevision, toRevision); toRevision null: still in the head. */
  namespaceEntries: {
    namespace: string;
    path: string;
    fromRevision: number;
    toRevision: number | null;
    size: number;
    sha256: string;
  };
  namespaceTags: NamespaceTagRecord & { namespace: string };
  publishers: PublisherRecord;
  /** seq: insertion order (the newest tag move wins), compared only within one archive. */
  deliveries: DeliveryRecord & { seq: number };
  /** At most one: the sequence of the last tag-move event the delivery queue handled. */
  deliveryCursor: { eventSequence: number };
  plans: PlanRecord;
  /** A plan's claimed firings (their keys keep a re-imported occurrence from firing again). */
  planRuns: PlanRunRecord;
  /** The last value each counter handed out (at least the largest stored one). */
  sequences: { name: SequenceName; value: number };
}

/** One aggregate part of an archive. */
export type ArchiveKind = keyof ArchiveRecords;

/**
 * Every kind, in the order archives hold and importers write them: what a record refers to
 * comes before it (users before tokens, tasks before attempts, namespaces before revisions, …).
 */
export const ARCHIVE_KINDS: readonly ArchiveKind[] = [
  "users",
  "tokens",
  "organizations",
  "nodes",
  "registrationTokens",
  "tasks",
  "attempts",
  "logSegments",
  "artefacts",
  "events",
  "storages",
  "storageFiles",
  "namespaces",
  "namespaceRevisions",
  "namespaceEntries",
  "namespaceTags",
  "publishers",
  "deliveries",
  "deliveryCursor",
  "plans",
  "planRuns",
  "sequences",
];

/** Reads the records of one kind, for StoreArchive.writeAll. */
export type ArchiveSource = <K extends ArchiveKind>(kind: K) => AsyncIterable<ArchiveRecords[K]>;

/**
 * Raw access to all of a backend's state for export and import (mottainai-server export/import),
 * reading and writing its tables or collections directly, below the store interfaces.
 *
 * Lifecycle: open (per backend), then read() for export, or nonEmpty() and one writeAll() for
 * import, then close(). Nothing else may write to the database meanwhile: export and import run
 * with the servers stopped (an export of a running SQLite server is still one consistent
 * snapshot; one of a running MongoDB is not).
 */
export interface StoreArchive {
  /** The kinds that already hold records (sequences and the delivery cursor count too). */
  nonEmpty(): Promise<ArchiveKind[]>;
  /** Every record of kind, in a stable order (the insertion order where the store keeps one). */
  read<K extends ArchiveKind>(kind: K): AsyncIterable<ArchiveRecords[K]>;
  /**
   * Writes every kind, in ARCHIVE_KINDS order, reading each from source, and makes each counter
   * continue after both its sequences record and the largest imported value. All or nothing:
   * on failure the database is left as empty as it was (one transaction on SQLite; on MongoDB the
   * written documents are deleted again) and the error is rethrown.
   */
  writeAll(source: ArchiveSource): Promise<void>;
  close(): Promise<void>;
}
