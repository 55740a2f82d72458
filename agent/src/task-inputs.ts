import { execFile } from "node:child_process";
import { chmod, lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { ArtefactService, NamespaceService, StorageService, type TaskSpec } from "@mottainai/proto";
import type { Logger } from "pino";
import type { InputDirectories } from "./executor/executor.js";
import { downloadVerified, fileCount, mebibytes, targetPath } from "./file-transfer.js";

const run = promisify(execFile);

/** Options of createTaskInputs. */
export interface TaskInputsOptions {
  /** Transport to the server; each call carries the task token as its own bearer. */
  transport: Transport;
  /** The attempt's task token (TaskAssignment.task_token). */
  token: string;
  spec: TaskSpec;
  /** Writes progress lines into the task's log. */
  output: (text: string) => void;
  logger: Logger;
}

/** A task's inputs: stage() fills the directories, release() undoes the read-only protection. */
export interface TaskInputs {
  /** The executor's stageInputs hook; rejects with a message naming the input that failed. */
  stage(dirs: InputDirectories): Promise<void>;
  /**
   * Makes what stage() made read-only removable again (so the executor's destroy() can delete
   * the workspace). Idempotent, never rejects; call it before destroy().
   */
  release(): Promise<void>;
}

/** Whether the spec declares any input (root_task, namespace, storage). */
export function hasInputs(spec: TaskSpec): boolean {
  return spec.rootTask.length > 0 || spec.namespace.length > 0 || spec.storage.length > 0;
}

/** A file to fetch: where it is listed, its name for messages, and how to stream it. */
interface Listed {
  path: string;
  size: number;
  sha256: string;
}

/**
 * `namespace_filters` as the original applies them to root_task and namespace downloads:
 * unanchored regular expressions over the file's path; a file is fetched when any matches, every
 * file when there are none.
 */
export function filterPaths<T extends { path: string }>(files: readonly T[], filters: readonly string[]): T[] {
  if (filters.length === 0) return [...files];
  const patterns = filters.map((source, i) => {
    try {
      return new RegExp(source);
    } catch (err) {
      throw new Error(`namespace_filters[${i}]: ${(err as Error).message}`, { cause: err });
    }
  });
  return files.filter((f) => patterns.some((re) => re.test(f.path)));
}

/**
 * The task's inputs (DESIGN §5), fetched with the task token before the script starts:
 * - `root_task`: each task's artefacts into `artefact_path`, or into `artefact_path/<task id>`
 *   when `namespace_merged` is false (the original's layout); `namespace_filters` apply. With
 *   `inherit_artefacts` (a pipeline member), the last len(depends_on) root tasks are its
 *   parents, fetched into `artefact_path/<parent key>/` whatever `namespace_merged` says.
 * - `namespace`: each namespace's files (its `latest` tag, pinned to one revision for the whole
 *   download) into `artefact_path`, or `artefact_path/<namespace>` when not merged;
 *   `namespace_filters` apply.
 * - `storage`: every file of each storage into `storage_path`, which is then made read-only:
 *   files 0444 and directories 0555, and, when the agent runs as root (which permission bits do
 *   not stop), the immutable attribute (`chattr +i`) as well.
 * Every file is verified against its sha256 before it is renamed into place.
 */
export function createTaskInputs(o: TaskInputsOptions): TaskInputs {
  const headers = { authorization: `Bearer ${o.token}` };
  const artefacts = createClient(ArtefactService, o.transport);
  const namespaces = createClient(NamespaceService, o.transport);
  const storages = createClient(StorageService, o.transport);
  const merged = o.spec.namespaceMerged ?? true;
  let locked: string | undefined;

  const fetchAll = async (
    what: string,
    target: string,
    files: Listed[],
    open: (path: string) => AsyncIterable<{ offset: bigint; chunk: Uint8Array }>,
  ): Promise<void> => {
    const total = files.reduce((sum, f) => sum + f.size, 0);
    o.output(`Downloading ${what}: ${fileCount(files.length)}, ${mebibytes(total)}\n`);
    for (const f of files) {
      const dest = targetPath(target, f.path, `${what}: file ${JSON.stringify(f.path)}`);
      await downloadVerified(open(f.path), dest, f, `${what}: ${f.path}`);
    }
  };

  const named = async <T>(what: string, step: () => Promise<T>): Promise<T> => {
    try {
      return await step();
    } catch (err) {
      if (err instanceof ConnectError) throw new Error(`${what}: ${Code[err.code]}: ${err.rawMessage}`, { cause: err });
      throw err;
    }
  };

  return {
    async stage({ artefactDir, storageDir }) {
      // A pipeline member's inherited parents are the last dependsOn.length root tasks (TaskSpec.inherit_artefacts).
      const inherited = o.spec.inheritArtefacts ? o.spec.dependsOn.length : 0;
      const own = o.spec.rootTask.length - inherited;
      for (const [i, taskId] of o.spec.rootTask.entries()) {
        const parentKey = i >= own ? o.spec.dependsOn[i - own] : undefined;
        if (parentKey !== undefined && !isDirectoryName(parentKey)) {
          throw new Error(`inherit_artefacts: parent key ${JSON.stringify(parentKey)} cannot be a directory name`);
        }
        const what = parentKey === undefined ? `root_task ${taskId}` : `artefacts of ${parentKey} (task ${taskId})`;
        const target = parentKey !== undefined ? join(artefactDir, parentKey) : merged ? artefactDir : join(artefactDir, taskId);
        await named(what, async () => {
          const listed = (await artefacts.listArtefacts({ taskId }, { headers })).artefacts;
          const files = filterPaths(
            listed.map((a) => ({ path: a.path, size: Number(a.size), sha256: a.sha256 })),
            o.spec.namespaceFilters,
          );
          await fetchAll(what, target, files, (path) => artefacts.downloadArtefact({ taskId, path }, { headers }));
        });
      }
      for (const name of o.spec.namespace) {
        const what = `namespace ${name}`;
        await named(what, async () => {
          let ref = "";
          try {
            const { revision } = await namespaces.getRevision({ name, ref: "" }, { headers });
            if (revision && revision.number > 0n) ref = String(revision.number);
          } catch {
            // ListFiles below reports why the namespace cannot be read.
          }
          const listed = (await namespaces.listFiles({ name, ref }, { headers })).files;
          const files = filterPaths(
            listed.map((f) => ({ path: f.path, size: Number(f.size), sha256: f.sha256 })),
            o.spec.namespaceFilters,
          );
          await fetchAll(what, merged ? artefactDir : join(artefactDir, name), files, (path) =>
            namespaces.downloadFile({ name, ref, path }, { headers }),
          );
        });
      }
      if (o.spec.storage.length === 0) return;
      for (const id of o.spec.storage) {
        const what = `storage ${id}`;
        await named(what, async () => {
          const listed = (await storages.listStorageFiles({ id }, { headers })).files;
          const files = listed.map((f) => ({ path: f.path, size: Number(f.size), sha256: f.sha256 }));
          await fetchAll(what, storageDir, files, (path) => storages.downloadStorageFile({ id, path }, { headers }));
        });
      }
      locked = storageDir;
      if (!(await makeReadOnly(storageDir))) {
        o.logger.warn({ dir: storageDir }, "cannot set the immutable attribute: the storage is protected by permissions only");
      }
    },

    async release() {
      if (locked === undefined) return;
      const dir = locked;
      locked = undefined;
      await releaseReadOnly(dir).catch((err: unknown) => o.logger.warn({ err, dir }, "cannot make the storage writable again"));
    },
  };
}

/** Whether a pipeline key can name one directory: no "/", NUL, "." or "..". */
const isDirectoryName = (key: string): boolean => key !== "" && key !== "." && key !== ".." && !/[/\0]/.test(key);

const isRoot = (): boolean => process.getuid?.() === 0;

async function walk(dir: string, visit: (path: string, isDir: boolean) => Promise<void>): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await walk(path, visit);
    if (entry.isDirectory() || entry.isFile()) await visit(path, entry.isDirectory());
  }
}

/**
 * Makes a directory tree read-only for the task: files 0444, directories 0555 (the top one
 * included) and, as root, the immutable attribute (permission bits do not stop root). Resolves
 * false when the attribute could not be set (no chattr, a file system without it): the
 * permission bits then protect only against tasks that do not run as root.
 */
export async function makeReadOnly(dir: string): Promise<boolean> {
  await walk(dir, (path, isDir) => chmod(path, isDir ? 0o555 : 0o444));
  await chmod(dir, 0o555);
  if (!isRoot()) return true;
  try {
    await run("chattr", ["-R", "+i", dir]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Undoes makeReadOnly (and the leftovers of an agent that died before it could): clears the
 * immutable attribute as root, then gives the owner write permission on the directories, so that
 * the tree can be removed. A missing directory is fine.
 */
export async function releaseReadOnly(dir: string): Promise<void> {
  try {
    if (!(await lstat(dir)).isDirectory()) return;
  } catch {
    return;
  }
  if (isRoot()) await run("chattr", ["-R", "-f", "-i", dir]).catch(() => undefined);
  await chmod(dir, 0o755);
  await walk(dir, async (path, isDir) => {
    if (isDir) await chmod(path, 0o755);
  });
}
