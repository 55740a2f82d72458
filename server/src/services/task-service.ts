import type { ServiceImpl, HandlerContext } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  formatSpecWarning,
  normalizeTaskPaths,
  parseTaskFileWithWarnings,
  SpecError,
  TaskService,
  taskSpecWarnings,
  validateTaskSpec,
  type CreateTaskRequest,
  type TaskSpec,
} from "@mottainai/proto";
import { isPrivileged, requireUser } from "../auth/principal.js";
import { newId } from "../auth/secrets.js";
import {
  definitionFromSpec,
  resultFromProto,
  specFromDefinition,
  statusFromProto,
  statusToProto,
  taskToProto,
} from "../convert/task-convert.js";
import type { Scheduler } from "../dispatch/scheduler.js";
import type { EventBus } from "../events/event-bus.js";
import type { TaskLogStore } from "../logs/task-log-store.js";
import type { Store } from "../store/store.js";
import { newWaitingTask } from "../store/new-task.js";
import type { TaskRecord, TaskState } from "../store/task-store.js";
import { removeTask } from "../tasks/remove-task.js";
import { loadOwned } from "../auth/owned-resource.js";

/** Dependencies of the task service. */
export interface TaskServiceOptions {
  store: Store;
  scheduler: Scheduler;
  logs: TaskLogStore;
  events: EventBus;
  /**
   * When other servers append to logs (a shared store), how often a followed log is re-read:
   * their appends raise no local signal. Default 0: appends here signal every follower.
   */
  remoteLogPollMs?: number;
  now?: () => number;
}

const FINISHED: TaskState[] = ["done", "stopped"];

/**
 * The spec a CreateTask request asks for, with its warnings: the parsed `task_file` with the
 * fields `spec` sets over it, or `spec` alone.
 */
function requestedSpec(req: CreateTaskRequest): { spec: TaskSpec; warnings: string[] } {
  if (req.taskFile !== "") {
    try {
      const { spec, warnings } = parseTaskFileWithWarnings(req.taskFile, req.taskFileName || "task_file", req.spec);
      return { spec, warnings };
    } catch (err) {
      if (err instanceof SpecError) throw new ConnectError(`task_file: ${err.message}`, Code.InvalidArgument);
      throw err;
    }
  }
  if (!req.spec) throw new ConnectError("spec: a task spec or a task_file is required", Code.InvalidArgument);
  const warnings = taskSpecWarnings(req.spec).map((w) => formatSpecWarning(`spec.${w.field}`, w.message));
  return { spec: req.spec, warnings };
}
const LOG_READ_BYTES = 256 * 1024;

/** TaskService: converts between the wire and the store, checks ownership, delegates to the scheduler. */
export function createTaskService(o: TaskServiceOptions): ServiceImpl<typeof TaskService> {
  const now = o.now ?? Date.now;

  const load = (ctx: HandlerContext, id: string): Promise<TaskRecord> =>
    loadOwned(ctx, "task", id, (id) => o.store.tasks.get(id));

  /** The wire task; the live log size only while an attempt runs (the store has it otherwise). */
  const view = async (task: TaskRecord) => {
    const active = !FINISHED.includes(task.status) && task.status !== "waiting";
    const logSize = active ? await o.logs.size(task.id) : task.logSize;
    return taskToProto(task, await o.store.tasks.attempts(task.id), o.scheduler.explainWaiting(task), logSize);
  };

  const insert = async (ownerId: string, spec: TaskSpec, targetNode: string): Promise<TaskRecord> => {
    const issues = validateTaskSpec(spec);
    if (issues[0]) throw new ConnectError(`spec.${issues[0].field}: ${issues[0].message}`, Code.InvalidArgument);
    if (targetNode) {
      try {
        new RegExp(targetNode);
      } catch (err) {
        throw new ConnectError(`target_node: ${(err as Error).message}`, Code.InvalidArgument);
      }
    }
    const task = await o.store.tasks.create(
      newWaitingTask({ id: newId(), definition: definitionFromSpec(normalizeTaskPaths(spec)), ownerId, targetNode, now: now() }),
    );
    await o.events.publish("task.created", task.id, { kind: "task", value: task });
    o.scheduler.kick(true);
    return task;
  };

  return {
    async createTask(req, ctx) {
      const user = requireUser(ctx);
      const { spec, warnings } = requestedSpec(req);
      return { task: await view(await insert(user.id, spec, req.targetNode)), warnings };
    },

    async getTask(req, ctx) {
      return { task: await view(await load(ctx, req.id)) };
    },

    async listTasks(req, ctx) {
      const user = requireUser(ctx);
      const limit = Math.min(req.pageSize || 50, 1000);
      let beforeSeq: number | undefined;
      if (req.pageToken) {
        beforeSeq = Number(req.pageToken);
        if (!Number.isSafeInteger(beforeSeq))
          throw new ConnectError("page_token: not a token this server issued", Code.InvalidArgument);
      }
      const statuses = req.statuses.map((s) => {
        const state = statusFromProto(s);
        if (!state) throw new ConnectError(`statuses: ${s} is not a task status`, Code.InvalidArgument);
        return state;
      });
      const ownerId = isPrivileged(user) ? req.ownerId || undefined : user.id;
      if (!isPrivileged(user) && req.ownerId && req.ownerId !== user.id) {
        throw new ConnectError("owner_id: only managers and admins list other users' tasks", Code.PermissionDenied);
      }
      const tasks = await o.store.tasks.list({
        statuses,
        result: req.result ? resultFromProto(req.result) : undefined,
        ownerId,
        pipelineId: req.pipelineId || undefined,
        queue: req.queue || undefined,
        beforeSeq,
        limit: limit + 1,
      });
      // One more than the page is read so that the last page says so with an empty token.
      const page = tasks.slice(0, limit);
      const last = page[page.length - 1];
      return {
        tasks: await Promise.all(page.map(view)),
        nextPageToken: tasks.length > limit && last ? String(last.seq) : "",
      };
    },

    async stopTask(req, ctx) {
      const task = await load(ctx, req.id);
      if (FINISHED.includes(task.status)) {
        throw new ConnectError(`task ${task.id} already ended (${task.status})`, Code.FailedPrecondition);
      }
      if (task.status !== "stop") await o.scheduler.stop(task);
      return { task: await view((await o.store.tasks.get(task.id)) ?? task) };
    },

    async cloneTask(req, ctx) {
      const user = requireUser(ctx);
      const task = await load(ctx, req.id);
      return { task: await view(await insert(user.id, specFromDefinition(task.definition), task.targetNode)) };
    },

    async restartTask(req, ctx) {
      const task = await load(ctx, req.id);
      const restarted = await o.store.tasks.restart(task.id, now());
      if (!restarted) {
        throw new ConnectError(`task ${task.id} has not ended (${task.status}); stop it first`, Code.FailedPrecondition);
      }
      await o.events.publish("task.restarted", task.id, { kind: "task", value: restarted });
      o.scheduler.kick(true);
      return { task: await view(restarted) };
    },

    async deleteTask(req, ctx) {
      const task = await load(ctx, req.id);
      if (!FINISHED.includes(task.status) && task.status !== "waiting") {
        throw new ConnectError(`task ${task.id} is ${task.status}; stop it before removing it`, Code.FailedPrecondition);
      }
      if (task.status === "waiting" && !(await o.store.tasks.stopWaiting(task.id, now()))) {
        throw new ConnectError(`task ${task.id} was just dispatched; stop it before removing it`, Code.FailedPrecondition);
      }
      if (!(await removeTask(o, task.id))) throw new ConnectError(`task ${task.id} not found`, Code.NotFound);
      return {};
    },

    async *followTaskLog(req, ctx) {
      /** Something may have been appended or changed since the last read. */
      let signalled = false;
      /** The task's state changed: re-read it (appends alone do not need that). */
      let changed = false;
      let wake: (() => void) | undefined;
      const notify = () => {
        signalled = true;
        wake?.();
      };
      const onAppend = (id: string) => {
        if (id === req.id) notify();
      };
      // Listen before the first read of the task, so that no change between the two is missed.
      const unlisten = o.events.listen((e) => {
        if (e.subjectId !== req.id) return;
        changed = true;
        notify();
      });
      o.logs.on("append", onAppend);
      ctx.signal.addEventListener("abort", notify);
      try {
        let task = await load(ctx, req.id);
        let offset = Number(req.offset);
        for (;;) {
          signalled = false;
          const data = await o.logs.read(task.id, offset, LOG_READ_BYTES);
          if (data.length > 0) {
            yield { offset: BigInt(offset), data, status: statusToProto(task.status) };
            offset += data.length;
            continue;
          }
          if (!req.follow || FINISHED.includes(task.status)) return;
          if (!signalled) {
            let timer: NodeJS.Timeout | undefined;
            await new Promise<void>((resolve) => {
              wake = resolve;
              if (o.remoteLogPollMs) timer = setTimeout(resolve, o.remoteLogPollMs);
            });
            clearTimeout(timer);
          }
          wake = undefined;
          if (ctx.signal.aborted) return;
          if (changed) {
            changed = false;
            task = (await o.store.tasks.get(task.id)) ?? { ...task, status: "done" };
          }
        }
      } finally {
        o.logs.off("append", onAppend);
        ctx.signal.removeEventListener("abort", notify);
        unlisten();
      }
    },
  };
}
