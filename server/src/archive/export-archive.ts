import { createHash } from "node:crypto";
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Logger } from "pino";
import type { BlobStore } from "../blob/blob-store.js";
import { ARCHIVE_KINDS, type ArchiveKind, type ArchiveRecords, type StoreArchive } from "../store/store-archive.js";

/** Value of manifest.format: what the directory is. */
export const ARCHIVE_FORMAT = "mottainai-archive";

/** Version of the archive layout this server writes; import refuses a newer one. */
export const ARCHIVE_VERSION = 1;

/** One file of an archive, as the manifest describes it. */
export interface ArchivePart {
  /** Records (JSON lines) in the file. */
  count: number;
  bytes: number;
  /** Hex sha256 of the file. */
  sha256: string;
}

/**
 * manifest.json of an archive directory. `parts` names every file but the blobs, relative to the
 * directory: `records/<kind>.jsonl` for each kind of ARCHIVE_KINDS and `blobs.jsonl`, the list
 * of blobs ({sha256, size} per line). Each blob is `blobs/<first two hex digits>/<sha256>`; its
 * name is its digest, checked on import.
 */
export interface ArchiveManifest {
  format: typeof ARCHIVE_FORMAT;
  version: number;
  /** When the export finished (ms since the epoch). */
  createTime: number;
  /** What was exported, e.g. "sqlite /srv/mottainai/mottainai.db + local blobs". */
  source: string;
  parts: Record<string, ArchivePart>;
  blobs: { count: number; bytes: number };
}

/** What exportArchive reads and where it writes. */
export interface ExportOptions {
  archive: StoreArchive;
  blobs: BlobStore;
  /** The archive directory to create; it must not exist. */
  to: string;
  /** Recorded in the manifest. */
  source: string;
  /**
   * Directory of live (unsealed) task logs, `<dir>/<task>/<start>` (TaskLogStore). Each live file
   * goes into the archive as one more log segment, so the import holds the whole log. Default none.
   */
  liveLogDir?: string;
  logger: Logger;
  now?: () => number;
}

/** Record kinds that name blobs. */
const BLOB_KINDS = new Set<ArchiveKind>(["logSegments", "artefacts", "storageFiles", "namespaceEntries"]);

/** A blob's path inside an archive directory. */
export const blobPath = (dir: string, sha256: string) => join(dir, "blobs", sha256.slice(0, 2), sha256);

/**
 * Writes every record of archive and every blob the records name into a new archive directory
 * `to` (see ArchiveManifest). It is built under `<to>.partial-<pid>` and renamed at the end, so a
 * failed export leaves no archive. Each blob is re-hashed as it is copied; a referenced blob
 * missing from the blob store fails the export with its digest.
 */
export async function exportArchive(o: ExportOptions): Promise<ArchiveManifest> {
  if (existsSync(o.to)) throw new Error(`${o.to} already exists: export writes a new archive directory`);
  const tmp = `${o.to}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, "records"), { recursive: true });
  try {
    const parts: Record<string, ArchivePart> = {};
    const digests = new Set<string>();
    const liveFiles = new Map<string, string>();
    for (const kind of ARCHIVE_KINDS) {
      const records = o.archive.read(kind);
      const source =
        kind === "logSegments" && o.liveLogDir
          ? withLiveLogs(records as AsyncIterable<ArchiveRecords["logSegments"]>, o.liveLogDir, liveFiles)
          : records;
      parts[`records/${kind}.jsonl`] = await writeJsonLines(join(tmp, "records", `${kind}.jsonl`), source, (r) => {
        if (BLOB_KINDS.has(kind)) digests.add((r as { sha256: string }).sha256);
      });
      o.logger.info({ kind, count: parts[`records/${kind}.jsonl`]?.count }, "exported records");
    }
    let bytes = 0;
    const sorted = [...digests].sort();
    const blobList: { sha256: string; size: number }[] = [];
    for (const sha256 of sorted) {
      const file = blobPath(tmp, sha256);
      mkdirSync(join(file, ".."), { recursive: true });
      const live = liveFiles.get(sha256);
      let input: Readable;
      try {
        input = live ? createReadStream(live) : await o.blobs.get(sha256);
      } catch (err) {
        if ((err as { code?: string }).code === "ENOENT")
          throw new Error(`blob ${sha256} is referenced but missing from the blob store`);
        throw err;
      }
      const hash = createHash("sha256");
      let size = 0;
      input.on("data", (chunk: Buffer) => {
        hash.update(chunk);
        size += chunk.length;
      });
      await pipeline(input, createWriteStream(file));
      const actual = hash.digest("hex");
      if (actual !== sha256) throw new Error(`blob ${sha256} read back with sha256 ${actual}: the blob store is corrupt`);
      bytes += size;
      blobList.push({ sha256, size });
    }
    parts["blobs.jsonl"] = await writeJsonLines(join(tmp, "blobs.jsonl"), blobList, () => {});
    o.logger.info({ count: blobList.length, bytes }, "exported blobs");
    const manifest: ArchiveManifest = {
      format: ARCHIVE_FORMAT,
      version: ARCHIVE_VERSION,
      createTime: (o.now ?? Date.now)(),
      source: o.source,
      parts,
      blobs: { count: blobList.length, bytes },
    };
    writeFileSync(join(tmp, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
    renameSync(tmp, o.to);
    return manifest;
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** The stored segments, then one segment per live log file no stored segment covers. */
async function* withLiveLogs(
  stored: AsyncIterable<ArchiveRecords["logSegments"]>,
  dir: string,
  liveFiles: Map<string, string>,
): AsyncIterable<ArchiveRecords["logSegments"]> {
  const seen = new Set<string>();
  for await (const segment of stored) {
    seen.add(`${segment.taskId}/${segment.start}`);
    yield segment;
  }
  if (!existsSync(dir)) return;
  for (const taskId of readdirSync(dir).sort()) {
    const taskDir = join(dir, taskId);
    if (!statSync(taskDir).isDirectory()) continue;
    const starts = readdirSync(taskDir)
      .filter((f) => /^\d+$/.test(f))
      .sort((a, b) => Number(a) - Number(b));
    for (const name of starts) {
      const file = join(taskDir, name);
      const length = statSync(file).size;
      if (seen.has(`${taskId}/${name}`) || length === 0) continue;
      const hash = createHash("sha256");
      for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
      const sha256 = hash.digest("hex");
      liveFiles.set(sha256, file);
      yield { taskId, start: Number(name), length, sha256 };
    }
  }
}

/** Writes records as JSON lines, hashing the file as it goes; onRecord sees each record. */
async function writeJsonLines<T>(
  path: string,
  records: AsyncIterable<T> | Iterable<T>,
  onRecord: (r: T) => void,
): Promise<ArchivePart> {
  const out = createWriteStream(path);
  const hash = createHash("sha256");
  let count = 0;
  let bytes = 0;
  let buffered: string[] = [];
  const flush = async () => {
    if (buffered.length === 0) return;
    const chunk = Buffer.from(buffered.join(""));
    buffered = [];
    hash.update(chunk);
    bytes += chunk.length;
    if (!out.write(chunk)) await drained(out);
  };
  try {
    for await (const record of records) {
      onRecord(record);
      buffered.push(`${JSON.stringify(record)}\n`);
      count++;
      if (buffered.length >= 1000) await flush();
    }
    await flush();
  } finally {
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
  return { count, bytes, sha256: hash.digest("hex") };
}

function drained(out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    out.once("drain", resolve);
    out.once("error", reject);
  });
}
