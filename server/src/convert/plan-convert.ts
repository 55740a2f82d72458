import { create, fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  CatchUp,
  PipelineSpecSchema,
  PlanRunKind,
  PlanRunSchema,
  PlanSchema,
  PlanSpecSchema,
  TaskStatus,
  TaskResult,
  type Plan,
  type PlanRun,
  type PlanSpec,
} from "@mottainai/proto";
import type { PlanDefinition, PlanRecord, PlanRunRecord } from "../store/plan-store.js";
import type { TaskRecord } from "../store/task-store.js";
import { definitionFromSpec, resultToProto, specFromDefinition, statusToProto } from "./task-convert.js";

const ts = (ms: number | null | undefined) => (ms ? timestampFromMs(ms) : undefined);

/** The stored definition of a wire plan spec whose target is set (the service checks that first). */
export function planDefinitionFromSpec(spec: PlanSpec): PlanDefinition {
  const target = spec.target;
  return {
    planned: spec.planned.trim(),
    timezone: spec.timezone.trim(),
    catchUp: spec.catchUp === CatchUp.ONCE ? "once" : "skip",
    target:
      target.case === "pipeline"
        ? { kind: "pipeline", pipeline: toJson(PipelineSpecSchema, target.value) }
        : { kind: "task", task: definitionFromSpec(target.value!) },
  };
}

/** The wire spec of a stored plan definition. */
export function planSpecFromDefinition(d: PlanDefinition): PlanSpec {
  return create(PlanSpecSchema, {
    planned: d.planned,
    timezone: d.timezone,
    catchUp: d.catchUp === "once" ? CatchUp.ONCE : CatchUp.SKIP,
    target:
      d.target.kind === "pipeline"
        ? { case: "pipeline", value: fromJson(PipelineSpecSchema, d.target.pipeline as JsonValue) }
        : { case: "task", value: specFromDefinition(d.target.task) },
  });
}

/** The wire form of a run; task is the run's task when it is known. */
export function planRunToProto(r: PlanRunRecord, task?: TaskRecord): PlanRun {
  return create(PlanRunSchema, {
    scheduledTime: ts(r.scheduledTime),
    fireTime: ts(r.fireTime),
    targetId: r.targetId,
    kind: r.kind === "pipeline" ? PlanRunKind.PIPELINE : PlanRunKind.TASK,
    manual: r.manual,
    status: task ? statusToProto(task.status) : TaskStatus.UNSPECIFIED,
    result: task ? resultToProto(task.result) : TaskResult.UNSPECIFIED,
  });
}

/** The wire form of a plan; runs newest first (their tasks where known), the latest gives last_run_*. */
export function planToProto(p: PlanRecord, runs: PlanRunRecord[], history: PlanRun[] = []): Plan {
  const last = runs[0];
  return create(PlanSchema, {
    id: p.id,
    spec: planSpecFromDefinition(p.definition),
    ownerId: p.ownerId,
    nextRunTime: p.paused ? undefined : ts(p.nextRunTime),
    lastRunTime: ts(last?.fireTime),
    lastRunId: last?.targetId ?? "",
    createTime: ts(p.createTime),
    paused: p.paused,
    runs: history,
    updateTime: ts(p.updateTime),
  });
}
