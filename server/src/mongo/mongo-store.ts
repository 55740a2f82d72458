import { type Collection, type Db, MongoClient } from "mongodb";
import type { Store } from "../store/store.js";
import type { CounterDoc } from "./mongo-common.js";
import { createArtefactIndexes, type ArtefactDoc, MongoArtefactStore } from "./mongo-artefact-store.js";
import { MongoBlobReferences } from "./mongo-blob-references.js";
import {
  createDeliveryIndexes,
  type DeliveryCursorDoc,
  type DeliveryDoc,
  MongoDeliveryStore,
  type PublisherDoc,
} from "./mongo-delivery-store.js";
import {
  createNamespaceIndexes,
  type EntryDoc,
  type IntentDoc,
  MongoNamespaceStore,
  type MongoNamespaceStoreOptions,
  type NamespaceCollections,
  type NamespaceDoc,
  type RevisionDoc,
} from "./mongo-namespace-store.js";
import {
  createOrganizationIndexes,
  MongoOrganizationStore,
  type OrganizationDoc,
  type OrganizationMemberDoc,
} from "./mongo-organization-store.js";
import { createStorageIndexes, MongoStorageStore, type StorageDoc, type StorageFileDoc } from "./mongo-storage-store.js";
import { type EventDoc, MongoEventStore } from "./mongo-event-store.js";
import { createPlanIndexes, MongoPlanStore, type PlanDoc, type PlanRunDoc } from "./mongo-plan-store.js";
import { createLogSegmentIndexes, type LogSegmentDoc, MongoLogSegmentStore } from "./mongo-log-segment-store.js";
import { createNodeIndexes, MongoNodeStore, type NodeDoc, type RegistrationTokenDoc } from "./mongo-node-store.js";
import {
  createPipelineIndexes,
  MongoPipelineStore,
  type PipelineClaimDoc,
  type PipelineDoc,
  type PipelineLockDoc,
  type PipelineMemberDoc,
} from "./mongo-pipeline-store.js";
import { type ClaimDoc, createTaskIndexes, MongoTaskStore, type TaskDoc } from "./mongo-task-store.js";
import { createUserIndexes, MongoUserStore, type TokenDoc, type UserDoc } from "./mongo-user-store.js";

/** Database used when the connection string names none. */
export const DEFAULT_MONGO_DATABASE = "mottainai";

/**
 * Version of the document layout this server writes, kept in the "meta" collection. A server
 * refuses a database written by a newer layout; bump it (and convert at start) when a stored
 * shape changes incompatibly.
 */
export const MONGO_SCHEMA_VERSION = 1;

interface MetaDoc {
  _id: string;
  version: number;
}

/** The database a mongodb:// or mongodb+srv:// connection string names, or undefined. */
export function mongoDatabaseName(url: string): string | undefined {
  const m = url.match(/^mongodb(?:\+srv)?:\/\/[^/?]*\/([^?]*)/);
  const name = m?.[1] ? decodeURIComponent(m[1]) : "";
  return name || undefined;
}

/**
 * Connects to MongoDB at url, checks the layout version, creates the indexes, and returns the
 * store; close() disconnects. The database is dbName, else the one the URL names, else
 * "mottainai". Several server processes may share one database: every cross-process invariant
 * (one claim per attempt, lease fencing, increasing sequences) is a single-document atomic
 * update, so neither transactions nor change streams are needed for correctness.
 */
export async function openMongoStore(url: string, dbName?: string): Promise<Store> {
  const client = new MongoClient(url, { appName: "mottainai-server" });
  await client.connect();
  try {
    const store = await createMongoStore(client.db(dbName ?? mongoDatabaseName(url) ?? DEFAULT_MONGO_DATABASE));
    return { ...store, close: () => client.close() };
  } catch (err) {
    await client.close();
    throw err;
  }
}

/** Tuning of the MongoDB store; the defaults suit production. */
export interface MongoStoreOptions {
  /** The namespace store's claim timeout and clock (MongoNamespaceStoreOptions). */
  namespaces?: MongoNamespaceStoreOptions;
}

/**
 * The store on an already connected database (tests share one client across many databases):
 * checks the layout version and creates the indexes. close() does nothing; the caller owns the
 * client.
 */
export async function createMongoStore(db: Db, options: MongoStoreOptions = {}): Promise<Store> {
  await checkSchema(db.collection<MetaDoc>("meta"));
  const counters = db.collection<CounterDoc>("counters");
  const tasks = db.collection<TaskDoc>("tasks");
  const nodes = db.collection<NodeDoc>("nodes");
  const registrationTokens = db.collection<RegistrationTokenDoc>("registration_tokens");
  const users = db.collection<UserDoc>("users");
  const tokens = db.collection<TokenDoc>("tokens");
  const events = db.collection<EventDoc>("events");
  const logSegments = db.collection<LogSegmentDoc>("log_segments");
  const claims = db.collection<ClaimDoc>("claims");
  await createTaskIndexes(tasks, claims);
  await createNodeIndexes(nodes, registrationTokens);
  await createUserIndexes(users, tokens);
  await createLogSegmentIndexes(logSegments);
  const artefacts = db.collection<ArtefactDoc>("artefacts");
  const storages = db.collection<StorageDoc>("storages");
  const storageFiles = db.collection<StorageFileDoc>("storage_files");
  const organizations = db.collection<OrganizationDoc>("organizations");
  const organizationMembers = db.collection<OrganizationMemberDoc>("organization_members");
  const namespaceCollections: NamespaceCollections = {
    namespaces: db.collection<NamespaceDoc>("namespaces"),
    revisions: db.collection<RevisionDoc>("namespace_revisions"),
    entries: db.collection<EntryDoc>("namespace_entries"),
    intents: db.collection<IntentDoc>("namespace_intents"),
  };
  const publishers = db.collection<PublisherDoc>("namespace_publishers");
  const deliveryDocs = db.collection<DeliveryDoc>("deliveries");
  await createArtefactIndexes(artefacts);
  await createStorageIndexes(storages, storageFiles);
  await createOrganizationIndexes(organizations, organizationMembers);
  await createNamespaceIndexes(namespaceCollections);
  await createDeliveryIndexes(publishers, deliveryDocs);
  const pipelines = db.collection<PipelineDoc>("pipelines");
  const pipelineMembers = db.collection<PipelineMemberDoc>("pipeline_members");
  const pipelineClaims = db.collection<PipelineClaimDoc>("pipeline_claims");
  await createPipelineIndexes(pipelines, pipelineMembers, pipelineClaims);
  const plans = db.collection<PlanDoc>("plans");
  const planRuns = db.collection<PlanRunDoc>("plan_runs");
  await createPlanIndexes(plans, planRuns);
  const deliveries = new MongoDeliveryStore(
    publishers,
    deliveryDocs,
    db.collection<DeliveryCursorDoc>("delivery_cursor"),
    counters,
  );
  return {
    tasks: new MongoTaskStore(tasks, counters, claims),
    nodes: new MongoNodeStore(nodes, registrationTokens),
    users: new MongoUserStore(users, tokens),
    events: new MongoEventStore(events, counters),
    logSegments: new MongoLogSegmentStore(logSegments),
    artefacts: new MongoArtefactStore(artefacts),
    storages: new MongoStorageStore(storages, storageFiles),
    organizations: new MongoOrganizationStore(organizations, organizationMembers, users),
    namespaces: new MongoNamespaceStore(namespaceCollections, (name) => deliveries.deleteNamespace(name), options.namespaces),
    deliveries,
    pipelines: new MongoPipelineStore(
      pipelines,
      pipelineMembers,
      pipelineClaims,
      counters,
      db.collection<PipelineLockDoc>("pipeline_locks"),
    ),
    blobReferences: new MongoBlobReferences([
      artefacts,
      storageFiles,
      namespaceCollections.entries,
      logSegments,
    ] as unknown as Collection<{ sha256: string }>[]),
    plans: new MongoPlanStore(plans, planRuns),
    close: async () => {},
  };
}

async function checkSchema(meta: Collection<MetaDoc>): Promise<void> {
  const doc = await meta.findOneAndUpdate(
    { _id: "schema" },
    { $setOnInsert: { version: MONGO_SCHEMA_VERSION } },
    { upsert: true, returnDocument: "after" },
  );
  const version = doc?.version ?? MONGO_SCHEMA_VERSION;
  if (version > MONGO_SCHEMA_VERSION) {
    throw new Error(
      `MongoDB database ${meta.dbName} has document layout ${version}, newer than this server knows (${MONGO_SCHEMA_VERSION}); upgrade the server`,
    );
  }
}
