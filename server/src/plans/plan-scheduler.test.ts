import assert from "node:assert/strict";
import { pino } from "pino";
import { EventBus } from "../events/event-bus.js";
import { openSqliteStore } from "../sqlite/sqlite-store.js";
import type { CatchUpPolicy, PlanRecord } from "../store/plan-store.js";
import type { Store } from "../store/store.js";
import { testDefinition } from "../store/task-store-conformance.js";
import { PlanScheduler } from "./plan-scheduler.js";
import { createTaskLauncher } from "./plan-target-launcher.js";
import { nextOccurrence } from "./schedule.js";

const t = (iso: string) => Date.parse(iso);

describe("PlanScheduler (controllable clock, SQLite)", () => {
  let store: Store;
  let events: EventBus;
  let clock = 0;
  let ids = 0;
  const schedulers: PlanScheduler[] = [];

  const newScheduler = () => {
    const scheduler = new PlanScheduler({
      plans: store.plans,
      launcher: createTaskLauncher({ tasks: store.tasks, events, kick: () => {}, now: () => clock }),
      events,
      logger: pino({ level: "silent" }),
      newId: () => `id${++ids}`,
      now: () => clock,
      sweepIntervalMs: 0,
      lateGraceMs: 60_000,
      claimTimeoutMs: 3000,
    });
    schedulers.push(scheduler);
    return scheduler;
  };

  /** A plan created at createTime, waiting for its first occurrence. */
  const createPlan = async (planned: string, createTime: number, catchUp: CatchUpPolicy = "skip", timezone = "") => {
    const plan: PlanRecord = {
      id: `plan${++ids}`,
      ownerId: "u1",
      definition: { planned, timezone, catchUp, target: { kind: "task", task: { ...testDefinition, environment: ["A=b=c"] } } },
      paused: false,
      nextRunTime: nextOccurrence({ planned, anchor: createTime }, createTime, timezone) ?? null,
      createTime,
      updateTime: createTime,
    };
    return store.plans.create(plan);
  };

  const scheduledTimes = async (planId: string) =>
    (await store.plans.listRuns(planId, 100)).map((r) => new Date(r.scheduledTime).toISOString()).reverse();

  beforeEach(async () => {
    store = openSqliteStore(":memory:");
    events = new EventBus(store.events, () => clock);
    clock = 0;
  });
  afterEach(async () => {
    await Promise.all(schedulers.splice(0).map((s) => s.close()));
    await store.close();
  });

  it("fires a due occurrence once: a task owned by the plan owner, with MOTTAINAI_PLAN_ID, and plan.fired", async () => {
    const plan = await createPlan("@every 1s", t("2026-01-05T10:00:00.300Z"));
    assert.equal(plan.nextRunTime, t("2026-01-05T10:00:01Z"));
    const scheduler = newScheduler();
    clock = t("2026-01-05T10:00:00.900Z");
    await scheduler.sweep();
    assert.deepEqual(await scheduledTimes(plan.id), []);
    clock = t("2026-01-05T10:00:01.004Z");
    await scheduler.sweep();
    await scheduler.sweep();
    assert.deepEqual(await scheduledTimes(plan.id), ["2026-01-05T10:00:01.000Z"]);
    const [run] = await store.plans.listRuns(plan.id, 10);
    assert.equal(run?.launched, true);
    const task = await store.tasks.get(run!.targetId);
    assert.equal(task?.ownerId, "u1");
    assert.equal(task?.status, "waiting");
    assert.deepEqual(task?.definition.environment, ["A=b=c", `MOTTAINAI_PLAN_ID=${plan.id}`]);
    assert.equal((await store.plans.get(plan.id))?.nextRunTime, t("2026-01-05T10:00:02Z"));
    const fired = (await store.events.listAfter(0, 100)).filter((e) => e.type === "plan.fired");
    assert.deepEqual(
      fired.map((e) => e.attributes),
      [
        {
          plan_id: plan.id,
          owner_id: "u1",
          scheduled_time: "2026-01-05T10:00:01.000Z",
          fire_time: "2026-01-05T10:00:01.004Z",
          target_id: run!.targetId,
          kind: "task",
          manual: "false",
        },
      ],
    );
  });

  it("fires each occurrence once when three schedulers race on one store", async () => {
    const plan = await createPlan("@every 1s", t("2026-01-05T10:00:00Z"));
    const racers = [newScheduler(), newScheduler(), newScheduler()];
    for (let second = 1; second <= 5; second++) {
      clock = t("2026-01-05T10:00:00Z") + second * 1000 + 2;
      await Promise.all(racers.map((s) => s.sweep()));
    }
    assert.deepEqual(await scheduledTimes(plan.id), [
      "2026-01-05T10:00:01.000Z",
      "2026-01-05T10:00:02.000Z",
      "2026-01-05T10:00:03.000Z",
      "2026-01-05T10:00:04.000Z",
      "2026-01-05T10:00:05.000Z",
    ]);
    assert.equal((await store.tasks.list({ limit: 100 })).length, 5);
  });

  it("catch_up skip: after downtime fires nothing for the gap and waits for the next occurrence", async () => {
    const plan = await createPlan("@hourly", t("2026-01-05T09:30:00Z"), "skip");
    clock = t("2026-01-05T13:30:00Z");
    await newScheduler().sweep();
    assert.deepEqual(await scheduledTimes(plan.id), []);
    assert.equal((await store.plans.get(plan.id))?.nextRunTime, t("2026-01-05T14:00:00Z"));
    clock = t("2026-01-05T14:00:00.010Z");
    await newScheduler().sweep();
    assert.deepEqual(await scheduledTimes(plan.id), ["2026-01-05T14:00:00.000Z"]);
  });

  it("catch_up once: after downtime fires one run for the whole gap (the latest missed occurrence)", async () => {
    const plan = await createPlan("@hourly", t("2026-01-05T09:30:00Z"), "once");
    clock = t("2026-01-05T13:30:00Z");
    const scheduler = newScheduler();
    await scheduler.sweep();
    await scheduler.sweep();
    assert.deepEqual(await scheduledTimes(plan.id), ["2026-01-05T13:00:00.000Z"]);
    assert.equal((await store.plans.get(plan.id))?.nextRunTime, t("2026-01-05T14:00:00Z"));
  });

  it("fires a late occurrence within the grace, and only the latest of several (never a burst)", async () => {
    const late = await createPlan("@hourly", t("2026-01-05T09:30:00Z"), "skip");
    const burst = await createPlan("@every 1s", t("2026-01-05T09:59:00Z"), "skip");
    clock = t("2026-01-05T10:00:30Z");
    await newScheduler().sweep();
    assert.deepEqual(await scheduledTimes(late.id), ["2026-01-05T10:00:00.000Z"]);
    assert.deepEqual(await scheduledTimes(burst.id), ["2026-01-05T10:00:30.000Z"]);
  });

  it("reads cron in the plan's time zone", async () => {
    const plan = await createPlan("0 0 9 * * *", t("2026-01-05T00:00:00Z"), "skip", "Europe/Rome");
    assert.equal(plan.nextRunTime, t("2026-01-05T08:00:00Z"));
    clock = t("2026-01-05T08:00:00.001Z");
    await newScheduler().sweep();
    assert.deepEqual(await scheduledTimes(plan.id), ["2026-01-05T08:00:00.000Z"]);
  });

  it("completes a firing whose claimer died before creating its task, with the task id chosen at claim", async () => {
    const plan = await createPlan("@hourly", t("2026-01-05T09:30:00Z"));
    const claimedAt = t("2026-01-05T10:00:00.005Z");
    // What a server that died right after its claim leaves behind.
    assert.equal(
      await store.plans.claimRun({
        key: `${plan.id}@${t("2026-01-05T10:00:00Z")}`,
        planId: plan.id,
        scheduledTime: t("2026-01-05T10:00:00Z"),
        fireTime: claimedAt,
        kind: "task",
        targetId: "chosen-at-claim",
        manual: false,
        launched: false,
      }),
      true,
    );
    const scheduler = newScheduler();
    clock = claimedAt + 1000;
    await scheduler.sweep();
    assert.equal(await store.tasks.get("chosen-at-claim"), undefined, "a claim younger than the timeout is left to its claimer");
    assert.equal((await store.tasks.list({ limit: 10 })).length, 0, "the occurrence is not fired a second time");
    clock = claimedAt + 3001;
    await Promise.all([scheduler.sweep(), newScheduler().sweep()]);
    await scheduler.sweep();
    const tasks = await store.tasks.list({ limit: 10 });
    assert.deepEqual(
      tasks.map((x) => x.id),
      ["chosen-at-claim"],
    );
    assert.deepEqual(await store.plans.listUnlaunched(clock, 10), []);
    assert.equal((await store.events.listAfter(0, 100)).filter((e) => e.type === "plan.fired").length, 1);
  });

  it("follows an update made through another server: a stale advance cannot move the new schedule", async () => {
    const plan = await createPlan("@every 1s", t("2026-01-05T10:00:00Z"));
    const scheduler = newScheduler();
    clock = t("2026-01-05T10:00:01.001Z");
    await scheduler.sweep();
    const definition = { ...plan.definition, planned: "@hourly" };
    await store.plans.update(plan.id, { definition, paused: false, nextRunTime: t("2026-01-05T11:00:00Z"), updateTime: clock });
    assert.equal(await store.plans.advance(plan.id, plan.updateTime, t("2026-01-05T10:00:03Z")), false);
    clock = t("2026-01-05T10:00:02.001Z");
    await scheduler.rearm(plan.id);
    await scheduler.sweep();
    assert.deepEqual(await scheduledTimes(plan.id), ["2026-01-05T10:00:01.000Z"]);
    assert.equal((await store.plans.get(plan.id))?.nextRunTime, t("2026-01-05T11:00:00Z"));
    clock = t("2026-01-05T11:00:00.002Z");
    await scheduler.sweep();
    assert.deepEqual(await scheduledTimes(plan.id), ["2026-01-05T10:00:01.000Z", "2026-01-05T11:00:00.000Z"]);
  });

  it("does not fire a paused plan; runNow fires it outside the schedule under its own key", async () => {
    const plan = await createPlan("@hourly", t("2026-01-05T09:30:00Z"));
    const paused = await store.plans.update(plan.id, {
      ...plan,
      paused: true,
      nextRunTime: null,
      updateTime: plan.updateTime + 1,
    });
    clock = t("2026-01-05T10:00:00.001Z");
    const scheduler = newScheduler();
    await scheduler.sweep();
    assert.deepEqual(await scheduledTimes(plan.id), []);
    const run = await scheduler.runNow(paused!);
    assert.equal(run.manual, true);
    assert.match(run.key, new RegExp(`^${plan.id}!`));
    assert.equal(run.scheduledTime, clock);
    assert.equal((await store.tasks.get(run.targetId))?.ownerId, "u1");
    assert.deepEqual(await scheduledTimes(plan.id), ["2026-01-05T10:00:00.001Z"]);
  });
});
