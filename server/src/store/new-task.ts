import type { TaskDefinition, TaskRecord } from "./task-store.js";

/** What a new task needs; everything else starts empty. */
export interface NewTask {
  id: string;
  definition: TaskDefinition;
  ownerId: string;
  /** Regular expression over node names; empty for any node. */
  targetNode?: string;
  now: number;
}

/**
 * A waiting task with no attempt yet, ready for TaskStore.create: queue defaults to "general",
 * and the definition's eta (seconds) delays its first dispatch.
 */
export function newWaitingTask(t: NewTask): Omit<TaskRecord, "seq"> {
  return {
    id: t.id,
    definition: t.definition,
    queue: t.definition.queue || "general",
    targetNode: t.targetNode ?? "",
    status: "waiting",
    result: "none",
    exitCode: null,
    error: "",
    ownerId: t.ownerId,
    pipelineId: "",
    nodeId: "",
    attempt: 0,
    leaseId: "",
    leaseExpireTime: 0,
    infraFailures: 0,
    scriptRetries: 0,
    logSize: 0,
    notBefore: t.now + t.definition.eta * 1000,
    createTime: t.now,
    startTime: null,
    endTime: null,
    updateTime: t.now,
  };
}
