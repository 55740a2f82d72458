import { existsSync } from "node:fs";
import Database from "better-sqlite3";
import {
  ARCHIVE_KINDS,
  type ArchiveKind,
  type ArchiveRecords,
  type ArchiveSource,
  type SequenceName,
  type StoreArchive,
} from "../store/store-archive.js";
import { migrate } from "./migrations.js";

type Row = Record<string, unknown>;

/** How one kind maps to SQLite: the query that reads it in order, and the conversions both ways. */
interface KindMapping<K extends ArchiveKind> {
  /** Table whose rows make the kind non-empty. */
  table: string;
  select: string;
  fromRow(row: Row): ArchiveRecords[K];
  /** Statements and their parameter rows for one record. */
  insert(record: ArchiveRecords[K]): [sql: string, params: unknown[]][];
}

const json = (v: unknown) => JSON.stringify(v);
const bool = (v: unknown) => v === 1;
const one = (sql: string, ...params: unknown[]): [string, unknown[]][] => [[sql, params]];

const MAPPINGS: { [K in ArchiveKind]: KindMapping<K> } = {
  users: {
    table: "users",
    select: "SELECT * FROM users ORDER BY create_time, id",
    fromRow: (r) => ({
      id: r.id as string,
      name: r.name as string,
      email: r.email as string,
      role: r.role as ArchiveRecords["users"]["role"],
      passwordHash: r.password_hash as string,
      createTime: r.create_time as number,
    }),
    insert: (u) =>
      one(
        "INSERT INTO users (id, name, email, role, password_hash, create_time) VALUES (?, ?, ?, ?, ?, ?)",
        u.id,
        u.name,
        u.email,
        u.role,
        u.passwordHash,
        u.createTime,
      ),
  },
  tokens: {
    table: "tokens",
    select: "SELECT * FROM tokens ORDER BY create_time, id",
    fromRow: (r) => ({
      id: r.id as string,
      name: r.name as string,
      userId: r.user_id as string,
      hash: r.hash as string,
      createTime: r.create_time as number,
      lastUseTime: r.last_use_time as number,
      expireTime: r.expire_time as number,
    }),
    insert: (t) =>
      one(
        "INSERT INTO tokens (id, name, user_id, hash, create_time, last_use_time, expire_time) VALUES (?, ?, ?, ?, ?, ?, ?)",
        t.id,
        t.name,
        t.userId,
        t.hash,
        t.createTime,
        t.lastUseTime,
        t.expireTime,
      ),
  },
  organizations: {
    table: "organizations",
    select: `SELECT o.*, (SELECT json_group_array(json_object('userId', m.user_id, 'role', m.role))
               FROM (SELECT * FROM organization_members WHERE organization_id = o.id ORDER BY user_id) m) AS members
             FROM organizations o ORDER BY o.name`,
    fromRow: (r) => ({
      id: r.id as string,
      name: r.name as string,
      createTime: r.create_time as number,
      members: JSON.parse(r.members as string),
    }),
    insert: (o) => [
      ["INSERT INTO organizations (id, name, create_time) VALUES (?, ?, ?)", [o.id, o.name, o.createTime]],
      ...o.members.map((m): [string, unknown[]] => [
        "INSERT INTO organization_members (organization_id, user_id, role) VALUES (?, ?, ?)",
        [o.id, m.userId, m.role],
      ]),
    ],
  },
  nodes: {
    table: "nodes",
    select: "SELECT * FROM nodes ORDER BY create_time, id",
    fromRow: (r) => ({
      id: r.id as string,
      name: r.name as string,
      hostname: r.hostname as string,
      credentialHash: r.credential_hash as string,
      draining: bool(r.draining),
      labels: JSON.parse(r.labels as string),
      queues: JSON.parse(r.queues as string),
      executors: JSON.parse(r.executors as string),
      capacity: r.capacity as number,
      agentVersion: r.agent_version as string,
      createTime: r.create_time as number,
      connectTime: r.connect_time as number,
      lastHeartbeatTime: r.last_heartbeat_time as number,
    }),
    insert: (n) =>
      one(
        `INSERT INTO nodes (id, name, hostname, credential_hash, draining, labels, queues, executors, capacity,
           agent_version, create_time, connect_time, last_heartbeat_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        n.id,
        n.name,
        n.hostname,
        n.credentialHash,
        n.draining ? 1 : 0,
        json(n.labels),
        json(n.queues),
        json(n.executors),
        n.capacity,
        n.agentVersion,
        n.createTime,
        n.connectTime,
        n.lastHeartbeatTime,
      ),
  },
  registrationTokens: {
    table: "registration_tokens",
    select: "SELECT * FROM registration_tokens ORDER BY create_time, id",
    fromRow: (r) => ({
      id: r.id as string,
      description: r.description as string,
      hash: r.hash as string,
      createTime: r.create_time as number,
      expireTime: r.expire_time as number,
      revoked: bool(r.revoked),
    }),
    insert: (t) =>
      one(
        "INSERT INTO registration_tokens (id, description, hash, create_time, expire_time, revoked) VALUES (?, ?, ?, ?, ?, ?)",
        t.id,
        t.description,
        t.hash,
        t.createTime,
        t.expireTime,
        t.revoked ? 1 : 0,
      ),
  },
  tasks: {
    table: "tasks",
    select: "SELECT * FROM tasks ORDER BY seq",
    fromRow: (r) => ({
      id: r.id as string,
      seq: r.seq as number,
      definition: JSON.parse(r.definition as string),
      queue: r.queue as string,
      targetNode: r.target_node as string,
      status: r.status as ArchiveRecords["tasks"]["status"],
      result: r.result as ArchiveRecords["tasks"]["result"],
      exitCode: r.exit_code as number | null,
      error: r.error as string,
      ownerId: r.owner_id as string,
      pipelineId: r.pipeline_id as string,
      nodeId: r.node_id as string,
      attempt: r.attempt as number,
      leaseId: r.lease_id as string,
      leaseExpireTime: r.lease_expire_time as number,
      infraFailures: r.infra_failures as number,
      scriptRetries: r.script_retries as number,
      logSize: r.log_size as number,
      notBefore: r.not_before as number,
      createTime: r.create_time as number,
      startTime: r.start_time as number | null,
      endTime: r.end_time as number | null,
      updateTime: r.update_time as number,
    }),
    insert: (t) =>
      one(
        `INSERT INTO tasks (seq, id, definition, type, queue, target_node, status, result, exit_code, error, owner_id,
           pipeline_id, node_id, attempt, lease_id, lease_expire_time, infra_failures, script_retries, log_size,
           not_before, create_time, start_time, end_time, update_time)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        t.seq,
        t.id,
        json(t.definition),
        t.definition.type,
        t.queue,
        t.targetNode,
        t.status,
        t.result,
        t.exitCode,
        t.error,
        t.ownerId,
        t.pipelineId,
        t.nodeId,
        t.attempt,
        t.leaseId,
        t.leaseExpireTime,
        t.infraFailures,
        t.scriptRetries,
        t.logSize,
        t.notBefore,
        t.createTime,
        t.startTime,
        t.endTime,
        t.updateTime,
      ),
  },
  attempts: {
    table: "task_attempts",
    select: "SELECT a.* FROM task_attempts a JOIN tasks t ON t.id = a.task_id ORDER BY t.seq, a.number",
    fromRow: (r) => ({
      taskId: r.task_id as string,
      number: r.number as number,
      nodeId: r.node_id as string,
      leaseId: r.lease_id as string,
      status: r.status as ArchiveRecords["attempts"]["status"],
      result: r.result as ArchiveRecords["attempts"]["result"],
      exitCode: r.exit_code as number | null,
      error: r.error as string,
      logBase: r.log_base as number,
      startTime: r.start_time as number,
      endTime: r.end_time as number | null,
      tokenHash: r.token_hash as string,
    }),
    insert: (a) =>
      one(
        `INSERT INTO task_attempts (task_id, number, node_id, lease_id, status, result, exit_code, error, log_base,
           start_time, end_time, token_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        a.taskId,
        a.number,
        a.nodeId,
        a.leaseId,
        a.status,
        a.result,
        a.exitCode,
        a.error,
        a.logBase,
        a.startTime,
        a.endTime,
        a.tokenHash,
      ),
  },
  logSegments: {
    table: "log_segments",
    select: "SELECT * FROM log_segments ORDER BY task_id, start",
    fromRow: (r) => ({
      taskId: r.task_id as string,
      start: r.start as number,
      length: r.length as number,
      sha256: r.sha256 as string,
    }),
    insert: (s) =>
      one("INSERT INTO log_segments (task_id, start, length, sha256) VALUES (?, ?, ?, ?)", s.taskId, s.start, s.length, s.sha256),
  },
  artefacts: {
    table: "artefacts",
    select: "SELECT * FROM artefacts ORDER BY task_id, path",
    fromRow: (r) => ({
      taskId: r.task_id as string,
      path: r.path as string,
      size: r.size as number,
      sha256: r.sha256 as string,
      createTime: r.create_time as number,
    }),
    insert: (a) =>
      one(
        "INSERT INTO artefacts (task_id, path, size, sha256, create_time) VALUES (?, ?, ?, ?, ?)",
        a.taskId,
        a.path,
        a.size,
        a.sha256,
        a.createTime,
      ),
  },
  events: {
    table: "events",
    select: "SELECT * FROM events ORDER BY sequence",
    fromRow: (r) => ({
      sequence: r.sequence as number,
      time: r.time as number,
      type: r.type as string,
      subjectId: r.subject_id as string,
      payloadKind: r.payload_kind as string,
      payload: JSON.parse(r.payload as string),
      attributes: JSON.parse(r.attributes as string),
    }),
    insert: (e) =>
      one(
        "INSERT INTO events (sequence, time, type, subject_id, payload_kind, payload, attributes) VALUES (?, ?, ?, ?, ?, ?, ?)",
        e.sequence,
        e.time,
        e.type,
        e.subjectId,
        e.payloadKind,
        json(e.payload ?? null),
        json(e.attributes),
      ),
  },
  storages: {
    table: "storages",
    select: "SELECT * FROM storages ORDER BY name",
    fromRow: (r) => ({
      id: r.id as string,
      name: r.name as string,
      ownerId: r.owner_id as string,
      createTime: r.create_time as number,
    }),
    insert: (s) =>
      one("INSERT INTO storages (id, name, owner_id, create_time) VALUES (?, ?, ?, ?)", s.id, s.name, s.ownerId, s.createTime),
  },
  storageFiles: {
    table: "storage_files",
    select: "SELECT * FROM storage_files ORDER BY storage_id, path",
    fromRow: (r) => ({
      storageId: r.storage_id as string,
      path: r.path as string,
      size: r.size as number,
      sha256: r.sha256 as string,
      createTime: r.create_time as number,
    }),
    insert: (f) =>
      one(
        "INSERT INTO storage_files (storage_id, path, size, sha256, create_time) VALUES (?, ?, ?, ?, ?)",
        f.storageId,
        f.path,
        f.size,
        f.sha256,
        f.createTime,
      ),
  },
  namespaces: {
    table: "namespaces",
    select: "SELECT * FROM namespaces ORDER BY name",
    fromRow: (r) => ({
      name: r.name as string,
      ownerId: r.owner_id as string,
      organizationId: r.organization_id as string,
      visibility: r.visibility as ArchiveRecords["namespaces"]["visibility"],
      headRevision: r.head_revision as number,
      createTime: r.create_time as number,
    }),
    insert: (n) =>
      one(
        "INSERT INTO namespaces (name, owner_id, organization_id, visibility, head_revision, create_time) VALUES (?, ?, ?, ?, ?, ?)",
        n.name,
        n.ownerId,
        n.organizationId,
        n.visibility,
        n.headRevision,
        n.createTime,
      ),
  },
  namespaceRevisions: {
    table: "namespace_revisions",
    select: "SELECT * FROM namespace_revisions ORDER BY namespace, number",
    fromRow: (r) => ({
      namespace: r.namespace as string,
      number: r.number as number,
      parent: r.parent as number,
      fileCount: r.file_count as number,
      totalSize: r.total_size as number,
      taskId: r.task_id as string,
      message: r.message as string,
      creatorId: r.creator_id as string,
      createTime: r.create_time as number,
    }),
    insert: (v) =>
      one(
        `INSERT INTO namespace_revisions (namespace, number, parent, file_count, total_size, task_id, message, creator_id,
           create_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        v.namespace,
        v.number,
        v.parent,
        v.fileCount,
        v.totalSize,
        v.taskId,
        v.message,
        v.creatorId,
        v.createTime,
      ),
  },
  namespaceEntries: {
    table: "namespace_entries",
    select: "SELECT * FROM namespace_entries ORDER BY namespace, path, from_revision",
    fromRow: (r) => ({
      namespace: r.namespace as string,
      path: r.path as string,
      fromRevision: r.from_revision as number,
      toRevision: r.to_revision as number | null,
      size: r.size as number,
      sha256: r.sha256 as string,
    }),
    insert: (e) =>
      one(
        "INSERT INTO namespace_entries (namespace, path, from_revision, to_revision, size, sha256) VALUES (?, ?, ?, ?, ?, ?)",
        e.namespace,
        e.path,
        e.fromRevision,
        e.toRevision,
        e.size,
        e.sha256,
      ),
  },
  namespaceTags: {
    table: "namespace_tags",
    select: "SELECT * FROM namespace_tags ORDER BY namespace, name",
    fromRow: (r) => ({
      namespace: r.namespace as string,
      name: r.name as string,
      revision: r.revision as number,
      updateTime: r.update_time as number,
    }),
    insert: (t) =>
      one(
        "INSERT INTO namespace_tags (namespace, name, revision, update_time) VALUES (?, ?, ?, ?)",
        t.namespace,
        t.name,
        t.revision,
        t.updateTime,
      ),
  },
  publishers: {
    table: "namespace_publishers",
    select: "SELECT * FROM namespace_publishers ORDER BY create_time, id",
    fromRow: (r) => ({
      id: r.id as string,
      namespace: r.namespace as string,
      kind: r.kind as ArchiveRecords["publishers"]["kind"],
      target: r.target as string,
      branch: r.branch as string,
      tag: r.tag as string,
      creatorId: r.creator_id as string,
      createTime: r.create_time as number,
    }),
    insert: (p) =>
      one(
        `INSERT INTO namespace_publishers (id, namespace, kind, target, branch, tag, creator_id, create_time)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        p.id,
        p.namespace,
        p.kind,
        p.target,
        p.branch,
        p.tag,
        p.creatorId,
        p.createTime,
      ),
  },
  deliveries: {
    table: "deliveries",
    select: "SELECT * FROM deliveries ORDER BY seq",
    fromRow: (r) => ({
      id: r.id as string,
      seq: r.seq as number,
      publisherId: r.publisher_id as string,
      namespace: r.namespace as string,
      revision: r.revision as number,
      tag: r.tag as string,
      state: r.state as ArchiveRecords["deliveries"]["state"],
      attempts: r.attempts as number,
      error: r.error as string,
      nextAttemptTime: r.next_attempt_time as number,
      createTime: r.create_time as number,
      updateTime: r.update_time as number,
    }),
    insert: (d) =>
      one(
        `INSERT INTO deliveries (seq, id, publisher_id, namespace, revision, tag, state, attempts, error, next_attempt_time,
           create_time, update_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        d.seq,
        d.id,
        d.publisherId,
        d.namespace,
        d.revision,
        d.tag,
        d.state,
        d.attempts,
        d.error,
        d.nextAttemptTime,
        d.createTime,
        d.updateTime,
      ),
  },
  deliveryCursor: {
    table: "delivery_cursor",
    select: "SELECT event_sequence FROM delivery_cursor WHERE id = 1",
    fromRow: (r) => ({ eventSequence: r.event_sequence as number }),
    insert: (c) => one("INSERT INTO delivery_cursor (id, event_sequence) VALUES (1, ?)", c.eventSequence),
  },
  plans: {
    table: "plans",
    select: "SELECT * FROM plans ORDER BY id",
    fromRow: (r) => ({
      id: r.id as string,
      ownerId: r.owner_id as string,
      definition: JSON.parse(r.definition as string) as ArchiveRecords["plans"]["definition"],
      paused: bool(r.paused),
      nextRunTime: r.next_run_time as number | null,
      createTime: r.create_time as number,
      updateTime: r.update_time as number,
    }),
    insert: (p) =>
      one(
        `INSERT INTO plans (id, owner_id, definition, paused, next_run_time, create_time, update_time)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
        p.id,
        p.ownerId,
        json(p.definition),
        p.paused ? 1 : 0,
        p.nextRunTime,
        p.createTime,
        p.updateTime,
      ),
  },
  planRuns: {
    table: "plan_runs",
    select: "SELECT * FROM plan_runs ORDER BY plan_id, fire_time, key",
    fromRow: (r) => ({
      key: r.key as string,
      planId: r.plan_id as string,
      scheduledTime: r.scheduled_time as number,
      fireTime: r.fire_time as number,
      kind: r.kind as ArchiveRecords["planRuns"]["kind"],
      targetId: r.target_id as string,
      manual: bool(r.manual),
      launched: bool(r.launched),
    }),
    insert: (r) =>
      one(
        `INSERT INTO plan_runs (key, plan_id, scheduled_time, fire_time, kind, target_id, manual, launched)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        r.key,
        r.planId,
        r.scheduledTime,
        r.fireTime,
        r.kind,
        r.targetId,
        r.manual ? 1 : 0,
        r.launched ? 1 : 0,
      ),
  },
  sequences: {
    table: "sqlite_sequence",
    select: "SELECT name, seq FROM sqlite_sequence WHERE name IN ('tasks', 'events', 'deliveries') ORDER BY name",
    fromRow: (r) => ({ name: r.name as SequenceName, value: r.seq as number }),
    // AUTOINCREMENT already moved sqlite_sequence to the largest inserted key; keep the larger value.
    insert: (s) => [
      [
        "INSERT INTO sqlite_sequence (name, seq) SELECT ?, 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?)",
        [s.name, s.name],
      ],
      ["UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", [s.value, s.name]],
    ],
  },
};

/**
 * StoreArchive on the SQLite database at path (migrated to the current schema first). With
 * mustExist an absent file is an error instead of a new, empty database (export of a data
 * directory that was never used). Reads run in one read transaction, so an export of a running
 * server is a consistent snapshot; writeAll is one transaction with deferred foreign keys.
 */
export function openSqliteArchive(path: string, options: { mustExist?: boolean } = {}): StoreArchive {
  if (options.mustExist && !existsSync(path)) throw new Error(`no SQLite database at ${path}`);
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  migrate(db);
  let snapshot = false;
  return {
    async nonEmpty() {
      return ARCHIVE_KINDS.filter((kind) => {
        const table = MAPPINGS[kind].table;
        if (table === "sqlite_sequence") {
          return (db.prepare("SELECT COUNT(*) AS n FROM sqlite_sequence WHERE seq > 0").get() as { n: number }).n > 0;
        }
        return db.prepare(`SELECT 1 FROM ${table} LIMIT 1`).get() !== undefined;
      });
    },
    async *read<K extends ArchiveKind>(kind: K): AsyncIterable<ArchiveRecords[K]> {
      if (!snapshot) {
        db.exec("BEGIN");
        snapshot = true;
      }
      const mapping = MAPPINGS[kind] as KindMapping<K>;
      for (const row of db.prepare(mapping.select).iterate() as IterableIterator<Row>) yield mapping.fromRow(row);
    },
    async writeAll(source: ArchiveSource) {
      db.pragma("defer_foreign_keys = ON");
      db.exec("BEGIN IMMEDIATE");
      try {
        for (const kind of ARCHIVE_KINDS) await writeKind(db, kind, source);
        const broken = db.prepare("PRAGMA foreign_key_check").all() as { table: string; parent: string }[];
        if (broken.length > 0) {
          const first = broken[0] as { table: string; parent: string };
          throw new Error(
            `${broken.length} imported rows refer to missing records (first: a row of ${first.table} names a missing ${first.parent} row)`,
          );
        }
        db.exec("COMMIT");
      } catch (err) {
        db.exec("ROLLBACK");
        throw err;
      }
    },
    async close() {
      if (snapshot) db.exec("COMMIT");
      db.close();
    },
  };
}

async function writeKind<K extends ArchiveKind>(db: Database.Database, kind: K, source: ArchiveSource): Promise<void> {
  const mapping = MAPPINGS[kind] as KindMapping<K>;
  const statements = new Map<string, Database.Statement>();
  let n = 0;
  for await (const record of source(kind)) {
    n++;
    for (const [sql, params] of mapping.insert(record)) {
      let statement = statements.get(sql);
      if (!statement) {
        statement = db.prepare(sql);
        statements.set(sql, statement);
      }
      try {
        statement.run(...params);
      } catch (err) {
        throw new Error(`importing ${kind} record ${n}: ${(err as Error).message}`, { cause: err });
      }
    }
  }
}
