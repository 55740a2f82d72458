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
  // 4: task artefacts, storages, and each attempt's task token (sha256 of the secret).
  `
  CREATE TABLE artefacts (
    task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    PRIMARY KEY (task_id, path)
  );
  CREATE INDEX artefacts_blob ON artefacts (sha256);
  CREATE TABLE storages (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    owner_id TEXT NOT NULL,
    create_time INTEGER NOT NULL
  );
  CREATE TABLE storage_files (
    storage_id TEXT NOT NULL REFERENCES storages(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    PRIMARY KEY (storage_id, path)
  );
  CREATE INDEX storage_files_blob ON storage_files (sha256);
  ALTER TABLE task_attempts ADD COLUMN token_hash TEXT NOT NULL DEFAULT '';
  CREATE INDEX task_attempts_token ON task_attempts (token_hash) WHERE token_hash != '';
  `,
  // 5: organizations and versioned namespaces. A namespace file's content is valid in revisions
  // [from_revision, to_revision); to_revision NULL means it is still in the newest revision, so a
  // publish writes only the paths it changes.
  `
  CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    create_time INTEGER NOT NULL
  );
  CREATE TABLE organization_members (
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    PRIMARY KEY (organization_id, user_id)
  );
  CREATE INDEX organization_members_user ON organization_members (user_id);
  CREATE TABLE namespaces (
    name TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    visibility TEXT NOT NULL,
    head_revision INTEGER NOT NULL,
    create_time INTEGER NOT NULL
  );
  CREATE TABLE namespace_revisions (
    namespace TEXT NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    parent INTEGER NOT NULL,
    file_count INTEGER NOT NULL,
    total_size INTEGER NOT NULL,
    task_id TEXT NOT NULL,
    message TEXT NOT NULL,
    creator_id TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    PRIMARY KEY (namespace, number)
  );
  CREATE TABLE namespace_entries (
    namespace TEXT NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE,
    path TEXT NOT NULL,
    from_revision INTEGER NOT NULL,
    to_revision INTEGER,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (namespace, path, from_revision)
  );
  CREATE INDEX namespace_entries_head ON namespace_entries (namespace, to_revision, path);
  CREATE INDEX namespace_entries_from ON namespace_entries (namespace, from_revision);
  CREATE INDEX namespace_entries_blob ON namespace_entries (sha256);
  CREATE TABLE namespace_tags (
    namespace TEXT NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    revision INTEGER NOT NULL,
    update_time INTEGER NOT NULL,
    PRIMARY KEY (namespace, name)
  );
  `,
  // 6: namespace publishers and their persisted delivery queue (seq orders tag moves: the newest
  // wins), and the sequence of the last tag-move event the queue handled.
  `
  CREATE TABLE namespace_publishers (
    id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    branch TEXT NOT NULL,
    tag TEXT NOT NULL,
    creator_id TEXT NOT NULL,
    create_time INTEGER NOT NULL
  );
  CREATE INDEX namespace_publishers_tag ON namespace_publishers (namespace, tag);
  CREATE TABLE deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    publisher_id TEXT NOT NULL REFERENCES namespace_publishers(id) ON DELETE CASCADE,
    namespace TEXT NOT NULL,
    revision INTEGER NOT NULL,
    tag TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT NOT NULL,
    next_attempt_time INTEGER NOT NULL,
    create_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL
  );
  CREATE INDEX deliveries_due ON deliveries (state, next_attempt_time);
  CREATE INDEX deliveries_publisher ON deliveries (publisher_id, seq);
  CREATE INDEX deliveries_namespace ON deliveries (namespace, seq);
  CREATE TABLE delivery_cursor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    event_sequence INTEGER NOT NULL
  );
  `,
  // 7: finished tasks by end time, for the task retention.
  `
  CREATE INDEX tasks_finished ON tasks (status, end_time);
  `,
  // 8: pipelines and their members; a member row is claimed once per run (state 'pending' → other).
  `
  CREATE TABLE pipelines (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    owner_id TEXT NOT NULL,
    definition TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT NOT NULL,
    run INTEGER NOT NULL,
    create_time INTEGER NOT NULL,
    start_time INTEGER,
    end_time INTEGER,
    update_time INTEGER NOT NULL
  );
  CREATE INDEX pipelines_owner ON pipelines (owner_id, seq);
  CREATE INDEX pipelines_status ON pipelines (status, seq);
  CREATE TABLE pipeline_members (
    pipeline_id TEXT NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    position INTEGER NOT NULL,
    run INTEGER NOT NULL,
    state TEXT NOT NULL,
    task_id TEXT NOT NULL,
    result TEXT NOT NULL,
    start_time INTEGER,
    end_time INTEGER,
    PRIMARY KEY (pipeline_id, key)
  );
  CREATE TABLE pipeline_locks (
    pipeline_id TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expire_time INTEGER NOT NULL
  );
  `,
  // 9: plans and their firings; a firing's key (plan id + scheduled time) is claimed once.
  `
  CREATE TABLE plans (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    definition TEXT NOT NULL,
    paused INTEGER NOT NULL,
    next_run_time INTEGER,
    create_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL
  );
  CREATE INDEX plans_owner ON plans (owner_id, id);
  CREATE TABLE plan_runs (
    key TEXT PRIMARY KEY,
    plan_id TEXT NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
    scheduled_time INTEGER NOT NULL,
    fire_time INTEGER NOT NULL,
    kind TEXT NOT NULL,
    target_id TEXT NOT NULL,
    manual INTEGER NOT NULL,
    launched INTEGER NOT NULL
  );
  CREATE INDEX plan_runs_plan ON plan_runs (plan_id, fire_time);
  CREATE INDEX plan_runs_unlaunched ON plan_runs (launched, fire_time);
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
