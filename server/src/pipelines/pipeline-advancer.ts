import { topologicalOrder } from "@mottainai/proto";
import type { Logger } from "pino";
import { newId } from "../auth/secrets.js";
import type { EventBus } from "../events/event-bus.js";
import type { EventRecord } from "../store/event-store.js";
import { newWaitingTask } from "../store/new-task.js";
import type { MemberOutcome, MemberRecord, PipelineMemberDefinition, PipelineRecord } from "../store/pipeline-store.js";
import type { Store } from "../store/store.js";
import type { TaskOutcome, TaskRecord } from "../store/task-store.js";
import { pipelineSnapshot } from "./pipeline-definition.js";

/** What the advancer needs of the scheduler: a wake-up for new work. */
export interface PipelineScheduler {
  kick(maybeWaiting?: boolean): void;
}

/** Dependencies and timers of a PipelineAdvancer. */
export interface PipelineAdvancerOptions {
  store: Store;
  events: EventBus;
  scheduler: PipelineScheduler;
  logger: Logger;
  /**
   * How often every unfinished pipeline is advanced regardless of events: a safety net for an
   * event this server missed (another server died between a task's end and its pipeline's
   * advance). Default 5 s; 0 disables it.
   */
  sweepIntervalMs?: number;
  now?: () => number;
  /** Id of a new member task. Default newId. */
  newTaskId?: () => string;
}

const FINISHED_TASK = new Set(["done", "stopped"]);

/** How long one pass may hold a pipeline's lock before another server may take it (a holder that died). */
const LOCK_TTL_MS = 60_000;

/** Pause before trying a pipeline's lock again while another server holds it. */
const LOCK_RETRY_MS = 25;
const NOT_SUCCESS = new Set<MemberOutcome>(["failed", "error", "skipped"]);

/** A member task's outcome for its pipeline: a stop or a lost attempt without a result is an error. */
const outcomeOf = (task: TaskRecord): TaskOutcome => (task.result === "none" ? "error" : task.result);

/** success only if every member succeeded; failed if any failed; error otherwise (errors, skips of a stop). */
export function pipelineResult(members: readonly MemberRecord[]): TaskOutcome {
  if (members.every((m) => m.result === "success")) return "success";
  if (members.some((m) => m.result === "failed")) return "failed";
  return "error";
}

/**
 * Moves pipelines forward, deciding everything from the store (never from memory), so that any
 * server, any number of servers, and a server restarted at any point agree:
 * - a member whose parents all succeeded is claimed (PipelineStore.claimMember, with the id its
 *   task will have) and then its task created, while fewer than `concurrency` members run;
 *   whoever finds a claimed member without its task creates it under the claimed id;
 * - a member with a parent that failed, errored or was skipped, and every pending member of a
 *   stopping pipeline, is claimed as skipped; independent branches go on;
 * - when every member has finished the pipeline is done (or stopped) with the derived result,
 *   and `pipeline.finished` (or `pipeline.stopped`) is published by the server whose
 *   compare-and-set won.
 *
 * advance(id) runs on every member task's end (task.finished, task.stopped on the event bus,
 * which on a shared store carries every server's events), on creation, stop and retry, for
 * every unfinished pipeline at start(), and in a slow sweep. Passes over one pipeline never
 * overlap: in one process a request during a pass runs one more pass after it, and across
 * processes each pass holds the pipeline's store lock (PipelineStore.lock), so `concurrency`
 * holds cluster-wide; the member claims stay single-winner even without it.
 */
export class PipelineAdvancer {
  private readonly passes = new Map<string, { again: boolean; done: Promise<void> }>();
  private unlisten: (() => void) | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly now: () => number;
  private readonly newTaskId: () => string;
  /** This advancer's name as a lock holder. */
  private readonly holder = newId();

  constructor(private readonly o: PipelineAdvancerOptions) {
    this.now = o.now ?? Date.now;
    this.newTaskId = o.newTaskId ?? newId;
  }

  /** Listens for member task ends, then advances every unfinished pipeline (the restart case). */
  async start(): Promise<void> {
    this.unlisten = this.o.events.listen((e) => this.onEvent(e));
    await this.sweep();
    const interval = this.o.sweepIntervalMs ?? 5000;
    if (interval > 0) {
      this.sweepTimer = setInterval(() => void this.sweep(), interval);
      this.sweepTimer.unref();
    }
  }

  /** Stops listening and sweeping; passes under way finish. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    this.unlisten?.();
    clearInterval(this.sweepTimer);
    await Promise.all([...this.passes.values()].map((p) => p.done));
  }

  /** Advances every unfinished pipeline once. Never rejects. */
  async sweep(): Promise<void> {
    try {
      for (const id of await this.o.store.pipelines.listUnfinished()) await this.advance(id);
    } catch (err) {
      this.o.logger.error({ err }, "pipeline sweep failed");
    }
  }

  /** Advances one pipeline; resolves when a pass that started after this call has ended. Never rejects. */
  advance(id: string): Promise<void> {
    const running = this.passes.get(id);
    if (running) {
      running.again = true;
      return running.done;
    }
    const entry = { again: false, done: Promise.resolve() };
    entry.done = (async () => {
      do {
        entry.again = false;
        try {
          await this.locked(id, () => this.pass(id));
        } catch (err) {
          this.o.logger.error({ err, pipelineId: id }, "pipeline advance failed");
        }
      } while (entry.again && !this.closed);
      this.passes.delete(id);
    })();
    this.passes.set(id, entry);
    return entry.done;
  }

  /** Runs body under the pipeline's store lock, waiting while another server holds it. */
  private async locked(id: string, body: () => Promise<void>): Promise<void> {
    const { pipelines } = this.o.store;
    while (!(await pipelines.lock(id, this.holder, this.now(), this.now() + LOCK_TTL_MS))) {
      if (this.closed) return;
      await new Promise((r) => setTimeout(r, LOCK_RETRY_MS));
    }
    try {
      await body();
    } finally {
      await pipelines.unlock(id, this.holder);
    }
  }

  private onEvent(e: EventRecord): void {
    if (this.closed || e.payloadKind !== "task") return;
    if (e.type !== "task.finished" && e.type !== "task.stopped") return;
    const task = e.payload as TaskRecord | null;
    if (task?.pipelineId) void this.advance(task.pipelineId);
  }

  private async pass(id: string): Promise<void> {
    const { pipelines, tasks } = this.o.store;
    const p = await pipelines.get(id);
    if (!p || p.status === "done" || p.status === "stopped") return;
    const byKey = new Map((await pipelines.members(id)).map((m) => [m.key, m]));
    const defs = new Map(p.definition.members.map((m) => [m.key, m]));
    const stopping = p.status === "stop";

    // Created members: record the end of finished tasks, re-create a task a crash cut off.
    for (const m of byKey.values()) {
      if (m.state !== "created" || m.result !== "none") continue;
      const task = await tasks.get(m.taskId);
      const def = defs.get(m.key);
      if (!task) {
        if (stopping || !def) {
          await pipelines.endMember({ pipelineId: id, key: m.key, run: m.run, result: "error", startTime: null, endTime: null });
          byKey.set(m.key, { ...m, result: "error" });
        } else {
          await this.createTask(p, def, m.taskId, byKey);
        }
      } else if (FINISHED_TASK.has(task.status)) {
        const result = outcomeOf(task);
        await pipelines.endMember({
          pipelineId: id,
          key: m.key,
          run: m.run,
          result,
          startTime: task.startTime,
          endTime: task.endTime,
        });
        byKey.set(m.key, { ...m, result, startTime: task.startTime, endTime: task.endTime });
      }
    }

    // Pending members, parents first: skip, start, or leave waiting.
    let running = [...byKey.values()].filter((m) => m.state === "created" && m.result === "none").length;
    const order = topologicalOrder({
      order: p.definition.members.map((m) => m.key),
      parents: Object.fromEntries(p.definition.members.map((m) => [m.key, m.dependsOn])),
    });
    for (const key of order) {
      const m = byKey.get(key);
      const def = defs.get(key);
      if (!m || !def || m.state !== "pending") continue;
      const parents = def.dependsOn.map((k) => byKey.get(k)?.result ?? "none");
      if (stopping || parents.some((r) => NOT_SUCCESS.has(r))) {
        const after = await pipelines.claimMember(id, key, m.run, { kind: "skip" });
        if (after) byKey.set(key, after);
        continue;
      }
      if (!parents.every((r) => r === "success")) continue;
      if (p.definition.concurrency > 0 && running >= p.definition.concurrency) continue;
      const taskId = this.newTaskId();
      const after = await pipelines.claimMember(id, key, m.run, { kind: "task", taskId });
      if (!after) continue;
      byKey.set(key, after);
      if (after.state !== "created") continue;
      running++;
      if (after.taskId === taskId) await this.createTask(p, def, taskId, byKey);
    }

    const members = p.definition.members.map((d) => byKey.get(d.key)).filter((m): m is MemberRecord => m !== undefined);
    if (members.some((m) => m.result === "none")) return;
    const status = stopping ? "stopped" : "done";
    const ended = await pipelines.update({
      id,
      ifStatus: [p.status],
      set: { status, result: pipelineResult(members), endTime: this.now() },
      now: this.now(),
    });
    if (ended) {
      await this.publish(status === "stopped" ? "pipeline.stopped" : "pipeline.finished", ended, members, {
        result: ended.result,
      });
    }
  }

  /**
   * Creates a claimed member's task under the claimed id: the member's task with the pipeline's
   * queue when it has none, the pipeline's owner, and with inherit_artefacts its parents' tasks
   * appended to root_task. A task that exists already (another server, or this one before a
   * restart, created it) is left alone.
   */
  private async createTask(
    p: PipelineRecord,
    def: PipelineMemberDefinition,
    taskId: string,
    byKey: ReadonlyMap<string, MemberRecord>,
  ): Promise<void> {
    const { tasks, pipelines } = this.o.store;
    if (await tasks.get(taskId)) return;
    const parentTasks = def.dependsOn.map((k) => byKey.get(k)?.taskId ?? "");
    const d = def.definition;
    const definition = {
      ...d,
      name: d.name || def.key,
      queue: d.queue || p.definition.queue,
      dependsOn: [...def.dependsOn],
      inheritArtefacts: def.inheritArtefacts,
      rootTask: def.inheritArtefacts ? [...d.rootTask, ...parentTasks] : [...d.rootTask],
    };
    const now = this.now();
    let task: TaskRecord;
    try {
      task = await tasks.create({ ...newWaitingTask({ id: taskId, definition, ownerId: p.ownerId, now }), pipelineId: p.id });
    } catch (err) {
      if (await tasks.get(taskId)) return;
      throw err;
    }
    await this.o.events.publish("task.created", task.id, { kind: "task", value: task }, { pipeline_id: p.id, key: def.key });
    this.o.scheduler.kick(true);
    const started = await pipelines.update({ id: p.id, ifNotStarted: true, set: { startTime: now }, now });
    if (started) await this.publish("pipeline.started", started, await pipelines.members(p.id));
  }

  private async publish(type: string, p: PipelineRecord, members: MemberRecord[], attributes: Record<string, string> = {}) {
    await this.o.events.publish(
      type,
      p.id,
      { kind: "pipeline", value: pipelineSnapshot(p, members) },
      { owner_id: p.ownerId, ...attributes },
    );
  }
}
