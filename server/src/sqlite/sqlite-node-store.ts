import type { Database } from "better-sqlite3";
import type { NodeRecord, NodeStore, RegistrationTokenRecord } from "../store/node-store.js";
import type { GroupCommit } from "./group-commit.js";
import { prepared } from "./statement-cache.js";

interface NodeRow {
  id: string;
  name: string;
  hostname: string;
  credential_hash: string;
  draining: number;
  labels: string;
  queues: string;
  executors: string;
  capacity: number;
  agent_version: string;
  create_time: number;
  connect_time: number;
  last_heartbeat_time: number;
}

interface RegistrationTokenRow {
  id: string;
  description: string;
  hash: string;
  create_time: number;
  expire_time: number;
  revoked: number;
}

const toNode = (r: NodeRow): NodeRecord => ({
  id: r.id,
  name: r.name,
  hostname: r.hostname,
  credentialHash: r.credential_hash,
  draining: r.draining === 1,
  labels: JSON.parse(r.labels),
  queues: JSON.parse(r.queues),
  executors: JSON.parse(r.executors),
  capacity: r.capacity,
  agentVersion: r.agent_version,
  createTime: r.create_time,
  connectTime: r.connect_time,
  lastHeartbeatTime: r.last_heartbeat_time,
});

const toRegistrationToken = (r: RegistrationTokenRow): RegistrationTokenRecord => ({
  id: r.id,
  description: r.description,
  hash: r.hash,
  createTime: r.create_time,
  expireTime: r.expire_time,
  revoked: r.revoked === 1,
});

/** NodeStore on SQLite. */
export class SqliteNodeStore implements NodeStore {
  constructor(
    private readonly db: Database,
    private readonly writes: GroupCommit,
  ) {}

  upsertByName(n: NodeRecord): Promise<NodeRecord> {
    return this.writes.write(() => {
      prepared(
        this.db,
        `INSERT INTO nodes (id, name, hostname, credential_hash, draining, labels, queues, executors, capacity,
           agent_version, create_time, connect_time, last_heartbeat_time)
         VALUES (@id, @name, @hostname, @credentialHash, @draining, @labels, @queues, @executors, @capacity,
           @agentVersion, @createTime, @connectTime, @lastHeartbeatTime)
         ON CONFLICT (name) DO UPDATE SET hostname = excluded.hostname, credential_hash = excluded.credential_hash`,
      ).run({
        ...n,
        draining: n.draining ? 1 : 0,
        labels: JSON.stringify(n.labels),
        queues: JSON.stringify(n.queues),
        executors: JSON.stringify(n.executors),
      });
      return this.byName(n.name) as NodeRecord;
    });
  }

  async get(id: string): Promise<NodeRecord | undefined> {
    const row = prepared(this.db, "SELECT * FROM nodes WHERE id = ?").get(id) as NodeRow | undefined;
    return row && toNode(row);
  }

  async getByName(name: string): Promise<NodeRecord | undefined> {
    return this.byName(name);
  }

  private byName(name: string): NodeRecord | undefined {
    const row = prepared(this.db, "SELECT * FROM nodes WHERE name = ?").get(name) as NodeRow | undefined;
    return row && toNode(row);
  }

  async getByCredentialHash(hash: string): Promise<NodeRecord | undefined> {
    const row = prepared(this.db, "SELECT * FROM nodes WHERE credential_hash = ?").get(hash) as NodeRow | undefined;
    return row && toNode(row);
  }

  async list(): Promise<NodeRecord[]> {
    return (prepared(this.db, "SELECT * FROM nodes ORDER BY name").all() as NodeRow[]).map(toNode);
  }

  async updateConnection(
    id: string,
    f: Pick<NodeRecord, "hostname" | "labels" | "queues" | "executors" | "capacity" | "agentVersion" | "connectTime">,
  ): Promise<void> {
    return this.writes.write(() => {
      prepared(
        this.db,
        `UPDATE nodes SET hostname = ?, labels = ?, queues = ?, executors = ?, capacity = ?, agent_version = ?,
           connect_time = ?, last_heartbeat_time = ? WHERE id = ?`,
      ).run(
        f.hostname,
        JSON.stringify(f.labels),
        JSON.stringify(f.queues),
        JSON.stringify(f.executors),
        f.capacity,
        f.agentVersion,
        f.connectTime,
        f.connectTime,
        id,
      );
    });
  }

  setHeartbeats(heartbeats: Map<string, number>): Promise<void> {
    const update = prepared(this.db, "UPDATE nodes SET last_heartbeat_time = ? WHERE id = ?");
    return this.writes.write(() => {
      for (const [id, time] of heartbeats) update.run(time, id);
    });
  }

  setDraining(id: string, draining: boolean): Promise<boolean> {
    return this.writes.write(
      () => prepared(this.db, "UPDATE nodes SET draining = ? WHERE id = ?").run(draining ? 1 : 0, id).changes > 0,
    );
  }

  delete(id: string): Promise<boolean> {
    return this.writes.write(() => prepared(this.db, "DELETE FROM nodes WHERE id = ?").run(id).changes > 0);
  }

  createRegistrationToken(t: RegistrationTokenRecord): Promise<void> {
    return this.writes.write(() => {
      prepared(
        this.db,
        "INSERT INTO registration_tokens (id, description, hash, create_time, expire_time, revoked) VALUES (?, ?, ?, ?, ?, ?)",
      ).run(t.id, t.description, t.hash, t.createTime, t.expireTime, t.revoked ? 1 : 0);
    });
  }

  async getRegistrationTokenByHash(hash: string): Promise<RegistrationTokenRecord | undefined> {
    const row = prepared(this.db, "SELECT * FROM registration_tokens WHERE hash = ?").get(hash) as
      RegistrationTokenRow | undefined;
    return row && toRegistrationToken(row);
  }

  async listRegistrationTokens(): Promise<RegistrationTokenRecord[]> {
    return (prepared(this.db, "SELECT * FROM registration_tokens ORDER BY create_time").all() as RegistrationTokenRow[]).map(
      toRegistrationToken,
    );
  }

  revokeRegistrationToken(id: string): Promise<boolean> {
    return this.writes.write(
      () => prepared(this.db, "UPDATE registration_tokens SET revoked = 1 WHERE id = ?").run(id).changes > 0,
    );
  }
}
