import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { ArtefactService, FilePathError, UploadArtefactRequestSchema, normalizeFilePath } from "@mottainai/proto";
import type { Logger } from "pino";
import { fileChunks, fileCount, hashFile, mebibytes } from "./file-transfer.js";

/** Options of uploadArtefacts. */
export interface ArtefactUploadOptions {
  /** Transport to the server; each call carries the task token as its own bearer. */
  transport: Transport;
  /** The attempt's task token (TaskAssignment.task_token). */
  token: string;
  taskId: string;
  /** The artefact directory the executor's collect() returned. */
  dir: string;
  /** `artefact_push_filters`: see selectArtefacts. */
  filters: readonly string[];
  /** Writes progress lines into the task's log. */
  output: (text: string) => void;
  logger: Logger;
  /** Tries per file for transient failures (server unreachable, connection cut). Default 3. */
  tries?: number;
}

/** A file of the artefact directory: its path relative to it (with "/") and where it is. */
export interface ArtefactFile {
  path: string;
  absolute: string;
}

/**
 * Every regular file under dir, relative paths sorted. Symbolic links are skipped (and reported
 * through `skipped`): following them would let a task, e.g. inside a container, make the agent
 * upload files of the host. Paths the server would refuse (normalizeFilePath) throw, naming them.
 */
export async function walkArtefacts(dir: string, skipped: (path: string) => void = () => undefined): Promise<ArtefactFile[]> {
  const files: ArtefactFile[] = [];
  const visit = async (absolute: string, rel: string): Promise<void> => {
    for (const entry of await readdir(absolute, { withFileTypes: true })) {
      const path = rel === "" ? entry.name : `${rel}/${entry.name}`;
      const child = join(absolute, entry.name);
      if (entry.isDirectory()) await visit(child, path);
      else if (entry.isFile()) files.push({ path: normalizeFilePath(path, `artefact ${JSON.stringify(path)}`), absolute: child });
      else skipped(path);
    }
  };
  if ((await lstat(dir)).isDirectory()) await visit(dir, "");
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * `artefact_push_filters` as the original MottainaiCI agent applies them: regular expressions,
 * unanchored (a match anywhere counts); a file is uploaded when any of them matches, and every
 * file when there are none. The original matched the agent's absolute file path; we match the
 * path relative to the artefact directory ("pkgs/a.tbz2"), the only part the task controls, so
 * filters such as `\.tbz2$` or `^pkgs/` mean the same on every agent.
 */
export function selectArtefacts<T extends { path: string }>(files: readonly T[], filters: readonly string[]): T[] {
  if (filters.length === 0) return [...files];
  const patterns = filters.map((source, i) => {
    try {
      return new RegExp(source);
    } catch (err) {
      throw new Error(`artefact_push_filters[${i}]: ${(err as Error).message}`, { cause: err });
    }
  });
  return files.filter((f) => patterns.some((re) => re.test(f.path)));
}

const TRANSIENT = new Set([Code.Unavailable, Code.Unknown, Code.Internal, Code.Aborted, Code.DeadlineExceeded]);

/**
 * Uploads the task's artefacts (DESIGN §5): every regular file under `dir` that the filters keep,
 * each hashed first and sent with its sha256 through ArtefactService.UploadArtefact with the task
 * token, so that the server commits only verified bytes. Transient failures are retried; any
 * other failure rejects with a message naming the file. Progress goes to the task log.
 */
export async function uploadArtefacts(o: ArtefactUploadOptions): Promise<{ files: number; bytes: number }> {
  const client = createClient(ArtefactService, o.transport);
  const headers = { authorization: `Bearer ${o.token}` };
  const skipped: string[] = [];
  let all: ArtefactFile[];
  try {
    all = await walkArtefacts(o.dir, (p) => skipped.push(p));
  } catch (err) {
    if (err instanceof FilePathError) throw new Error(`cannot upload ${err.message}`, { cause: err });
    throw err;
  }
  const files = selectArtefacts(all, o.filters);
  const hashed: (ArtefactFile & { sha256: string; size: number })[] = [];
  for (const f of files) hashed.push({ ...f, ...(await hashFile(f.absolute)) });
  const total = hashed.reduce((sum, f) => sum + f.size, 0);
  if (hashed.length === 0 && all.length === 0 && skipped.length === 0) return { files: 0, bytes: 0 };
  const notes = [
    all.length > files.length ? `${all.length - files.length} filtered out by artefact_push_filters` : "",
    skipped.length > 0 ? `${skipped.length} not regular files, skipped` : "",
  ].filter((n) => n !== "");
  o.output(
    `Uploading artefacts: ${fileCount(hashed.length)}, ${mebibytes(total)}${notes.length ? ` (${notes.join(", ")})` : ""}\n`,
  );
  const started = Date.now();
  const tries = Math.max(1, o.tries ?? 3);
  for (const f of hashed) {
    for (let attempt = 1; ; attempt++) {
      try {
        async function* messages() {
          yield create(UploadArtefactRequestSchema, {
            message: { case: "header", value: { taskId: o.taskId, path: f.path, size: BigInt(f.size), sha256: f.sha256 } },
          });
          for await (const chunk of fileChunks(f.absolute)) {
            yield create(UploadArtefactRequestSchema, { message: { case: "chunk", value: chunk } });
          }
        }
        await client.uploadArtefact(messages(), { headers });
        break;
      } catch (err) {
        const ce = ConnectError.from(err);
        if (attempt < tries && TRANSIENT.has(ce.code)) {
          o.logger.warn({ path: f.path, attempt, code: Code[ce.code] }, `artefact upload failed, retrying: ${ce.rawMessage}`);
          await new Promise((r) => setTimeout(r, 200 * attempt));
          continue;
        }
        throw new Error(`uploading artefact ${JSON.stringify(f.path)} failed: ${Code[ce.code]}: ${ce.rawMessage}`, {
          cause: err,
        });
      }
    }
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  o.output(`Uploaded artefacts: ${fileCount(hashed.length)}, ${mebibytes(total)} in ${seconds} s\n`);
  return { files: hashed.length, bytes: total };
}
