import { Code, ConnectError } from "@connectrpc/connect";
import { FilePathError, normalizeFilePath, validateResourceName } from "@mottainai/proto";
import type { Store } from "../store/store.js";
import type { StorageRecord } from "../store/storage-store.js";
import type { TaskRecord } from "../store/task-store.js";
import { isPrivileged, type Principal } from "./principal.js";

// Who may read and write task artefacts and storages (DESIGN §7), shared by the RPC services and
// the plain HTTP file routes so that both answer the same question the same way.

const unauthenticated = () => new ConnectError("this call needs a bearer token", Code.Unauthenticated);

/**
 * Whether the owner of a running task may read what `ownerId` owns: the same user, or a manager
 * or admin. A task's token never reaches further than its owner's API token would, so a task
 * cannot read another user's task or storage by naming it in `root_task` or `storage`.
 */
async function taskOwnerMayRead(store: Store, task: TaskRecord, ownerId: string): Promise<boolean> {
  if (task.ownerId === ownerId) return true;
  const owner = await store.users.get(task.ownerId);
  return owner !== undefined && isPrivileged(owner);
}

/**
 * The task whose artefacts the principal wants to read. Readers: the owner, managers and admins
 * (TaskService's rule), the task itself, and a running task whose `root_task` lists it (when its
 * own owner may read that task too).
 * NotFound when the task does not exist, PermissionDenied when it exists but the caller may not
 * read it (as TaskService answers), Unauthenticated for anonymous callers.
 */
export async function readableTask(store: Store, principal: Principal, taskId: string): Promise<TaskRecord> {
  if (principal.kind === "anonymous") throw unauthenticated();
  if (!taskId) throw new ConnectError("task_id: a task id is required", Code.InvalidArgument);
  const task = await store.tasks.get(taskId);
  if (!task) throw new ConnectError(`task ${taskId} not found`, Code.NotFound);
  const allowed =
    principal.kind === "user"
      ? task.ownerId === principal.user.id || isPrivileged(principal.user)
      : principal.kind === "task"
        ? principal.task.id === task.id ||
          (principal.task.definition.rootTask.includes(task.id) && (await taskOwnerMayRead(store, principal.task, task.ownerId)))
        : false;
  if (!allowed) throw new ConnectError(`task ${taskId}: not yours to read`, Code.PermissionDenied);
  return task;
}

/**
 * The storage (by id or name) the principal wants to read. Readers: the owner, managers and
 * admins, and a running task whose `storage` lists it by name or id (when the task's owner may
 * read it too). Anyone else gets NotFound,
 * exactly as for a storage that does not exist: a storage's existence is not revealed to those
 * who may not read it (names of other people's storages can be sensitive).
 */
export async function readableStorage(store: Store, principal: Principal, idOrName: string): Promise<StorageRecord> {
  if (principal.kind === "anonymous") throw unauthenticated();
  if (!idOrName) throw new ConnectError("id: a storage id or name is required", Code.InvalidArgument);
  const storage = await store.storages.get(idOrName);
  const allowed =
    storage !== undefined &&
    (principal.kind === "user"
      ? storage.ownerId === principal.user.id || isPrivileged(principal.user)
      : principal.kind === "task"
        ? principal.task.definition.storage.some((s) => s === storage.name || s === storage.id) &&
          (await taskOwnerMayRead(store, principal.task, storage.ownerId))
        : false);
  if (!storage || !allowed) throw new ConnectError(`storage ${idOrName} not found`, Code.NotFound);
  return storage;
}

/**
 * The storage the principal wants to change: the owner, managers and admins only. Tasks never
 * write storages (PermissionDenied for one that may read it); callers who may not even read it
 * get NotFound as in readableStorage.
 */
export async function writableStorage(store: Store, principal: Principal, idOrName: string): Promise<StorageRecord> {
  const storage = await readableStorage(store, principal, idOrName);
  if (principal.kind !== "user") {
    throw new ConnectError(`storage ${idOrName}: storages are read-only for tasks`, Code.PermissionDenied);
  }
  return storage;
}

/** normalizeFilePath as a ConnectError: InvalidArgument naming `field` for a path that cannot be stored. */
export function checkedPath(path: string, field: string): string {
  try {
    return normalizeFilePath(path, field);
  } catch (err) {
    if (err instanceof FilePathError) throw new ConnectError(err.message, Code.InvalidArgument);
    throw err;
  }
}

/** validateResourceName as a ConnectError: InvalidArgument naming `field`. */
export function checkedName(name: string, field: string): string {
  try {
    return validateResourceName(name, field);
  } catch (err) {
    if (err instanceof FilePathError) throw new ConnectError(err.message, Code.InvalidArgument);
    throw err;
  }
}

/** A listing prefix: any string without NUL ("" lists everything). */
export function checkedPrefix(prefix: string): string {
  if (prefix.includes("\0")) throw new ConnectError("prefix: must not contain NUL", Code.InvalidArgument);
  return prefix;
}
