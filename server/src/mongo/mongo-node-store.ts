import type { Collection } from "mongodb";
import type { NodeRecord, NodeStore, RegistrationTokenRecord } from "../store/node-store.js";
import { fromPairs, isDuplicateKey, type Pairs, toPairs } from "./mongo-common.js";

/** A node document: NodeRecord with `_id` its id and labels as pairs (see Pairs). */
export type NodeDoc = Omit<NodeRecord, "id" | "labels"> & { _id: string; labels: Pairs };

/** A registration token document: RegistrationTokenRecord with `_id` its id. */
export type RegistrationTokenDoc = Omit<RegistrationTokenRecord, "id"> & { _id: string };

/** The collections' indexes (created at start by openMongoStore). */
export async function createNodeIndexes(nodes: Collection<NodeDoc>, tokens: Collection<RegistrationTokenDoc>): Promise<void> {
  await nodes.createIndex({ name: 1 }, { unique: true });
  await nodes.createIndex({ credentialHash: 1 }, { unique: true });
  await tokens.createIndex({ hash: 1 }, { unique: true });
  await tokens.createIndex({ createTime: 1 });
}

const toNode = (d: NodeDoc): NodeRecord => ({
  id: d._id,
  name: d.name,
  hostname: d.hostname,
  credentialHash: d.credentialHash,
  draining: d.draining,
  labels: fromPairs(d.labels),
  queues: d.queues.map((q) => ({ queue: q.queue, slots: q.slots })),
  executors: d.executors,
  capacity: d.capacity,
  agentVersion: d.agentVersion,
  createTime: d.createTime,
  connectTime: d.connectTime,
  lastHeartbeatTime: d.lastHeartbeatTime,
});

const toRegistrationToken = (d: RegistrationTokenDoc): RegistrationTokenRecord => ({
  id: d._id,
  description: d.description,
  hash: d.hash,
  createTime: d.createTime,
  expireTime: d.expireTime,
  revoked: d.revoked,
});

/** NodeStore on MongoDB. */
export class MongoNodeStore implements NodeStore {
  constructor(
    private readonly nodes: Collection<NodeDoc>,
    private readonly tokens: Collection<RegistrationTokenDoc>,
  ) {}

  /**
   * One upsert on the unique name: a new node is inserted whole, an existing one gets the new
   * hostname and credential. Two servers registering the same new name at once make one of the
   * upserts fail on the unique index; it is retried once and then updates the winner's node.
   */
  async upsertByName(n: NodeRecord): Promise<NodeRecord> {
    const { id, name, hostname, credentialHash, labels, ...rest } = n;
    const upsert = () =>
      this.nodes.findOneAndUpdate(
        { name },
        { $set: { hostname, credentialHash }, $setOnInsert: { _id: id, ...rest, labels: toPairs(labels) } },
        { upsert: true, returnDocument: "after" },
      );
    let doc;
    try {
      doc = await upsert();
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      doc = await upsert();
    }
    if (!doc) throw new Error(`upsert of node ${name} returned nothing`);
    return toNode(doc);
  }

  async get(id: string): Promise<NodeRecord | undefined> {
    const doc = await this.nodes.findOne({ _id: id });
    return doc ? toNode(doc) : undefined;
  }

  async getByName(name: string): Promise<NodeRecord | undefined> {
    const doc = await this.nodes.findOne({ name });
    return doc ? toNode(doc) : undefined;
  }

  async getByCredentialHash(hash: string): Promise<NodeRecord | undefined> {
    const doc = await this.nodes.findOne({ credentialHash: hash });
    return doc ? toNode(doc) : undefined;
  }

  async list(): Promise<NodeRecord[]> {
    return (await this.nodes.find({}).sort({ name: 1 }).toArray()).map(toNode);
  }

  async updateConnection(
    id: string,
    f: Pick<NodeRecord, "hostname" | "labels" | "queues" | "executors" | "capacity" | "agentVersion" | "connectTime">,
  ): Promise<void> {
    await this.nodes.updateOne(
      { _id: id },
      {
        $set: {
          hostname: f.hostname,
          labels: toPairs(f.labels),
          queues: f.queues.map((q) => ({ queue: q.queue, slots: q.slots })),
          executors: f.executors,
          capacity: f.capacity,
          agentVersion: f.agentVersion,
          connectTime: f.connectTime,
          lastHeartbeatTime: f.connectTime,
        },
      },
    );
  }

  /** One unordered bulk write; not atomic across nodes (each heartbeat is independent). */
  async setHeartbeats(heartbeats: Map<string, number>): Promise<void> {
    if (heartbeats.size === 0) return;
    await this.nodes.bulkWrite(
      [...heartbeats].map(([id, time]) => ({
        updateOne: { filter: { _id: id }, update: { $set: { lastHeartbeatTime: time } } },
      })),
      { ordered: false },
    );
  }

  async setDraining(id: string, draining: boolean): Promise<boolean> {
    return (await this.nodes.updateOne({ _id: id }, { $set: { draining } })).matchedCount > 0;
  }

  async delete(id: string): Promise<boolean> {
    return (await this.nodes.deleteOne({ _id: id })).deletedCount > 0;
  }

  async createRegistrationToken(t: RegistrationTokenRecord): Promise<void> {
    const { id, ...rest } = t;
    await this.tokens.insertOne({ _id: id, ...rest });
  }

  async getRegistrationTokenByHash(hash: string): Promise<RegistrationTokenRecord | undefined> {
    const doc = await this.tokens.findOne({ hash });
    return doc ? toRegistrationToken(doc) : undefined;
  }

  async listRegistrationTokens(): Promise<RegistrationTokenRecord[]> {
    return (await this.tokens.find({}).sort({ createTime: 1, _id: 1 }).toArray()).map(toRegistrationToken);
  }

  async revokeRegistrationToken(id: string): Promise<boolean> {
    return (await this.tokens.updateOne({ _id: id }, { $set: { revoked: true } })).matchedCount > 0;
  }
}
