import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { PlanService, validateTaskSpec, type PlanSpec } from "@mottainai/proto";
import { isPrivileged, requireUser } from "../auth/principal.js";
import { planDefinitionFromSpec, planRunToProto, planToProto } from "../convert/plan-convert.js";
import type { EventBus } from "../events/event-bus.js";
import { PLAN_CREATED, PLAN_DELETED, PLAN_PAUSED, PLAN_RESUMED, PLAN_UPDATED } from "../plans/plan-events.js";
import type { PlanScheduler } from "../plans/plan-scheduler.js";
import type { PlanTargetLauncher } from "../plans/plan-target-launcher.js";
import { nextOccurrence, ScheduleError, validateSchedule } from "../plans/schedule.js";
import type { PlanDefinition, PlanRecord } from "../store/plan-store.js";
import type { Store } from "../store/store.js";
import { loadOwned } from "../auth/owned-resource.js";

/** Dependencies of the plan service. */
export interface PlanServiceOptions {
  store: Store;
  scheduler: PlanScheduler;
  launcher: Pick<PlanTargetLauncher, "pipelines">;
  events: EventBus;
  newId: () => string;
  now?: () => number;
}

const DEFAULT_HISTORY = 10;
const MAX_PAGE = 1000;

/**
 * PlanService: checks the spec and ownership, converts, and delegates firing to the PlanScheduler.
 * A user sees and changes only their own plans; managers and admins all of them. Every change
 * publishes a plan.* event and re-arms the plan's timer on this server (others see it at their
 * next sweep).
 */
export function createPlanService(o: PlanServiceOptions): ServiceImpl<typeof PlanService> {
  const now = o.now ?? Date.now;
  const plans = o.store.plans;

  const load = (ctx: HandlerContext, id: string): Promise<PlanRecord> => loadOwned(ctx, "plan", id, (id) => plans.get(id));

  /** The stored definition of a wire spec, refused with InvalidArgument naming the field. */
  const definition = (spec: PlanSpec | undefined): PlanDefinition => {
    if (!spec) throw new ConnectError("spec: a plan spec is required", Code.InvalidArgument);
    try {
      validateSchedule(spec.planned.trim(), spec.timezone.trim());
    } catch (err) {
      if (err instanceof ScheduleError) throw new ConnectError(`spec.${err.field}: ${err.message}`, Code.InvalidArgument);
      throw err;
    }
    const target = spec.target;
    if (target.case === "task") {
      const issues = validateTaskSpec(target.value);
      if (issues[0]) throw new ConnectError(`spec.task.${issues[0].field}: ${issues[0].message}`, Code.InvalidArgument);
    } else if (target.case === "pipeline") {
      if (!o.launcher.pipelines) {
        throw new ConnectError("spec.pipeline: this server cannot fire pipeline plans yet", Code.Unimplemented);
      }
    } else {
      throw new ConnectError("spec.task: a plan fires a task or a pipeline; neither is set", Code.InvalidArgument);
    }
    return planDefinitionFromSpec(spec);
  };

  /** The first occurrence after at, refused when the schedule never matches again. */
  const firstAfter = (d: PlanDefinition, anchor: number, at: number): number => {
    const next = nextOccurrence({ planned: d.planned, anchor }, at, d.timezone);
    if (next === undefined) {
      throw new ConnectError(
        `spec.planned: "${d.planned}" never matches after ${new Date(at).toISOString()}`,
        Code.InvalidArgument,
      );
    }
    return next;
  };

  const view = async (plan: PlanRecord, history: number) => {
    const runs = await plans.listRuns(plan.id, Math.max(history, 1));
    const shown = await Promise.all(
      runs
        .slice(0, history)
        .map(async (r) => planRunToProto(r, r.kind === "task" ? await o.store.tasks.get(r.targetId) : undefined)),
    );
    return planToProto(plan, runs, shown);
  };

  const announce = (type: string, plan: PlanRecord) =>
    o.events.publish(type, plan.id, undefined, { plan_id: plan.id, owner_id: plan.ownerId });

  /** Writes a change of an existing plan, announces it and re-arms its timer. */
  const change = async (plan: PlanRecord, type: string, c: Pick<PlanRecord, "definition" | "paused" | "nextRunTime">) => {
    const updated = await plans.update(plan.id, { ...c, updateTime: Math.max(now(), plan.updateTime + 1) });
    if (!updated) throw new ConnectError(`plan ${plan.id} not found`, Code.NotFound);
    await announce(type, updated);
    await o.scheduler.rearm(updated.id);
    return (await plans.get(updated.id)) ?? updated;
  };

  return {
    async createPlan(req, ctx) {
      const user = requireUser(ctx);
      const d = definition(req.spec);
      const at = now();
      const plan = await plans.create({
        id: o.newId(),
        ownerId: user.id,
        definition: d,
        paused: false,
        nextRunTime: firstAfter(d, at, at),
        createTime: at,
        updateTime: at,
      });
      await announce(PLAN_CREATED, plan);
      await o.scheduler.rearm(plan.id);
      return { plan: await view(plan, 0) };
    },

    async getPlan(req, ctx) {
      const plan = await load(ctx, req.id);
      return { plan: await view(plan, Math.min(req.history || DEFAULT_HISTORY, MAX_PAGE)) };
    },

    async listPlans(req, ctx) {
      const user = requireUser(ctx);
      const limit = Math.min(req.pageSize || 50, MAX_PAGE);
      const page = await plans.list({
        ownerId: isPrivileged(user) ? undefined : user.id,
        afterId: req.pageToken || undefined,
        limit: limit + 1,
      });
      const shown = page.slice(0, limit);
      return {
        plans: await Promise.all(shown.map((p) => view(p, 0))),
        nextPageToken: page.length > limit ? (shown[shown.length - 1]?.id ?? "") : "",
      };
    },

    async updatePlan(req, ctx) {
      const plan = await load(ctx, req.id);
      const d = definition(req.spec);
      const nextRunTime = plan.paused ? null : firstAfter(d, plan.createTime, now());
      return { plan: await view(await change(plan, PLAN_UPDATED, { definition: d, paused: plan.paused, nextRunTime }), 0) };
    },

    async deletePlan(req, ctx) {
      const plan = await load(ctx, req.id);
      if (!(await plans.delete(plan.id))) throw new ConnectError(`plan ${plan.id} not found`, Code.NotFound);
      await announce(PLAN_DELETED, plan);
      await o.scheduler.rearm(plan.id);
      return {};
    },

    async pausePlan(req, ctx) {
      const plan = await load(ctx, req.id);
      if (plan.paused) return { plan: await view(plan, 0) };
      return {
        plan: await view(await change(plan, PLAN_PAUSED, { definition: plan.definition, paused: true, nextRunTime: null }), 0),
      };
    },

    async resumePlan(req, ctx) {
      const plan = await load(ctx, req.id);
      if (!plan.paused) return { plan: await view(plan, 0) };
      const nextRunTime = firstAfter(plan.definition, plan.createTime, now());
      return {
        plan: await view(await change(plan, PLAN_RESUMED, { definition: plan.definition, paused: false, nextRunTime }), 0),
      };
    },

    async runPlan(req, ctx) {
      const plan = await load(ctx, req.id);
      const run = await o.scheduler.runNow(plan);
      const task = run.kind === "task" ? await o.store.tasks.get(run.targetId) : undefined;
      return { plan: await view(plan, 0), run: planRunToProto(run, task) };
    },
  };
}
