import type { Database } from "better-sqlite3";

/**
 * Numbered schema migrations. Each runs once, in order, inside a transaction, and the schema's
 * user_version records the last one applied. Append new migrations; never edit a released one.
 */
const MIGRATIONS: readonly string[] = [
  // 1: users, tokens, nodes, registration tokens, tasks, attempts, events, settings.
  `
  CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    create_time INTEGER NOT NULL
  );
  CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    hash TEXT NOT NULL UNIQUE,
    create_time INTEGER NOT NULL,
    last_use_time INTEGER NOT NULL,
    expire_time INTEGER NOT NULL
  );
  CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    hostname TEXT NOT NULL,
    credential_hash TEXT NOT NULL UNIQUE,
    draining INTEGER NOT NULL,
    labels TEXT NOT NULL,
    queues TEXT NOT NULL,
    executors TEXT NOT NULL,
    capacity INTEGER NOT NULL,
    agent_version TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    connect_time INTEGER NOT NULL,
    last_heartbeat_time INTEGER NOT NULL
  );
  CREATE TABLE registration_tokens (
    id TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    create_time INTEGER NOT NULL,
    expire_time INTEGER NOT NULL,
    revoked INTEGER NOT NULL
  );
  CREATE TABLE tasks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    definition TEXT NOT NULL,
    queue TEXT NOT NULL,
    target_node TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT NOT NULL,
    exit_code INTEGER,
    error TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    pipeline_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    lease_id TEXT NOT NULL,
    lease_expire_time INTEGER NOT NULL,
    infra_failures INTEGER NOT NULL,
    script_retries INTEGER NOT NULL,
    log_size INTEGER NOT NULL,
    not_before INTEGER NOT NULL,
    create_time INTEGER NOT NULL,
    start_time INTEGER,
    end_time INTEGER,
    update_time INTEGER NOT NULL
  );
  CREATE INDEX tasks_waiting ON tasks (status, seq);
  CREATE INDEX tasks_owner ON tasks (owner_id, seq);
  CREATE INDEX tasks_node ON tasks (node_id, status);
  CREATE TABLE task_attempts (
    task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    node_id TEXT NOT NULL,
    lease_id TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT NOT NULL,
    exit_code INTEGER,
    error TEXT NOT NULL,
    log_base INTEGER NOT NULL,
    start_time INTEGER NOT NULL,
    end_time INTEGER,
    PRIMARY KEY (task_id, number)
  );
  CREATE TABLE events (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
    time INTEGER NOT NULL,
    type TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    payload_kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    attributes TEXT NOT NULL
  );
  CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  `,
  // 2: the task type as a column, so dispatch can select only tasks some agent can run.
  `
  ALTER TABLE tasks ADD COLUMN type TEXT NOT NULL DEFAULT '';
  UPDATE tasks SET type = json_extract(definition, '$.type');
  CREATE INDEX tasks_dispatch ON tasks (status, queue, type, owner_id, seq);
  `,
  // 3: sealed task log segments (the bytes live in the blob store).
  `
  CREATE TABLE log_segments (
    task_id TEXT NOT NULL,
    start INTEGER NOT NULL,
    length INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (task_id, start)
  );
  CREATE INDEX log_segments_blob ON log_segments (sha256);
  `,
];

/** Applies the migrations the database has not seen yet; returns the resulting version. */
export function migrate(db: Database): number {
  const current = db.pragma("user_version", { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(
      `database schema version ${current} is newer than this server knows (${MIGRATIONS.length}); upgrade the server`,
    );
  }
  for (let version = current; version < MIGRATIONS.length; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version] ?? "");
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
  return MIGRATIONS.length;
}
