import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  TaskAttemptSchema,
  TaskResult,
  TaskSchema,
  TaskSpecSchema,
  TaskStatus,
  type Task,
  type TaskSpec,
} from "@mottainai/proto";
import type { AttemptRecord, TaskDefinition, TaskOutcome, TaskRecord, TaskState } from "../store/task-store.js";

const STATUS: Record<TaskState, TaskStatus> = {
  waiting: TaskStatus.WAITING,
  setup: TaskStatus.SETUP,
  running: TaskStatus.RUNNING,
  done: TaskStatus.DONE,
  stop: TaskStatus.STOP,
  stopped: TaskStatus.STOPPED,
};

const RESULT: Record<TaskOutcome, TaskResult> = {
  none: TaskResult.UNSPECIFIED,
  success: TaskResult.SUCCESS,
  failed: TaskResult.FAILED,
  error: TaskResult.ERROR,
};

/** Wire status of a stored state. */
export const statusToProto = (s: TaskState): TaskStatus => STATUS[s];

/** Stored state of a wire status; undefined for UNSPECIFIED. */
export function statusFromProto(s: TaskStatus): TaskState | undefined {
  return (Object.keys(STATUS) as TaskState[]).find((k) => STATUS[k] === s);
}

/** Wire result of a stored outcome. */
export const resultToProto = (r: TaskOutcome): TaskResult => RESULT[r];

/** Stored outcome of a wire result (UNSPECIFIED is "none"). */
export function resultFromProto(r: TaskResult): TaskOutcome {
  return (Object.keys(RESULT) as TaskOutcome[]).find((k) => RESULT[k] === r) ?? "none";
}

/** The stored definition of a validated spec. */
export function definitionFromSpec(spec: TaskSpec): TaskDefinition {
  return {
    name: spec.name,
    type: spec.type,
    image: spec.image,
    script: [...spec.script],
    entrypoint: [...spec.entrypoint],
    environment: [...spec.environment],
    source: spec.source,
    commit: spec.commit,
    directory: spec.directory,
    privkey: spec.privkey,
    binds: [...spec.binds],
    artefactPath: spec.artefactPath || "artefacts",
    artefactPushFilters: [...spec.artefactPushFilters],
    storage: [...spec.storage],
    storagePath: spec.storagePath || "storage",
    namespace: [...spec.namespace],
    namespaceFilters: [...spec.namespaceFilters],
    namespaceMerged: spec.namespaceMerged ?? true,
    rootTask: [...spec.rootTask],
    tagNamespace: spec.tagNamespace,
    publishMode: spec.publishMode,
    queue: spec.queue,
    retry: spec.retry,
    timeout: spec.timeout,
    eta: spec.eta,
    cacheImage: spec.cacheImage,
    cacheClean: spec.cacheClean,
    prune: spec.prune,
    disablePushOnFailure: spec.disablePushOnFailure,
    quota: spec.quota,
    labels: { ...spec.labels },
  };
}

/** The wire spec of a stored definition. */
export function specFromDefinition(d: TaskDefinition): TaskSpec {
  return create(TaskSpecSchema, { ...d, labels: { ...d.labels } });
}

const ts = (ms: number | null) => (ms ? timestampFromMs(ms) : undefined);

/** The wire form of a task, with its attempts and, while it waits, why. */
export function taskToProto(t: TaskRecord, attempts: AttemptRecord[] = [], waitingReason = "", logSize = 0): Task {
  return create(TaskSchema, {
    id: t.id,
    spec: specFromDefinition(t.definition),
    status: STATUS[t.status],
    result: RESULT[t.result],
    exitCode: t.exitCode ?? undefined,
    ownerId: t.ownerId,
    pipelineId: t.pipelineId,
    nodeId: t.nodeId,
    attempt: t.attempt,
    attempts: attempts.map((a) =>
      create(TaskAttemptSchema, {
        number: a.number,
        nodeId: a.nodeId,
        status: STATUS[a.status],
        result: RESULT[a.result],
        exitCode: a.exitCode ?? undefined,
        error: a.error,
        startTime: ts(a.startTime),
        endTime: ts(a.endTime),
      }),
    ),
    createTime: ts(t.createTime),
    startTime: ts(t.startTime),
    endTime: ts(t.endTime),
    updateTime: ts(t.updateTime),
    waitingReason: t.status === "waiting" ? waitingReason : "",
    logSize: BigInt(logSize || t.logSize),
    error: t.error,
    targetNode: t.targetNode,
  });
}
