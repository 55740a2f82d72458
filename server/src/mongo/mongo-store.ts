import { type Collection, type Db, MongoClient } from "mongodb";
import type { Store } from "../store/store.js";
import type { CounterDoc } from "./mongo-common.js";
import { type EventDoc, MongoEventStore } from "./mongo-event-store.js";
import { createLogSegmentIndexes, type LogSegmentDoc, MongoLogSegmentStore } from "./mongo-log-segment-store.js";
import { createNodeIndexes, MongoNodeStore, type NodeDoc, type RegistrationTokenDoc } from "./mongo-node-store.js";
import { createTaskIndexes, MongoTaskStore, type TaskDoc } from "./mongo-task-store.js";
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

/**
 * The store on an already connected database (tests share one client across many databases):
 * checks the layout version and creates the indexes. close() does nothing; the caller owns the
 * client.
 */
export async function createMongoStore(db: Db): Promise<Store> {
  await checkSchema(db.collection<MetaDoc>("meta"));
  const counters = db.collection<CounterDoc>("counters");
  const tasks = db.collection<TaskDoc>("tasks");
  const nodes = db.collection<NodeDoc>("nodes");
  const registrationTokens = db.collection<RegistrationTokenDoc>("registration_tokens");
  const users = db.collection<UserDoc>("users");
  const tokens = db.collection<TokenDoc>("tokens");
  const events = db.collection<EventDoc>("events");
  const logSegments = db.collection<LogSegmentDoc>("log_segments");
  await createTaskIndexes(tasks);
  await createNodeIndexes(nodes, registrationTokens);
  await createUserIndexes(users, tokens);
  await createLogSegmentIndexes(logSegments);
  return {
    tasks: new MongoTaskStore(tasks, counters),
    nodes: new MongoNodeStore(nodes, registrationTokens),
    users: new MongoUserStore(users, tokens),
    events: new MongoEventStore(events, counters),
    logSegments: new MongoLogSegmentStore(logSegments),
    artefacts: notYetOnMongo<Store["artefacts"]>("artefacts"),
    storages: notYetOnMongo<Store["storages"]>("storages"),
    organizations: notYetOnMongo<Store["organizations"]>("organizations"),
    namespaces: notYetOnMongo<Store["namespaces"]>("namespaces"),
    deliveries: notYetOnMongo<Store["deliveries"]>("deliveries"),
    blobReferences: notYetOnMongo<Store["blobReferences"]>("blobReferences"),
    close: async () => {},
  };
}

/**
 * Stands in for an aggregate the MongoDB backend does not store yet (the artefact, storage,
 * namespace, organization and delivery stores of issue 6 come next): every method rejects with
 * an error that says so, instead of the server failing to start.
 */
function notYetOnMongo<T extends object>(aggregate: string): T {
  return new Proxy({} as T, {
    get: (_target, method) =>
      typeof method === "string" && method !== "then"
        ? () => Promise.reject(new Error(`store.${aggregate}.${method} is not implemented on MongoDB yet (issue 7)`))
        : undefined,
  });
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
