import type { Database } from "better-sqlite3";
import type { BlobReferences } from "../store/blob-references.js";
import { prepared } from "./statement-cache.js";

/** Digests per query: well under SQLite's limit of host parameters, and a fixed statement text. */
const BATCH = 200;

const PLACEHOLDERS = Array.from({ length: BATCH }, () => "?").join(", ");

/**
 * The union of every table that names a blob: artefacts, storage_files, namespace_entries (all
 * revisions) and log_segments, each through its sha256 index. A short batch is padded with "",
 * which no table holds.
 */
const SQL = ["artefacts", "storage_files", "namespace_entries", "log_segments"]
  .map((table) => `SELECT sha256 FROM ${table} WHERE sha256 IN (${PLACEHOLDERS})`)
  .join(" UNION ");

/** BlobReferences on SQLite. */
export class SqliteBlobReferences implements BlobReferences {
  constructor(private readonly db: Database) {}

  async referenced(digests: readonly string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (let i = 0; i < digests.length; i += BATCH) {
      const batch = digests.slice(i, i + BATCH);
      const padded = [...batch, ...Array.from({ length: BATCH - batch.length }, () => "")];
      const params = [...padded, ...padded, ...padded, ...padded];
      for (const row of prepared(this.db, SQL).all(...params) as { sha256: string }[]) found.add(row.sha256);
    }
    return found;
  }
}
