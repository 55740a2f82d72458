import type { ArtefactStore } from "./artefact-store.js";
import type { BlobReferences } from "./blob-references.js";
import type { DeliveryStore } from "./delivery-store.js";
import type { EventStore } from "./event-store.js";
import type { LogSegmentStore } from "./log-segment-store.js";
import type { NamespaceStore } from "./namespace-store.js";
import type { NodeStore } from "./node-store.js";
import type { OrganizationStore } from "./organization-store.js";
import type { PipelineStore } from "./pipeline-store.js";
import type { PlanStore } from "./plan-store.js";
import type { StorageStore } from "./storage-store.js";
import type { TaskStore } from "./task-store.js";
import type { UserStore } from "./user-store.js";

/**
 * The metadata store: one small interface per aggregate. Backends: SQLite (embedded default) and
 * MongoDB (server/src/mongo), held to the same conformance suites (store-conformance.ts).
 * close() is called once, after every other call has settled.
 */
export interface Store {
  readonly tasks: TaskStore;
  readonly nodes: NodeStore;
  readonly users: UserStore;
  readonly events: EventStore;
  readonly logSegments: LogSegmentStore;
  readonly artefacts: ArtefactStore;
  readonly storages: StorageStore;
  readonly organizations: OrganizationStore;
  readonly namespaces: NamespaceStore;
  readonly deliveries: DeliveryStore;
  readonly pipelines: PipelineStore;
  readonly blobReferences: BlobReferences;
  readonly plans: PlanStore;
  close(): Promise<void>;
}
