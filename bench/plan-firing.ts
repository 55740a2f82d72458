import { performance } from "node:perf_hooks";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { startJongodb } from "../server/src/mongo/jongodb-server.js";
import { createApi, fakeTaskSpec } from "./api-clients.js";
import type { BenchOptions } from "./bench-options.js";
import { startMottainaiServer } from "./mottainai-server.js";
import { deferCleanup } from "./cleanup.js";
import { benchRow, type BenchResult } from "./report.js";
import { quantile } from "./stats.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Plan firing delay on SQLite, then on MongoDB served by jongodb (one server each; see
 * measurePlanFiring). The MongoDB rows keep the CreateTask baseline of their own server.
 */
export async function runPlanFiring(options: BenchOptions): Promise<BenchResult> {
  const sqlite = await measurePlanFiring(options, [], "SQLite");
  const jongodb = await startJongodb();
  const stop = deferCleanup(() => jongodb.stop());
  try {
    const mongo = await measurePlanFiring(
      options,
      ["--store", `${jongodb.url.replace(/\/$/, "")}/bench_plans?maxPoolSize=1`],
      "MongoDB/jongodb",
    );
    return { rows: [...sqlite.rows, ...mongo.rows], notes: [...sqlite.notes] };
  } finally {
    await stop();
  }
}

/**
 * Plan firing delay: for an `@every 1s` plan on one server, the time from each
 * occurrence's scheduled time to its task's creation, both on the server's clock (the run's
 * scheduled_time and the task's create_time), over options.planFirings firings after a warm-up
 * of two. Baseline: a CreateTask round trip from the bench, same server, same run (what creating
 * the task by hand costs).
 */
async function measurePlanFiring(options: BenchOptions, args: string[], store: string): Promise<BenchResult> {
  const server = await startMottainaiServer({ args });
  const api = createApi(server.url, server.adminToken);
  try {
    const warmup = 2;
    const { plan } = await api.plans.createPlan({
      spec: { planned: "@every 1s", target: { case: "task", value: fakeTaskSpec("plan-firing") } },
    });
    if (!plan) throw new Error("CreatePlan returned no plan");
    const deadline = Date.now() + (options.planFirings + warmup + 10) * 1000;
    let runs = (await api.plans.getPlan({ id: plan.id, history: 1000 })).plan?.runs ?? [];
    while (runs.length < options.planFirings + warmup) {
      if (Date.now() > deadline) throw new Error(`only ${runs.length} firings before the deadline`);
      await sleep(500);
      runs = (await api.plans.getPlan({ id: plan.id, history: 1000 })).plan?.runs ?? [];
    }
    await api.plans.pausePlan({ id: plan.id });
    const timed = [...runs].sort((a, b) => timestampMs(a.scheduledTime!) - timestampMs(b.scheduledTime!)).slice(warmup);
    const delays: number[] = [];
    for (const run of timed.slice(0, options.planFirings)) {
      const { task } = await api.tasks.getTask({ id: run.targetId });
      if (!task?.createTime) throw new Error(`task ${run.targetId} of a firing does not exist`);
      delays.push(timestampMs(task.createTime) - timestampMs(run.scheduledTime!));
    }

    const rtts: number[] = [];
    for (let i = 0; i < warmup + options.planFirings; i++) {
      const t0 = performance.now();
      await api.tasks.createTask({ spec: fakeTaskSpec(`plan-baseline-${i}`) });
      if (i >= warmup) rtts.push(performance.now() - t0);
    }
    return {
      rows: [
        benchRow(`plan firing delay p50 (${store})`, quantile(delays, 0.5), "ms", { op: "<=", target: 50 }, quantile(rtts, 0.5)),
        benchRow(
          `plan firing delay p99 (${store})`,
          quantile(delays, 0.99),
          "ms",
          { op: "<=", target: 50 },
          quantile(rtts, 0.99),
        ),
      ],
      notes: [
        `plan firing delay: ${delays.length} firings of an @every 1s plan (after ${warmup} warm-up), scheduled time → task created on the server's clock; ` +
          `baseline = p50/p99 of a CreateTask round trip to the same server.`,
      ],
    };
  } finally {
    api.close();
    await server.stop();
  }
}
