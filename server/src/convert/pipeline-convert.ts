import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  PipelineDependenciesSchema,
  PipelineMemberSchema,
  PipelineMemberState,
  PipelineSchema,
  PipelineSpecSchema,
  TaskResult,
  TaskStatus,
  type Pipeline,
  type PipelineSpec,
} from "@mottainai/proto";
import type { MemberRecord, MemberState, PipelineDefinition, PipelineRecord, PipelineState } from "../store/pipeline-store.js";
import type { TaskRecord } from "../store/task-store.js";
import { resultToProto, specFromDefinition, statusFromProto, statusToProto } from "./task-convert.js";

const ts = (ms: number | null) => (ms ? timestampFromMs(ms) : undefined);

const MEMBER_STATE: Record<MemberState, PipelineMemberState> = {
  pending: PipelineMemberState.PENDING,
  created: PipelineMemberState.CREATED,
  skipped: PipelineMemberState.SKIPPED,
};

/** Wire status of a pipeline: WAITING before its first member task, RUNNING, STOP, DONE, STOPPED. */
export function pipelineStatusToProto(p: Pick<PipelineRecord, "status" | "startTime">): TaskStatus {
  switch (p.status) {
    case "running":
      return p.startTime === null ? TaskStatus.WAITING : TaskStatus.RUNNING;
    case "stop":
      return TaskStatus.STOP;
    case "done":
      return TaskStatus.DONE;
    case "stopped":
      return TaskStatus.STOPPED;
  }
}

/** Stored states matching a wire status filter; undefined for one no pipeline has (SETUP, UNSPECIFIED). */
export function pipelineStatesFromProto(s: TaskStatus): PipelineState[] | undefined {
  if (s === TaskStatus.WAITING || s === TaskStatus.RUNNING) return ["running"];
  const state = statusFromProto(s);
  return state === "stop" || state === "done" || state === "stopped" ? [state] : undefined;
}

/** The wire spec of a stored definition: the file's lists and its tasks as written. */
export function pipelineSpecFromDefinition(d: PipelineDefinition): PipelineSpec {
  return create(PipelineSpecSchema, {
    pipelineName: d.name,
    chain: [...d.chain],
    group: [...d.group],
    chord: [...d.chord],
    queue: d.queue,
    concurrency: d.concurrency,
    tasks: Object.fromEntries(d.members.map((m) => [m.key, specFromDefinition(m.definition)])),
  });
}

/**
 * The wire form of a pipeline. tasks gives the current member tasks (by id) for their live
 * status; without one a member's status is derived from its row (DONE once it has a result).
 */
export function pipelineToProto(
  p: PipelineRecord,
  members: MemberRecord[],
  tasks: ReadonlyMap<string, TaskRecord> = new Map(),
): Pipeline {
  const defs = new Map(p.definition.members.map((m) => [m.key, m]));
  return create(PipelineSchema, {
    id: p.id,
    spec: pipelineSpecFromDefinition(p.definition),
    ownerId: p.ownerId,
    taskIds: Object.fromEntries(members.filter((m) => m.taskId).map((m) => [m.key, m.taskId])),
    status: pipelineStatusToProto(p),
    result: resultToProto(p.result),
    createTime: ts(p.createTime),
    startTime: ts(p.startTime),
    endTime: ts(p.endTime),
    run: p.run,
    graph: Object.fromEntries(
      p.definition.members.map((m) => [m.key, create(PipelineDependenciesSchema, { keys: m.dependsOn })]),
    ),
    members: members.map((m) => {
      const task = m.taskId ? tasks.get(m.taskId) : undefined;
      const status =
        m.state === "skipped" || m.result !== "none"
          ? TaskStatus.DONE
          : task
            ? statusToProto(task.status)
            : m.state === "created"
              ? TaskStatus.WAITING
              : TaskStatus.UNSPECIFIED;
      return create(PipelineMemberSchema, {
        key: m.key,
        taskId: m.taskId,
        state: MEMBER_STATE[m.state],
        status,
        result: m.result === "skipped" ? TaskResult.SKIPPED : resultToProto(m.result),
        dependsOn: defs.get(m.key)?.dependsOn ?? [],
        startTime: ts(m.startTime ?? task?.startTime ?? null),
        endTime: ts(m.endTime ?? task?.endTime ?? null),
      });
    }),
  });
}
