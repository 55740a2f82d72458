import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, utimesSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import Database from "better-sqlite3";
import pino from "pino";
import { migrate } from "../sqlite/migrations.js";
import { SqliteBlobReferences } from "../sqlite/sqlite-blob-references.js";
import { BlobCollector } from "./blob-collector.js";
import { LocalBlobStore } from "./local-blob-store.js";

const HOUR = 3_600_000;
const logger = pino({ level: "silent" });
const sha = (text: string) => createHash("sha256").update(text).digest("hex");

describe("blob garbage collection", () => {
  let db: Database.Database;
  let references: SqliteBlobReferences;
  let dir: string;
  let blobs: LocalBlobStore;

  beforeEach(() => {
    db = new Database(":memory:");
    migrate(db);
    db.pragma("foreign_keys = OFF");
    references = new SqliteBlobReferences(db);
    dir = mkdtempSync(join(tmpdir(), "mottainai-gc-test-"));
    blobs = new LocalBlobStore(dir);
  });

  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const reference = (table: "artefacts" | "storage_files" | "namespace_entries" | "log_segments", digest: string) => {
    const sql = {
      artefacts: "INSERT INTO artefacts (task_id, path, size, sha256, create_time) VALUES ('t', ?, 1, ?, 1)",
      storage_files: "INSERT INTO storage_files (storage_id, path, size, sha256, create_time) VALUES ('s', ?, 1, ?, 1)",
      namespace_entries:
        "INSERT INTO namespace_entries (namespace, path, from_revision, to_revision, size, sha256) VALUES ('ns', ?, 1, 2, 1, ?)",
      log_segments: "INSERT INTO log_segments (task_id, start, length, sha256) VALUES (?, 0, 1, ?)",
    }[table];
    db.prepare(sql).run(`${table}-${digest}`, digest);
  };

  /** Puts content and sets its createTime (the file's mtime) to `ageMs` ago. */
  const put = async (content: string, ageMs: number) => {
    const info = await blobs.put(Readable.from([Buffer.from(content)]));
    const when = new Date(Date.now() - ageMs);
    utimesSync(await findBlobFile(dir, info.sha256), when, when);
    return info.sha256;
  };

  it("finds references in every table that names a blob, in batches of any size", async () => {
    const digests = Array.from({ length: 450 }, (_, i) => sha(`blob ${i}`));
    reference("artefacts", digests[0]!);
    reference("storage_files", digests[1]!);
    reference("namespace_entries", digests[2]!);
    reference("log_segments", digests[449]!);
    reference("artefacts", digests[449]!);
    const found = await references.referenced(digests);
    assert.deepEqual([...found].sort(), [digests[0], digests[1], digests[2], digests[449]].sort());
    assert.deepEqual([...(await references.referenced([]))], []);
  });

  it("deletes old unreferenced blobs and keeps referenced or young ones, reporting what it freed", async () => {
    const kept = {
      artefact: await put("an artefact", 48 * HOUR),
      storage: await put("a storage file", 48 * HOUR),
      namespace: await put("a file of an old namespace revision", 48 * HOUR),
      log: await put("a sealed log segment", 48 * HOUR),
      young: await put("just uploaded, not yet referenced", 1 * HOUR),
    };
    reference("artefacts", kept.artefact);
    reference("storage_files", kept.storage);
    reference("namespace_entries", kept.namespace);
    reference("log_segments", kept.log);
    const garbage = [await put("garbage one", 25 * HOUR), await put("garbage number two", 48 * HOUR)];

    const collector = new BlobCollector({ blobs, references, logger, retentionMs: 24 * HOUR });
    const result = await collector.collect();
    assert.deepEqual(result, {
      scanned: 7,
      deleted: 2,
      freedBytes: "garbage one".length + "garbage number two".length,
      referenced: 4,
      young: 1,
    });
    for (const digest of Object.values(kept)) assert.ok(await blobs.stat(digest), "kept");
    for (const digest of garbage) assert.equal(await blobs.stat(digest), undefined, "deleted");

    const again = await collector.collect();
    assert.equal(again.deleted, 0, "a second run finds nothing more");
    await collector.close();
  });

  it("runs once after the start delay and then periodically until closed", async () => {
    await put("garbage", 48 * HOUR);
    const collector = new BlobCollector({ blobs, references, logger, retentionMs: HOUR, intervalMs: 30, startDelayMs: 10 });
    collector.start();
    for (let i = 0; i < 100 && (await blobs.stat(sha("garbage"))); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(await blobs.stat(sha("garbage")), undefined);
    await collector.close();
  });
});

/** The file of a blob in a LocalBlobStore directory (its layout is the store's business). */
async function findBlobFile(dir: string, sha256: string): Promise<string> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const entry = entries.find((e) => e.isFile() && e.name.includes(sha256));
  if (!entry) throw new Error(`no file for blob ${sha256} under ${dir}`);
  return join(entry.parentPath, entry.name);
}
