import type { PipelineSpec } from "@mottainai/proto";
import type { EventBus } from "../events/event-bus.js";
import { newWaitingTask } from "../store/new-task.js";
import type { TaskDefinition, TaskStore } from "../store/task-store.js";

/** The environment variable that carries, in every task a plan fires, the plan's id. */
export const PLAN_ID_ENV = "MOTTAINAI_PLAN_ID";

/** One firing to launch: the target id was chosen when the firing was claimed. */
export interface LaunchRequest {
  /** The task or pipeline id to create. */
  id: string;
  /** The plan owner: the target is created with their rights. */
  ownerId: string;
  planId: string;
}

/**
 * Creates what a plan fires. Both methods must be idempotent for one id: the firing loop calls
 * again after a crash between its claim and the launch, and two servers may complete one firing
 * at once. They resolve to true when this call created the target, false when it already
 * existed; they reject only when it could not be created (the firing is then retried).
 */
export interface PlanTargetLauncher {
  /** Whether launchPipeline works (plans of pipelines are refused otherwise). */
  readonly pipelines: boolean;
  launchTask(request: LaunchRequest & { definition: TaskDefinition }): Promise<boolean>;
  launchPipeline(request: LaunchRequest & { spec: PipelineSpec }): Promise<boolean>;
}

/** What the task side of the launcher needs. */
export interface TaskLauncherOptions {
  tasks: TaskStore;
  events: Pick<EventBus, "publish">;
  /** Tells dispatch a task is waiting (the dispatch Scheduler's kick). */
  kick: () => void;
  now?: () => number;
  /**
   * Launches a pipeline plan's firing; without it, `pipelines` is false and launchPipeline
   * rejects (wired at merge to server/src/pipelines' createPipeline).
   */
  launchPipeline?: PlanTargetLauncher["launchPipeline"];
}

/**
 * The launcher of plan tasks: a normal waiting task owned by the plan owner, with
 * MOTTAINAI_PLAN_ID=<plan id> added to its environment (labels would restrict which agents run
 * it), created under the id chosen at claim time. Creating an id that exists is not an error:
 * it is the same firing completed twice.
 */
export function createTaskLauncher(o: TaskLauncherOptions): PlanTargetLauncher {
  const now = o.now ?? Date.now;
  return {
    pipelines: o.launchPipeline !== undefined,
    async launchTask({ id, ownerId, planId, definition }) {
      if (await o.tasks.get(id)) return false;
      const environment = [...definition.environment.filter((e) => !e.startsWith(`${PLAN_ID_ENV}=`)), `${PLAN_ID_ENV}=${planId}`];
      let task;
      try {
        task = await o.tasks.create(newWaitingTask({ id, definition: { ...definition, environment }, ownerId, now: now() }));
      } catch (err) {
        if (await o.tasks.get(id)) return false;
        throw err;
      }
      await o.events.publish("task.created", task.id, { kind: "task", value: task });
      o.kick();
      return true;
    },
    async launchPipeline(request) {
      if (!o.launchPipeline) throw new Error("this server cannot launch pipelines yet");
      return o.launchPipeline(request);
    },
  };
}
