import type { TaskRecord } from "../store/task-store.js";

/**
 * The MOTTAINAI_* variables every task sees (DESIGN §5). Paths are relative to the task's
 * workspace; executors that mount the workspace elsewhere rewrite them.
 */
export function taskEnvironment(task: TaskRecord, attempt: number): Record<string, string> {
  const d = task.definition;
  return {
    MOTTAINAI_TASK_ID: task.id,
    MOTTAINAI_TASK_NAME: d.name,
    MOTTAINAI_TASK_OWNER_ID: task.ownerId,
    MOTTAINAI_PIPELINE_ID: task.pipelineId,
    MOTTAINAI_ARTEFACT_PATH: d.artefactPath,
    MOTTAINAI_STORAGE_PATH: d.storagePath,
    MOTTAINAI_ROOT_TASK: d.rootTask.join(","),
    MOTTAINAI_TASK_TYPE: d.type,
    MOTTAINAI_TASK_IMAGE: d.image,
    MOTTAINAI_TASK_QUEUE: task.queue,
    MOTTAINAI_TASK_ATTEMPT: String(attempt),
  };
}
