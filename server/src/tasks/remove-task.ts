import type { EventBus } from "../events/event-bus.js";
import type { TaskLogStore } from "../logs/task-log-store.js";
import type { Store } from "../store/store.js";

/** What removing a task touches. */
export interface RemoveTaskDeps {
  store: Store;
  logs: TaskLogStore;
  events: EventBus;
}

/**
 * Removes a task that no attempt runs (the caller checks): the task with its attempts, its
 * artefact records and its log, then publishes `task.deleted` with the given attributes. The
 * blobs that only it referenced go with the next blob garbage collection. The task record goes
 * first and decides: false when it was already gone (a user, or another server's retention,
 * removed it), and then nothing else is touched or published.
 */
export async function removeTask(o: RemoveTaskDeps, taskId: string, attributes: Record<string, string> = {}): Promise<boolean> {
  const task = await o.store.tasks.get(taskId);
  if (!(await o.store.tasks.delete(taskId))) return false;
  await o.store.artefacts.deleteForTask(taskId);
  await o.logs.remove(taskId);
  await o.events.publish("task.deleted", taskId, undefined, {
    owner_id: task?.ownerId ?? "",
    pipeline_id: task?.pipelineId ?? "",
    ...attributes,
  });
  return true;
}
