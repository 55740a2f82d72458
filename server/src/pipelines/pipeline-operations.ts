import { Code, ConnectError } from "@connectrpc/connect";
import { validatePipelineSpec, type PipelineSpec } from "@mottainai/proto";
import { newId } from "../auth/secrets.js";
import type { EventBus } from "../events/event-bus.js";
import type { TaskLogStore } from "../logs/task-log-store.js";
import type { PipelineRecord } from "../store/pipeline-store.js";
import type { Store } from "../store/store.js";
import type { TaskRecord } from "../store/task-store.js";
import { removeTask } from "../tasks/remove-task.js";
import type { PipelineAdvancer } from "./pipeline-advancer.js";
import { definitionFromPipelineSpec, pipelineSnapshot } from "./pipeline-definition.js";

/** What pipeline operations need; the server builds one (server.ts) and hands it to PipelineService and plans. */
export interface PipelineContext {
  store: Store;
  events: EventBus;
  advancer: PipelineAdvancer;
  /** Stops a member task (Scheduler.stop): at once when waiting, through its agent when running. */
  stopTask: (task: TaskRecord) => Promise<boolean>;
  /** Task logs, removed with the member tasks of a deleted pipeline. */
  logs: TaskLogStore;
  now?: () => number;
}

const FINISHED: PipelineRecord["status"][] = ["done", "stopped"];

async function publish(o: PipelineContext, type: string, p: PipelineRecord, attributes: Record<string, string> = {}) {
  const members = await o.store.pipelines.members(p.id);
  await o.events.publish(
    type,
    p.id,
    { kind: "pipeline", value: pipelineSnapshot(p, members) },
    { owner_id: p.ownerId, ...attributes },
  );
}

/**
 * Creates a pipeline owned by ownerId from spec and starts the members that wait for nothing;
 * resolves to the new pipeline's id once they are created. This is how plans fire a pipeline:
 * the pipeline (and each of its member tasks) runs with the owner's rights.
 * Publishes `pipeline.created` (and `pipeline.started` with the first member task). `options.id`
 * creates it under an id chosen beforehand (a plan's firing claims it first); the store refuses
 * an id that exists.
 *
 * @throws ConnectError InvalidArgument `spec.<field>: <reason>` for an invalid spec (the field
 * as in the pipeline file: `tasks.build.depends_on`, `chain[1]`, …).
 */
export async function createPipeline(
  o: PipelineContext,
  ownerId: string,
  spec: PipelineSpec,
  options: { id?: string } = {},
): Promise<string> {
  const [issue] = validatePipelineSpec(spec);
  if (issue) throw new ConnectError(`spec.${issue.field}: ${issue.message}`, Code.InvalidArgument);
  const now = (o.now ?? Date.now)();
  const pipeline = await o.store.pipelines.create({
    id: options.id ?? newId(),
    ownerId,
    definition: definitionFromPipelineSpec(spec),
    status: "running",
    result: "none",
    run: 1,
    createTime: now,
    startTime: null,
    endTime: null,
    updateTime: now,
  });
  await publish(o, "pipeline.created", pipeline);
  await o.advancer.advance(pipeline.id);
  return pipeline.id;
}

/**
 * Stops a running pipeline: members not started yet are skipped, running member tasks are
 * stopped; the pipeline ends `stopped` once they have (publishing `pipeline.stopped`).
 * Stopping a stopping pipeline is a no-op.
 *
 * @throws ConnectError FailedPrecondition when the pipeline already ended.
 */
export async function stopPipeline(o: PipelineContext, p: PipelineRecord): Promise<void> {
  const now = (o.now ?? Date.now)();
  if (FINISHED.includes(p.status)) {
    throw new ConnectError(`pipeline ${p.id} already ended (${p.status})`, Code.FailedPrecondition);
  }
  const stopping = await o.store.pipelines.update({ id: p.id, ifStatus: ["running"], set: { status: "stop" }, now });
  if (!stopping && (await o.store.pipelines.get(p.id))?.status !== "stop") {
    throw new ConnectError(`pipeline ${p.id} ended meanwhile`, Code.FailedPrecondition);
  }
  await o.advancer.advance(p.id);
  for (const m of await o.store.pipelines.members(p.id)) {
    if (m.state !== "created" || m.result !== "none") continue;
    const task = await o.store.tasks.get(m.taskId);
    if (task && task.status !== "done" && task.status !== "stopped" && task.status !== "stop") await o.stopTask(task);
  }
  await o.advancer.advance(p.id);
}

/**
 * Runs a finished pipeline again: every member, or with failedOnly only those that did not
 * succeed (failed, error, skipped); the others keep their tasks and results, and their
 * artefacts feed the rerun members. Publishes `pipeline.started` with attribute `run`.
 *
 * @throws ConnectError FailedPrecondition while the pipeline runs, or when failedOnly finds
 * nothing to rerun.
 */
export async function retryPipeline(o: PipelineContext, p: PipelineRecord, failedOnly: boolean): Promise<void> {
  if (!FINISHED.includes(p.status)) {
    throw new ConnectError(
      `pipeline ${p.id} is ${p.status === "stop" ? "stopping" : "running"}; wait for it to end`,
      Code.FailedPrecondition,
    );
  }
  const members = await o.store.pipelines.members(p.id);
  const keys = members.filter((m) => !failedOnly || m.result !== "success").map((m) => m.key);
  if (keys.length === 0)
    throw new ConnectError(`pipeline ${p.id}: every member succeeded, nothing to retry`, Code.FailedPrecondition);
  const retried = await o.store.pipelines.retry(p.id, p.run, keys, (o.now ?? Date.now)());
  if (!retried) throw new ConnectError(`pipeline ${p.id} was retried or removed meanwhile`, Code.FailedPrecondition);
  await publish(o, "pipeline.started", retried, { run: String(retried.run) });
  await o.advancer.advance(p.id);
}

/**
 * Removes a finished pipeline with every task it created (their logs and artefacts too) and
 * publishes `pipeline.deleted`.
 *
 * @throws ConnectError FailedPrecondition while the pipeline runs.
 */
export async function deletePipeline(o: PipelineContext, p: PipelineRecord): Promise<void> {
  if (!FINISHED.includes(p.status)) {
    throw new ConnectError(`pipeline ${p.id} is ${p.status}; stop it before removing it`, Code.FailedPrecondition);
  }
  if (!(await o.store.pipelines.delete(p.id))) throw new ConnectError(`pipeline ${p.id} not found`, Code.NotFound);
  for (;;) {
    const tasks = await o.store.tasks.list({ pipelineId: p.id, limit: 500 });
    const removable = tasks.filter((t) => t.status === "done" || t.status === "stopped");
    for (const t of removable) await removeTask(o, t.id, { pipeline_id: p.id });
    if (removable.length === 0 || tasks.length < 500) break;
  }
  await o.events.publish("pipeline.deleted", p.id, undefined, { owner_id: p.ownerId });
}
