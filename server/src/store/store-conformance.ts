import { artefactStoreConformance } from "./artefact-store-conformance.js";
import type { StoreFactory } from "./conformance-harness.js";
import { deliveryStoreConformance } from "./delivery-store-conformance.js";
import { eventStoreConformance } from "./event-store-conformance.js";
import { logSegmentStoreConformance } from "./log-segment-store-conformance.js";
import { namespaceStoreConformance } from "./namespace-store-conformance.js";
import { nodeStoreConformance } from "./node-store-conformance.js";
import { organizationStoreConformance } from "./organization-store-conformance.js";
import { pipelineStoreConformance } from "./pipeline-store-conformance.js";
import { planStoreConformance } from "./plan-store-conformance.js";
import { storageStoreConformance } from "./storage-store-conformance.js";
import { taskStoreConformance } from "./task-store-conformance.js";
import { userStoreConformance } from "./user-store-conformance.js";

/**
 * Registers every metadata store conformance suite (tasks, nodes, users, events, log segments,
 * artefacts, storages, organizations, namespaces, deliveries, pipelines, blob references and plans) under the
 * current mocha describe. Each backend's test file calls this once; a behaviour both backends
 * must share is tested here, not in a backend's own test.
 */
export function storeConformance(factory: StoreFactory): void {
  taskStoreConformance(factory);
  nodeStoreConformance(factory);
  userStoreConformance(factory);
  eventStoreConformance(factory);
  logSegmentStoreConformance(factory);
  artefactStoreConformance(factory);
  storageStoreConformance(factory);
  organizationStoreConformance(factory);
  namespaceStoreConformance(factory);
  deliveryStoreConformance(factory);
  pipelineStoreConformance(factory);
  planStoreConformance(factory);
}
