import assert from "node:assert/strict";
import { freshStore, itShared, type StoreFactory } from "./conformance-harness.js";
import { PlanExistsError, type PlanRecord, type PlanRunRecord } from "./plan-store.js";
import { testDefinition } from "./task-store-conformance.js";

const plan = (id: string, over: Partial<PlanRecord> = {}): PlanRecord => ({
  id,
  ownerId: "u1",
  definition: {
    planned: "@every 1s",
    timezone: "",
    catchUp: "skip",
    target: { kind: "task", task: { ...testDefinition, labels: { "a.b": "c", $d: "e" } } },
  },
  paused: false,
  nextRunTime: 2000,
  createTime: 1000,
  updateTime: 1000,
  ...over,
});

const run = (planId: string, scheduledTime: number, over: Partial<PlanRunRecord> = {}): PlanRunRecord => ({
  key: `${planId}@${scheduledTime}`,
  planId,
  scheduledTime,
  fireTime: scheduledTime + 3,
  kind: "task",
  targetId: `task-${scheduledTime}`,
  manual: false,
  launched: false,
  ...over,
});

/** PlanStore behaviour every backend shares: plans, monotonic advance, single-winner claims, run history. */
export function planStoreConformance(factory: StoreFactory): void {
  describe("PlanStore", () => {
    const s = freshStore(factory);

    it("creates plans with unique ids, reads them back exactly, lists them by owner in id order", async () => {
      const { plans } = s.store;
      const created = await plans.create(plan("p2"));
      assert.deepEqual(created, plan("p2"));
      await assert.rejects(plans.create(plan("p2")), PlanExistsError);
      const pipeline = plan("p1", {
        ownerId: "u2",
        definition: {
          planned: "0 0 16 * * *",
          timezone: "Europe/Rome",
          catchUp: "once",
          target: { kind: "pipeline", pipeline: { pipelineName: "p", tasks: { "a.b": { name: "x" } } } },
        },
        paused: true,
        nextRunTime: null,
      });
      await plans.create(pipeline);
      await plans.create(plan("p3"));
      assert.deepEqual(await plans.get("p2"), plan("p2"));
      assert.deepEqual(await plans.get("p1"), pipeline);
      assert.equal(await plans.get("nope"), undefined);
      assert.deepEqual(
        (await plans.list({ limit: 10 })).map((p) => p.id),
        ["p1", "p2", "p3"],
      );
      assert.deepEqual(
        (await plans.list({ limit: 1, afterId: "p1" })).map((p) => p.id),
        ["p2"],
      );
      assert.deepEqual(
        (await plans.list({ ownerId: "u1", limit: 10 })).map((p) => p.id),
        ["p2", "p3"],
      );
      assert.deepEqual(
        (await plans.listActive()).map((p) => p.id),
        ["p2", "p3"],
      );
    });

    it("updates a plan and advances nextRunTime only forward and only for the same updateTime", async () => {
      const { plans } = s.store;
      await plans.create(plan("p"));
      assert.equal(await plans.advance("p", 1000, 3000), true);
      assert.equal(await plans.advance("p", 1000, 3000), false, "not later");
      assert.equal(await plans.advance("p", 1000, 2500), false, "earlier");
      assert.equal(await plans.advance("p", 999, 4000), false, "stale updateTime");
      assert.equal((await plans.get("p"))?.nextRunTime, 3000);
      const definition = { ...plan("p").definition, planned: "@hourly" };
      const updated = await plans.update("p", { definition, paused: true, nextRunTime: null, updateTime: 5000 });
      assert.deepEqual(updated, plan("p", { definition, paused: true, nextRunTime: null, updateTime: 5000 }));
      assert.deepEqual(await plans.get("p"), updated);
      assert.deepEqual(await plans.listActive(), []);
      assert.equal(await plans.advance("p", 5000, 7000), true, "from null");
      assert.equal((await plans.get("p"))?.nextRunTime, 7000);
      assert.equal(await plans.update("nope", { definition, paused: false, nextRunTime: 1, updateTime: 1 }), undefined);
    });

    it("lets exactly one claim of a key win, lists runs newest first, finds unlaunched ones", async () => {
      const { plans } = s.store;
      await plans.create(plan("p"));
      await plans.create(plan("q"));
      assert.equal(await plans.claimRun(run("p", 2000)), true);
      assert.equal(await plans.claimRun(run("p", 2000, { targetId: "other", fireTime: 2010 })), false);
      assert.equal(await plans.claimRun(run("p", 3000)), true);
      assert.equal(await plans.claimRun(run("p", 3500, { key: "p!m1", manual: true, fireTime: 3500 })), true);
      assert.equal(await plans.claimRun(run("q", 2000, { kind: "pipeline" })), true);
      assert.deepEqual(await plans.listRuns("p", 10), [
        run("p", 3500, { key: "p!m1", manual: true, fireTime: 3500 }),
        run("p", 3000),
        run("p", 2000),
      ]);
      assert.deepEqual(
        (await plans.listRuns("p", 1)).map((r) => r.key),
        ["p!m1"],
      );
      assert.deepEqual(
        (await plans.listUnlaunched(3004, 10)).map((r) => r.key),
        ["p@2000", "q@2000", "p@3000"],
      );
      await plans.markLaunched("p@2000");
      await plans.markLaunched("p@2000");
      assert.equal((await plans.listRuns("p", 10))[2]?.launched, true);
      assert.deepEqual(
        (await plans.listUnlaunched(3004, 1)).map((r) => r.key),
        ["q@2000"],
      );
    });

    it("deletes a plan with its runs; a deleted plan's runs are gone", async () => {
      const { plans } = s.store;
      await plans.create(plan("p"));
      await plans.claimRun(run("p", 2000));
      assert.equal(await plans.delete("p"), true);
      assert.equal(await plans.delete("p"), false);
      assert.equal(await plans.get("p"), undefined);
      assert.deepEqual(await plans.listRuns("p", 10), []);
      assert.deepEqual(await plans.listUnlaunched(1e12, 10), []);
    });

    itShared(factory, "lets one of two stores on one database win each claim", async (one, two) => {
      await one.plans.create(plan("p"));
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? one : two).plans.claimRun(run("p", 1000 * Math.floor(i / 2)))),
      );
      assert.equal(results.filter(Boolean).length, 10);
      assert.equal((await two.plans.listRuns("p", 100)).length, 10);
    });
  });
}
