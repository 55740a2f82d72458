import type { Database, Statement } from "better-sqlite3";

const caches = new WeakMap<Database, Map<string, Statement>>();

/**
 * The prepared statement for sql on db, compiled on first use and reused after (preparing costs
 * more than running most of our statements). Keyed by the exact text, so callers that build SQL
 * must only vary it in a bounded way (e.g. the number of placeholders).
 */
export function prepared(db: Database, sql: string): Statement {
  let cache = caches.get(db);
  if (!cache) {
    cache = new Map();
    caches.set(db, cache);
  }
  let statement = cache.get(sql);
  if (!statement) {
    statement = db.prepare(sql);
    cache.set(sql, statement);
  }
  return statement;
}
