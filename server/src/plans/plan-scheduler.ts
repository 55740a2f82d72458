import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { PipelineSpecSchema } from "@mottainai/proto";
import type { Logger } from "pino";
import type { EventBus } from "../events/event-bus.js";
import type { PlanRecord, PlanRunRecord, PlanStore } from "../store/plan-store.js";
import { PLAN_FIRED } from "./plan-events.js";
import type { PlanTargetLauncher } from "./plan-target-launcher.js";
import { latestOccurrence, nextOccurrence } from "./schedule.js";

/** Dependencies and tuning of the firing loop. */
export interface PlanSchedulerOptions {
  plans: PlanStore;
  launcher: PlanTargetLauncher;
  events: Pick<EventBus, "publish">;
  logger: Logger;
  newId: () => string;
  now?: () => number;
  /** Time between two sweeps (every plan re-read, stale claims completed). Default 2 s; 0 disables them (tests). */
  sweepIntervalMs?: number;
  /** How late an occurrence is still on time (see ServerConfig.planLateGraceMs). Default 60 s. */
  lateGraceMs?: number;
  /** A claim not launched after this long is completed by whichever server's sweep sees it. Default 3 s. */
  claimTimeoutMs?: number;
}

/** setTimeout's longest delay; a later due time is re-armed by the sweeps before it. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Fires plans: one timer per plan at its next due time (no polling), plus a coarse sweep that
 * re-reads every plan, so plans created, changed or removed through another server are seen, and
 * completes firings a dead server claimed but never launched.
 *
 * Every firing is first claimed in the store under `<plan id>@<scheduled time>` (PlanStore.claimRun,
 * single-winner across servers), with the task id chosen then; only the winner launches, and a
 * launch is idempotent for that id. So each occurrence is fired once across every server sharing
 * the store, and a crash between claim and launch is completed later, never repeated.
 *
 * A due occurrence found late (a server was down) fires only if it is at most lateGraceMs late.
 * When several occurred since, only the latest is considered: `catch_up: skip` fires it only if
 * it is on time, `catch_up: once` fires it anyway, as the one run for the gap. Never a burst.
 *
 * Lifecycle: start() once, then rearm(id) after each create, update, pause, resume and delete
 * (and runNow for RunPlan); close() clears every timer and waits for firings in progress.
 */
export class PlanScheduler {
  private readonly now: () => number;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Work per plan runs one at a time, in call order. */
  private readonly chains = new Map<string, Promise<void>>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly o: PlanSchedulerOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Sweeps once (arming every plan's timer), then every sweepIntervalMs. */
  async start(): Promise<void> {
    await this.sweep();
    const interval = this.o.sweepIntervalMs ?? 2000;
    if (interval > 0 && !this.closed) {
      this.sweepTimer = setInterval(() => void this.sweep(), interval);
      this.sweepTimer.unref();
    }
  }

  /** Stops every timer and waits for work in progress. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweepTimer);
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await this.sweeping;
    await Promise.all([...this.chains.values()]);
  }

  /** Re-reads the plan and arms (or clears) its timer, firing it if due. Resolves when done. */
  rearm(planId: string): Promise<void> {
    return this.serial(planId, async () => {
      const plan = await this.o.plans.get(planId);
      if (plan) await this.evaluate(plan);
      else this.clearTimer(planId);
    });
  }

  /**
   * Fires the plan now, outside its schedule (RunPlan), paused or not: a run keyed by a fresh id,
   * so it never takes an occurrence's key. Resolves to the run once its target is launched.
   */
  async runNow(plan: PlanRecord): Promise<PlanRunRecord> {
    const now = this.now();
    const run = this.newRun(plan, `${plan.id}!${this.o.newId()}`, now, true);
    if (!(await this.o.plans.claimRun(run))) throw new Error(`plan ${plan.id} no longer exists`);
    await this.launch(plan, run);
    return { ...run, launched: true };
  }

  /**
   * Re-reads every active plan, (re)arming timers and firing what is due, drops the timers of
   * plans gone or paused, and completes claims older than claimTimeoutMs that were not launched.
   * Concurrent calls share one pass.
   */
  sweep(): Promise<void> {
    this.sweeping ??= this.sweepOnce().finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  private async sweepOnce(): Promise<void> {
    if (this.closed) return;
    try {
      const plans = await this.o.plans.listActive();
      const active = new Set(plans.map((p) => p.id));
      for (const id of this.timers.keys()) if (!active.has(id)) this.clearTimer(id);
      await Promise.all(plans.map((plan) => this.serial(plan.id, () => this.evaluate(plan))));
      const stale = await this.o.plans.listUnlaunched(this.now() - (this.o.claimTimeoutMs ?? 3000), 100);
      for (const run of stale) {
        await this.serial(run.planId, async () => {
          const plan = await this.o.plans.get(run.planId);
          if (!plan) return this.o.plans.markLaunched(run.key);
          this.o.logger.warn(
            { planId: plan.id, key: run.key, targetId: run.targetId },
            "completing a firing claimed but never launched",
          );
          await this.launch(plan, run);
        });
      }
    } catch (err) {
      this.o.logger.error({ err }, "plan sweep failed");
    }
  }

  private serial(planId: string, work: () => Promise<void>): Promise<void> {
    const previous = this.chains.get(planId) ?? Promise.resolve();
    const next = previous.then(work).catch((err: unknown) => {
      this.o.logger.error({ err, planId }, "plan firing failed");
    });
    this.chains.set(planId, next);
    void next.then(() => {
      if (this.chains.get(planId) === next) this.chains.delete(planId);
    });
    return next;
  }

  private clearTimer(planId: string): void {
    clearTimeout(this.timers.get(planId));
    this.timers.delete(planId);
  }

  private arm(plan: PlanRecord, due: number): void {
    this.clearTimer(plan.id);
    if (this.closed) return;
    const timer = setTimeout(
      () => {
        this.timers.delete(plan.id);
        void this.rearm(plan.id);
      },
      Math.min(Math.max(0, due - this.now()), MAX_TIMER_MS),
    );
    timer.unref();
    this.timers.set(plan.id, timer);
  }

  /** Arms the plan's timer, or fires its due occurrence and arms the next one. */
  private async evaluate(plan: PlanRecord): Promise<void> {
    if (this.closed) return;
    if (plan.paused || plan.nextRunTime === null) return this.clearTimer(plan.id);
    const now = this.now();
    if (plan.nextRunTime > now) return this.arm(plan, plan.nextRunTime);

    const { planned, timezone, catchUp } = plan.definition;
    const schedule = { planned, anchor: plan.createTime };
    const latest = latestOccurrence(schedule, plan.nextRunTime, now, timezone);
    if (latest !== undefined) {
      const late = now - latest;
      if (late <= (this.o.lateGraceMs ?? 60_000) || catchUp === "once") {
        await this.fire(plan, latest);
      } else {
        this.o.logger.info({ planId: plan.id, missedSince: plan.nextRunTime, latest }, "skipped occurrences missed while down");
      }
    }
    const next = nextOccurrence(schedule, Math.max(latest ?? now, now), timezone);
    if (next === undefined) {
      this.o.logger.warn({ planId: plan.id, planned }, "the schedule never matches again");
      return this.clearTimer(plan.id);
    }
    await this.o.plans.advance(plan.id, plan.updateTime, next);
    // Another server may have moved it further, or the plan changed: follow the store.
    const current = await this.o.plans.get(plan.id);
    if (!current || current.paused || current.nextRunTime === null) return this.clearTimer(plan.id);
    if (current.updateTime !== plan.updateTime) {
      // Updated, paused or resumed meanwhile: the new schedule decides.
      return current.nextRunTime <= this.now() ? this.evaluate(current) : this.arm(current, current.nextRunTime);
    }
    this.arm(current, Math.max(current.nextRunTime, next));
  }

  private newRun(plan: PlanRecord, key: string, scheduledTime: number, manual: boolean): PlanRunRecord {
    return {
      key,
      planId: plan.id,
      scheduledTime,
      fireTime: this.now(),
      kind: plan.definition.target.kind,
      targetId: this.o.newId(),
      manual,
      launched: false,
    };
  }

  /** Claims the occurrence and, when this server won it, launches it. */
  private async fire(plan: PlanRecord, scheduledTime: number): Promise<void> {
    const run = this.newRun(plan, `${plan.id}@${scheduledTime}`, scheduledTime, false);
    if (!(await this.o.plans.claimRun(run))) return;
    await this.launch(plan, run);
  }

  /** Creates the run's target (idempotent), marks it launched, and announces it when it created it. */
  private async launch(plan: PlanRecord, run: PlanRunRecord): Promise<void> {
    const request = { id: run.targetId, ownerId: plan.ownerId, planId: plan.id };
    const target = plan.definition.target;
    const created =
      target.kind === "task"
        ? await this.o.launcher.launchTask({ ...request, definition: target.task })
        : await this.o.launcher.launchPipeline({ ...request, spec: fromJson(PipelineSpecSchema, target.pipeline as JsonValue) });
    await this.o.plans.markLaunched(run.key);
    if (!created) return;
    await this.o.events.publish(PLAN_FIRED, plan.id, undefined, {
      plan_id: plan.id,
      owner_id: plan.ownerId,
      scheduled_time: new Date(run.scheduledTime).toISOString(),
      fire_time: new Date(run.fireTime).toISOString(),
      target_id: run.targetId,
      kind: run.kind,
      manual: String(run.manual),
    });
  }
}
