import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, readdir, rm, stat } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { normalizeFilePath } from "@mottainai/proto";
import { createAbortInterceptor, createBearerInterceptor, type ServerTransportOptions } from "./client.js";
import type { Output, TransferProgress } from "./output.js";
import { matchesPathFilters } from "./path-filters.js";

/** Bytes per upload message: well under the server's 8 MiB message limit. */
export const UPLOAD_CHUNK_BYTES = 1024 * 1024;

/**
 * A client for uploads and downloads: createServerClient's transport (Connect over HTTP/1.1,
 * bearer token, abort signal) except that it never asks for compressed messages. By default
 * Connect announces gzip and the server then gzips every download chunk (and the CLI gunzips it):
 * a 1 GiB download of incompressible bytes took 28 s and 22 s of server CPU instead of 3 to 5 s
 * (docs/benchmarks.md). Artefacts are mostly compressed already (tarballs, packages, images).
 */
export function createTransferClient<Service extends DescService>(
  service: Service,
  options: ServerTransportOptions,
): Client<Service> {
  const interceptors = [];
  if (options.token !== undefined) interceptors.push(createBearerInterceptor(options.token));
  if (options.signal !== undefined) interceptors.push(createAbortInterceptor(options.signal));
  return createClient(
    service,
    createConnectTransport({ baseUrl: options.baseUrl, httpVersion: "1.1", interceptors, acceptCompression: [] }),
  );
}

/** Hex sha256 and size of a local file (read once, before an upload sends its header). */
export async function hashFile(path: string, progress?: TransferProgress): Promise<{ sha256: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: UPLOAD_CHUNK_BYTES }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.byteLength;
    progress?.advance(chunk.byteLength);
  }
  return { sha256: hash.digest("hex"), size };
}

/** The file's bytes in upload-sized chunks, reporting each to progress. */
export async function* fileChunks(path: string, progress?: TransferProgress): AsyncGenerator<Uint8Array> {
  for await (const chunk of createReadStream(path, { highWaterMark: UPLOAD_CHUNK_BYTES }) as AsyncIterable<Buffer>) {
    progress?.advance(chunk.byteLength);
    yield chunk;
  }
}

/** A local file to upload: where it is and the remote path it gets. */
export interface LocalFile {
  absolute: string;
  path: string;
}

/**
 * The files an upload of `source` sends: a file as `<prefix>/<its name>`, a directory's regular
 * files (recursively, symbolic links to files followed, others skipped) as `<prefix>/<path inside
 * it>`. Every remote path is checked with normalizeFilePath before anything is sent.
 */
export async function localFiles(source: string, prefix: string): Promise<LocalFile[]> {
  const join2 = (p: string) => (prefix === "" ? p : `${prefix.replace(/\/+$/, "")}/${p}`);
  const info = await stat(source);
  if (!info.isDirectory()) {
    const name =
      source
        .split(sep)
        .filter((s) => s !== "")
        .pop() ?? source;
    return [{ absolute: source, path: normalizeFilePath(join2(name), source) }];
  }
  const files: LocalFile[] = [];
  const visit = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const absolute = join(dir, entry.name);
      const kind = entry.isSymbolicLink() ? await stat(absolute).catch(() => undefined) : entry;
      if (kind?.isDirectory() && !entry.isSymbolicLink()) await visit(absolute);
      else if (kind?.isFile()) {
        const rel = relative(source, absolute).split(sep).join("/");
        files.push({ absolute, path: normalizeFilePath(join2(rel), absolute) });
      }
    }
  };
  await visit(source);
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** A local file with the size and sha256 that its upload header announces. */
export interface HashedFile extends LocalFile {
  size: number;
  sha256: string;
}

/**
 * The files an upload of sources sends (localFiles of each, below prefix, in that order), each
 * read once for its sha256 and size before anything is sent.
 */
export async function hashedLocalFiles(sources: readonly string[], prefix: string): Promise<HashedFile[]> {
  const files = (await Promise.all(sources.map((s) => localFiles(s, prefix)))).flat();
  const hashed: HashedFile[] = [];
  for (const f of files) hashed.push({ ...f, ...(await hashFile(f.absolute)) });
  return hashed;
}

/** One message of an Upload* client stream (UploadFileRequest, UploadStorageFileRequest). */
export interface UploadMessage<Header> {
  message: { case: "header"; value: Header } | { case: "chunk"; value: Uint8Array };
}

/** The messages that upload one file: header first, then its bytes (fileChunks, reported to progress). */
export async function* uploadMessages<Header>(
  header: Header,
  file: HashedFile,
  progress?: TransferProgress,
): AsyncGenerator<UploadMessage<Header>> {
  yield { message: { case: "header", value: header } };
  for await (const chunk of fileChunks(file.absolute, progress)) yield { message: { case: "chunk", value: chunk } };
}

/**
 * Uploads files one after the other with send, under one progress bar `Uploading N files` over
 * their total size; the bar is ended also when an upload fails (which stops the rest).
 */
export async function uploadFiles(
  output: Pick<Output, "progress">,
  files: readonly HashedFile[],
  send: (file: HashedFile, progress: TransferProgress) => Promise<void>,
): Promise<void> {
  const total = files.reduce((sum, f) => sum + f.size, 0);
  const progress = output.progress(`Uploading ${files.length} files`, total);
  try {
    for (const f of files) await send(f, progress);
  } finally {
    progress.done();
  }
}

/** Where a remote path lands under a local directory; refuses paths that would leave it. */
export function localTarget(dir: string, path: string): string {
  const target = join(dir, ...normalizeFilePath(path, "path").split("/"));
  const rel = relative(dir, target);
  if (rel === "" || rel === ".." || rel.startsWith(`..${sep}`)) throw new Error(`path: ${path} leaves ${dir}`);
  return target;
}

/** One message of a Download* stream. */
export interface DownloadChunk {
  offset: bigint;
  chunk: Uint8Array;
}

/**
 * Downloads one remote file to `dest`, resuming: when `dest` already holds a prefix of the file
 * (shorter than `size`), only the rest is requested from that offset and appended; a complete
 * file whose sha256 matches is left alone. The whole file's sha256 is verified at the end; a
 * mismatch removes it and throws, so that the next run starts over. Returns the bytes fetched.
 */
export async function downloadResumable(options: {
  dest: string;
  size: number;
  sha256: string;
  open: (offset: number) => AsyncIterable<DownloadChunk>;
  progress?: TransferProgress;
}): Promise<number> {
  const { dest, size, sha256, progress } = options;
  await mkdir(dirname(dest), { recursive: true });
  let have = 0;
  try {
    const info = await stat(dest);
    if (info.isFile()) have = info.size;
  } catch {
    // Not there yet.
  }
  if (have > size) have = 0;
  const hash = createHash("sha256");
  if (have > 0) {
    for await (const chunk of createReadStream(dest, {
      end: have - 1,
      highWaterMark: UPLOAD_CHUNK_BYTES,
    }) as AsyncIterable<Buffer>) {
      hash.update(chunk);
    }
    if (have === size) {
      if (hash.copy().digest("hex") === sha256) {
        progress?.advance(size);
        return 0;
      }
      have = 0;
    }
  }
  const restart = have === 0;
  const fresh = restart ? createHash("sha256") : hash;
  progress?.advance(have);
  let position = have;
  async function* bytes(): AsyncGenerator<Uint8Array> {
    for await (const message of options.open(have)) {
      if (message.chunk.byteLength === 0) continue;
      if (Number(message.offset) !== position) {
        throw new Error(`${dest}: the server sent bytes at offset ${message.offset}, expected ${position}`);
      }
      position += message.chunk.byteLength;
      fresh.update(message.chunk);
      progress?.advance(message.chunk.byteLength);
      yield message.chunk;
    }
  }
  if (restart) {
    const handle = await open(dest, "w");
    await handle.close();
  }
  await pipeline(bytes(), createWriteStream(dest, { flags: "a" }) as Writable);
  const digest = fresh.digest("hex");
  if (position !== size || digest !== sha256) {
    await rm(dest, { force: true });
    throw new Error(`${dest}: the downloaded bytes do not match (expected ${size} bytes with sha256 ${sha256}); run again`);
  }
  return position - have;
}

/** A file as a listing of the server describes it (StorageFile, NamespaceFile, Artefact). */
export interface RemoteFile {
  path: string;
  size: bigint;
  sha256: string;
}

/** Options of downloadFiles. */
export interface DownloadFilesOptions<File extends RemoteFile> {
  /** The server's listing, asked for with onlyPath as its prefix when onlyPath is given. */
  listed: readonly File[];
  /** Only the file with exactly this path (`--path`); undefined for every listed file. */
  onlyPath: string | undefined;
  /** The error when onlyPath names no listed file, e.g. `storage NAME has no file PATH`. */
  missing: string;
  /** Only files whose path matches one of these (matchesPathFilters; `-f REGEX`); none: every file. */
  filters?: readonly RegExp[];
  /** Local directory the remote paths land under (localTarget). */
  to: string;
  /** Opens the Download* stream of file from offset. */
  open: (file: File, offset: number) => AsyncIterable<DownloadChunk>;
}

/**
 * Downloads the listed files (or the one onlyPath names), those that pass `filters`, into `to` one after the other with
 * downloadResumable, so partial files are resumed and every file is verified, under one progress
 * bar `Downloading N files` over their total size, ended also on failure.
 */
export async function downloadFiles<File extends RemoteFile>(
  output: Pick<Output, "progress">,
  options: DownloadFilesOptions<File>,
): Promise<void> {
  const { onlyPath } = options;
  const named = onlyPath === undefined ? options.listed : options.listed.filter((f) => f.path === onlyPath);
  if (onlyPath !== undefined && named.length === 0) throw new Error(options.missing);
  const chosen = named.filter((f) => matchesPathFilters(f.path, options.filters ?? []));
  const total = chosen.reduce((sum, f) => sum + Number(f.size), 0);
  const progress = output.progress(`Downloading ${chosen.length} files`, total);
  try {
    for (const f of chosen) {
      await downloadResumable({
        dest: localTarget(options.to, f.path),
        size: Number(f.size),
        sha256: f.sha256,
        open: (offset) => options.open(f, offset),
        progress,
      });
    }
  } finally {
    progress.done();
  }
}
