import { createHash } from "node:crypto";
import { createReadStream, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Logger } from "pino";
import type { BlobStore } from "../blob/blob-store.js";
import { ARCHIVE_KINDS, type ArchiveKind, type ArchiveRecords, type StoreArchive } from "../store/store-archive.js";
import { ARCHIVE_FORMAT, ARCHIVE_VERSION, type ArchiveManifest, blobPath } from "./export-archive.js";

/** What importArchive reads and where it writes. */
export interface ImportOptions {
  /** The destination store; it must hold nothing. */
  archive: StoreArchive;
  /** The destination blob store. */
  blobs: BlobStore;
  /** An archive directory exportArchive wrote. */
  from: string;
  /** Names the destination in errors, e.g. "SQLite database /srv/m/mottainai.db". */
  destination: string;
  logger: Logger;
}

/**
 * Loads an archive into an empty store and its blob store. Order: the manifest and every part's
 * sha256 and count are checked first; then each blob is put with its digest as the expected one
 * (the blob store verifies it); then StoreArchive.writeAll writes the records, all or nothing,
 * refusing a record that names a blob the archive lacks. On failure the blobs this import added
 * are deleted again (blobs that were already there stay) and the error is rethrown.
 */
export async function importArchive(o: ImportOptions): Promise<ArchiveManifest> {
  const manifest = readManifest(o.from);
  const filled = await o.archive.nonEmpty();
  if (filled.length > 0) {
    throw new Error(
      `${o.destination} is not empty (it holds ${filled.join(", ")}): import needs a store no server has started on`,
    );
  }
  for (const [name, part] of Object.entries(manifest.parts)) {
    const file = join(o.from, name);
    if (!existsSync(file)) throw new Error(`${o.from}: ${name} is missing`);
    const hash = createHash("sha256");
    let bytes = 0;
    for await (const chunk of createReadStream(file)) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
    const sha256 = hash.digest("hex");
    if (sha256 !== part.sha256 || bytes !== part.bytes) {
      throw new Error(
        `${o.from}: ${name} does not match the manifest (sha256 ${sha256}, expected ${part.sha256}): the archive is damaged`,
      );
    }
  }

  const known = new Set<string>();
  const added: string[] = [];
  try {
    for await (const blob of readJsonLines<{ sha256: string; size: number }>(join(o.from, "blobs.jsonl"))) {
      const file = blobPath(o.from, blob.sha256);
      if (!existsSync(file)) throw new Error(`${o.from}: blob ${blob.sha256} is missing`);
      const existed = (await o.blobs.stat(blob.sha256)) !== undefined;
      let info;
      try {
        info = await o.blobs.put(createReadStream(file), blob.sha256);
      } catch (err) {
        throw new Error(`${o.from}: blob ${blob.sha256} is damaged: ${(err as Error).message}`, { cause: err });
      }
      if (info.size !== blob.size)
        throw new Error(`${o.from}: blob ${blob.sha256} has ${info.size} bytes, the list says ${blob.size}`);
      if (!existed) added.push(blob.sha256);
      known.add(blob.sha256);
    }
    o.logger.info({ count: known.size, added: added.length }, "imported blobs");

    await o.archive.writeAll(<K extends ArchiveKind>(kind: K) => {
      const part = `records/${kind}.jsonl`;
      const expected = manifest.parts[part]?.count ?? 0;
      return checked(kind, readPart<K>(o.from, part, manifest), known, expected);
    });
    o.logger.info({ records: Object.values(manifest.parts).reduce((n, p) => n + p.count, 0) }, "imported records");
    return manifest;
  } catch (err) {
    for (const sha256 of added) await o.blobs.delete(sha256).catch(() => undefined);
    throw err;
  }
}

/** Reads and checks manifest.json of an archive directory. */
export function readManifest(dir: string): ArchiveManifest {
  const path = join(dir, "manifest.json");
  let manifest: ArchiveManifest;
  try {
    manifest = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`${dir} is not a mottainai archive: cannot read manifest.json (${(err as Error).message})`);
  }
  if (manifest.format !== ARCHIVE_FORMAT) throw new Error(`${dir} is not a mottainai archive (format "${manifest.format}")`);
  if (!(manifest.version <= ARCHIVE_VERSION)) {
    throw new Error(
      `${dir} has archive version ${manifest.version}, newer than this server reads (${ARCHIVE_VERSION}); upgrade the server`,
    );
  }
  for (const kind of ARCHIVE_KINDS) {
    if (!manifest.parts[`records/${kind}.jsonl`]) throw new Error(`${dir}: the manifest lists no records/${kind}.jsonl`);
  }
  if (!manifest.parts["blobs.jsonl"]) throw new Error(`${dir}: the manifest lists no blobs.jsonl`);
  return manifest;
}

async function* readPart<K extends ArchiveKind>(
  dir: string,
  part: string,
  manifest: ArchiveManifest,
): AsyncIterable<ArchiveRecords[K]> {
  if (!manifest.parts[part]) return;
  yield* readJsonLines<ArchiveRecords[K]>(join(dir, part));
}

/** Passes the records through, failing on a blob the archive lacks or a count off the manifest's. */
async function* checked<K extends ArchiveKind>(
  kind: K,
  records: AsyncIterable<ArchiveRecords[K]>,
  blobs: Set<string>,
  expected: number,
): AsyncIterable<ArchiveRecords[K]> {
  let n = 0;
  for await (const record of records) {
    n++;
    const sha256 = (record as { sha256?: unknown }).sha256;
    if (typeof sha256 === "string" && !blobs.has(sha256))
      throw new Error(`${kind} record ${n} names blob ${sha256}, which the archive lacks`);
    yield record;
  }
  if (n !== expected) throw new Error(`records/${kind}.jsonl holds ${n} records, the manifest says ${expected}`);
}

/** Parses a JSON-lines file one line at a time. */
export async function* readJsonLines<T>(path: string): AsyncIterable<T> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  let n = 0;
  for await (const line of lines) {
    n++;
    if (line === "") continue;
    try {
      yield JSON.parse(line) as T;
    } catch (err) {
      throw new Error(`${path}:${n}: ${(err as Error).message}`, { cause: err });
    }
  }
}
