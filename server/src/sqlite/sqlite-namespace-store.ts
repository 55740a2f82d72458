import type { Database } from "better-sqlite3";
import {
  diffFileRanges,
  type NamespaceDiff,
  type NamespaceFileRecord,
  type NamespaceRecord,
  type NamespaceRevisionRecord,
  type NamespaceStore,
  type NamespaceTagRecord,
  type RevisionCommit,
} from "../store/namespace-store.js";
import type { GroupCommit } from "./group-commit.js";
import { prepared } from "./statement-cache.js";

interface NamespaceRow {
  name: string;
  owner_id: string;
  organization_id: string;
  visibility: NamespaceRecord["visibility"];
  head_revision: number;
  create_time: number;
}

interface RevisionRow {
  namespace: string;
  number: number;
  parent: number;
  file_count: number;
  total_size: number;
  task_id: string;
  message: string;
  creator_id: string;
  create_time: number;
}

interface RangeRow extends NamespaceFileRecord {
  from_revision: number;
  to_revision: number | null;
}

const toNamespace = (r: NamespaceRow): NamespaceRecord => ({
  name: r.name,
  ownerId: r.owner_id,
  organizationId: r.organization_id,
  visibility: r.visibility,
  headRevision: r.head_revision,
  createTime: r.create_time,
});

const toRevision = (r: RevisionRow): NamespaceRevisionRecord => ({
  namespace: r.namespace,
  number: r.number,
  parent: r.parent,
  fileCount: r.file_count,
  totalSize: r.total_size,
  taskId: r.task_id,
  message: r.message,
  creatorId: r.creator_id,
  createTime: r.create_time,
});

const FILE_COLUMNS = "path, size, sha256";
/** Rows whose range [from_revision, to_revision) holds revision @rev. */
const VALID_AT = "from_revision <= @rev AND (to_revision IS NULL OR to_revision > @rev)";

const isConstraint = (err: unknown) => String((err as { code?: string }).code).startsWith("SQLITE_CONSTRAINT");

/** Thrown inside a transaction to roll it back when a compare-and-set lost. */
class CommitConflict extends Error {}

/** NamespaceStore on SQLite: files as revision ranges in namespace_entries (migration 5). */
export class SqliteNamespaceStore implements NamespaceStore {
  constructor(
    private readonly db: Database,
    private readonly writes: GroupCommit,
  ) {}

  async create(ns: NamespaceRecord): Promise<boolean> {
    try {
      await this.writes.write(() => this.insertNamespace(ns));
      return true;
    } catch (err) {
      if (isConstraint(err)) return false;
      throw err;
    }
  }

  private insertNamespace(ns: NamespaceRecord): void {
    prepared(
      this.db,
      "INSERT INTO namespaces (name, owner_id, organization_id, visibility, head_revision, create_time) VALUES (?, ?, ?, ?, ?, ?)",
    ).run(ns.name, ns.ownerId, ns.organizationId, ns.visibility, ns.headRevision, ns.createTime);
  }

  async get(name: string): Promise<NamespaceRecord | undefined> {
    const row = prepared(this.db, "SELECT * FROM namespaces WHERE name = ?").get(name) as NamespaceRow | undefined;
    return row && toNamespace(row);
  }

  async list(): Promise<NamespaceRecord[]> {
    return (prepared(this.db, "SELECT * FROM namespaces ORDER BY name").all() as NamespaceRow[]).map(toNamespace);
  }

  async update(
    name: string,
    fields: Pick<NamespaceRecord, "visibility" | "organizationId">,
  ): Promise<NamespaceRecord | undefined> {
    return this.writes.write(() => {
      const row = prepared(this.db, "UPDATE namespaces SET visibility = ?, organization_id = ? WHERE name = ? RETURNING *").get(
        fields.visibility,
        fields.organizationId,
        name,
      ) as NamespaceRow | undefined;
      return row && toNamespace(row);
    });
  }

  async delete(name: string): Promise<boolean> {
    return this.writes.write(() => {
      return prepared(this.db, "DELETE FROM namespaces WHERE name = ?").run(name).changes > 0;
    });
  }

  async listRevisions(name: string): Promise<NamespaceRevisionRecord[]> {
    const rows = prepared(this.db, "SELECT * FROM namespace_revisions WHERE namespace = ? ORDER BY number DESC").all(name);
    return (rows as RevisionRow[]).map(toRevision);
  }

  async getRevision(name: string, number: number): Promise<NamespaceRevisionRecord | undefined> {
    const row = prepared(this.db, "SELECT * FROM namespace_revisions WHERE namespace = ? AND number = ?").get(name, number) as
      RevisionRow | undefined;
    return row && toRevision(row);
  }

  async commitRevision(c: RevisionCommit): Promise<NamespaceRevisionRecord | undefined> {
    const number = c.head + 1;
    try {
      return await this.writes.write((): NamespaceRevisionRecord => {
        const moved = prepared(
          this.db,
          "UPDATE namespaces SET head_revision = @number WHERE name = @namespace AND head_revision = @head",
        ).run({ number, namespace: c.namespace, head: c.head });
        if (moved.changes === 0) throw new CommitConflict();
        const previous =
          c.head === 0
            ? undefined
            : (prepared(this.db, "SELECT file_count, total_size FROM namespace_revisions WHERE namespace = ? AND number = ?").get(
                c.namespace,
                c.head,
              ) as { file_count: number; total_size: number } | undefined);
        let fileCount = previous?.file_count ?? 0;
        let totalSize = previous?.total_size ?? 0;
        const close = prepared(
          this.db,
          "UPDATE namespace_entries SET to_revision = @number WHERE namespace = @namespace AND path = @path AND to_revision IS NULL RETURNING size",
        );
        const closePath = (path: string) => {
          const old = close.get({ number, namespace: c.namespace, path }) as { size: number } | undefined;
          if (old) {
            fileCount--;
            totalSize -= old.size;
          }
        };
        for (const path of c.remove) closePath(path);
        const insert = prepared(
          this.db,
          "INSERT INTO namespace_entries (namespace, path, from_revision, to_revision, size, sha256) VALUES (?, ?, ?, NULL, ?, ?)",
        );
        for (const file of c.put) {
          closePath(file.path);
          insert.run(c.namespace, file.path, number, file.size, file.sha256);
          fileCount++;
          totalSize += file.size;
        }
        const revision: NamespaceRevisionRecord = {
          namespace: c.namespace,
          number,
          parent: c.parent,
          fileCount,
          totalSize,
          taskId: c.taskId,
          message: c.message,
          creatorId: c.creatorId,
          createTime: c.now,
        };
        this.insertRevision(revision);
        this.upsertTag(c.namespace, c.tag, number, c.now);
        return revision;
      });
    } catch (err) {
      // A lost compare-and-set, or another process that inserted the same revision number.
      if (err instanceof CommitConflict || isConstraint(err)) return undefined;
      throw err;
    }
  }

  private insertRevision(r: NamespaceRevisionRecord): void {
    prepared(
      this.db,
      "INSERT INTO namespace_revisions (namespace, number, parent, file_count, total_size, task_id, message, creator_id, create_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ).run(r.namespace, r.number, r.parent, r.fileCount, r.totalSize, r.taskId, r.message, r.creatorId, r.createTime);
  }

  private upsertTag(namespace: string, tag: string, revision: number, now: number): void {
    prepared(
      this.db,
      "INSERT INTO namespace_tags (namespace, name, revision, update_time) VALUES (?, ?, ?, ?) ON CONFLICT (namespace, name) DO UPDATE SET revision = excluded.revision, update_time = excluded.update_time",
    ).run(namespace, tag, revision, now);
  }

  async clone(
    fromName: string,
    fromRevision: number,
    to: NamespaceRecord,
    meta: Omit<NamespaceRevisionRecord, "namespace" | "number" | "parent" | "fileCount" | "totalSize">,
    tag: string,
  ): Promise<NamespaceRevisionRecord | undefined> {
    try {
      return await this.writes.write((): NamespaceRevisionRecord => {
        this.insertNamespace({ ...to, headRevision: 1 });
        prepared(
          this.db,
          `INSERT INTO namespace_entries (namespace, path, from_revision, to_revision, size, sha256)
           SELECT @to, path, 1, NULL, size, sha256 FROM namespace_entries WHERE namespace = @from AND ${VALID_AT}`,
        ).run({ to: to.name, from: fromName, rev: fromRevision });
        const stats = prepared(
          this.db,
          "SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS total FROM namespace_entries WHERE namespace = ? AND to_revision IS NULL",
        ).get(to.name) as { n: number; total: number };
        const revision: NamespaceRevisionRecord = {
          ...meta,
          namespace: to.name,
          number: 1,
          parent: 0,
          fileCount: stats.n,
          totalSize: stats.total,
        };
        this.insertRevision(revision);
        this.upsertTag(to.name, tag, 1, meta.createTime);
        return revision;
      });
    } catch (err) {
      if (isConstraint(err)) return undefined;
      throw err;
    }
  }

  async listFiles(name: string, revision: number, prefix = ""): Promise<NamespaceFileRecord[]> {
    const head = prepared(this.db, "SELECT head_revision FROM namespaces WHERE name = ?").get(name) as
      { head_revision: number } | undefined;
    if (!head || revision < 1 || revision > head.head_revision) return [];
    // The newest revision reads the open ranges through their own index; older ones filter.
    const where = revision === head.head_revision ? "to_revision IS NULL" : VALID_AT;
    const byPrefix = prefix ? "AND path >= @prefix AND substr(path, 1, length(@prefix)) = @prefix" : "";
    return prepared(
      this.db,
      `SELECT ${FILE_COLUMNS} FROM namespace_entries WHERE namespace = @name AND ${where} ${byPrefix} ORDER BY path`,
    ).all({ name, rev: revision, ...(prefix ? { prefix } : {}) }) as NamespaceFileRecord[];
  }

  async getFiles(name: string, revision: number, paths: readonly string[]): Promise<NamespaceFileRecord[]> {
    const statement = prepared(
      this.db,
      `SELECT ${FILE_COLUMNS} FROM namespace_entries WHERE namespace = @name AND path = @path AND ${VALID_AT}`,
    );
    const files: NamespaceFileRecord[] = [];
    for (const path of paths) {
      const file = statement.get({ name, path, rev: revision }) as NamespaceFileRecord | undefined;
      if (file) files.push(file);
    }
    return files;
  }

  async diff(name: string, from: number, to: number): Promise<NamespaceDiff> {
    const diff: NamespaceDiff = { added: [], removed: [], changed: [] };
    if (from === to) return diff;
    const low = Math.min(from, to);
    const high = Math.max(from, to);
    // Only paths whose range starts or ends in (low, high] can differ; read their rows that
    // overlap [low, high] and compare the one valid at each end.
    const rows = prepared(
      this.db,
      `SELECT path, size, sha256, from_revision, to_revision FROM namespace_entries
       WHERE namespace = @name AND from_revision <= @high AND (to_revision IS NULL OR to_revision > @low)
         AND path IN (
           SELECT path FROM namespace_entries WHERE namespace = @name AND from_revision > @low AND from_revision <= @high
           UNION
           SELECT path FROM namespace_entries WHERE namespace = @name AND to_revision > @low AND to_revision <= @high)
       ORDER BY path, from_revision`,
    ).all({ name, low, high }) as RangeRow[];
    return diffFileRanges(
      rows.map((r) => ({
        path: r.path,
        size: r.size,
        sha256: r.sha256,
        fromRevision: r.from_revision,
        toRevision: r.to_revision,
      })),
      from,
      to,
    );
  }

  async listTags(name: string): Promise<NamespaceTagRecord[]> {
    return prepared(
      this.db,
      "SELECT name, revision, update_time AS updateTime FROM namespace_tags WHERE namespace = ? ORDER BY name",
    ).all(name) as NamespaceTagRecord[];
  }

  async getTag(name: string, tag: string): Promise<NamespaceTagRecord | undefined> {
    return prepared(
      this.db,
      "SELECT name, revision, update_time AS updateTime FROM namespace_tags WHERE namespace = ? AND name = ?",
    ).get(name, tag) as NamespaceTagRecord | undefined;
  }

  async setTag(name: string, tag: string, revision: number, now: number): Promise<boolean> {
    return this.writes.write(() => {
      if (!prepared(this.db, "SELECT 1 FROM namespace_revisions WHERE namespace = ? AND number = ?").get(name, revision)) {
        return false;
      }
      this.upsertTag(name, tag, revision, now);
      return true;
    });
  }

  async deleteTag(name: string, tag: string): Promise<boolean> {
    return this.writes.write(() => {
      return prepared(this.db, "DELETE FROM namespace_tags WHERE namespace = ? AND name = ?").run(name, tag).changes > 0;
    });
  }
}
