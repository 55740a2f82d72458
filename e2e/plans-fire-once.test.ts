import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { PlanService, PlanSpecSchema, TaskService, TaskSpecSchema, TaskStatus, type Plan } from "@mottainai/proto";
import { requireJongodb, type JongodbServer } from "@mottainai/server";
import { adminClient, cleanupAll, startServer, tempDir, waitFor, type ServerProc } from "./harness.js";

/**
 * Plans fired once across several server processes on one MongoDB database (the jongodb test
 * server), in real time: every second of an `@every 1s` plan is fired by exactly one server, also
 * while one of them is killed with SIGKILL and another started (issue 13, plans).
 */
const ci = Boolean(process.env.CI);
const ARGS = ["--blobs", "gridfs", "--event-poll-interval", "100ms", "--plan-sweep-interval", "500ms"];
let databases = 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("plans fired once across three servers on one MongoDB database (real processes, jongodb)", function () {
  this.timeout(180_000);
  let mongo: JongodbServer | undefined;

  before(async function () {
    mongo = await requireJongodb(ci, process.env);
    if (!mongo) this.skip();
  });
  after(async () => {
    await mongo?.stop();
  });
  afterEach(cleanupAll);

  /** Starts count servers at once on a fresh database; they share the admin token one of them wrote. */
  async function startServers(count: number): Promise<{ servers: ServerProc[]; start: () => Promise<ServerProc> }> {
    const url = `${mongo!.url}mottainai_plans_${process.pid}_${++databases}`;
    const tokenFile = join(tempDir("shared"), "admin-token");
    const start = async () => {
      const dataDir = tempDir("server");
      writeFileSync(join(dataDir, "admin-token"), "");
      const server = await startServer({ dataDir, args: ["--store", url, "--admin-token-file", tokenFile, ...ARGS] });
      return { ...server, adminToken: readFileSync(tokenFile, "utf8").trim() };
    };
    const first = await Promise.all(Array.from({ length: count }, () => start()));
    const adminToken = readFileSync(tokenFile, "utf8").trim();
    assert.match(adminToken, /^mtk/);
    return { servers: first.map((s) => ({ ...s, adminToken })), start };
  }

  const everySecond = () =>
    create(PlanSpecSchema, {
      planned: "@every 1s",
      target: { case: "task", value: create(TaskSpecSchema, { name: "tick", type: "host", script: ["true"] }) },
    });

  /**
   * Pauses the plan, lets stale claims be completed, then checks the firings: consecutive
   * seconds, each claimed once, each with its own task, every task the plan made listed once.
   */
  async function assertFiredOnce(server: ServerProc, planId: string, minimum: number): Promise<Plan> {
    const plans = adminClient(server, PlanService);
    await plans.pausePlan({ id: planId });
    // Longer than the claim timeout (3 s) plus a sweep: a claim left by a killed server is completed.
    await sleep(4500);
    const { plan } = await plans.getPlan({ id: planId, history: 1000 });
    assert.ok(plan);
    const seconds = plan.runs.map((r) => timestampMs(r.scheduledTime!)).sort((x, y) => x - y);
    assert.ok(seconds.length >= minimum, `only ${seconds.length} firings`);
    assert.equal(new Set(seconds).size, seconds.length, "an occurrence fired twice");
    for (let i = 1; i < seconds.length; i++) {
      assert.equal(seconds[i]! - seconds[i - 1]!, 1000, `a second was lost after ${new Date(seconds[i - 1]!).toISOString()}`);
    }
    assert.ok(plan.runs.every((r) => !r.manual));
    assert.ok(
      plan.runs.every((r) => r.status === TaskStatus.WAITING),
      "every firing's task exists (and waits: no agent runs here)",
    );
    const { tasks } = await adminClient(server, TaskService).listTasks({ pageSize: 1000 });
    const planTasks = tasks.filter((task) => task.spec?.environment.includes(`MOTTAINAI_PLAN_ID=${planId}`));
    assert.equal(planTasks.length, seconds.length, "one task per firing");
    assert.deepEqual(new Set(planTasks.map((task) => task.id)), new Set(plan.runs.map((r) => r.targetId)));
    return plan;
  }

  it("fires an @every 1s plan once per second for 30 s with three servers racing", async () => {
    const { servers } = await startServers(3);
    const { plan } = await adminClient(servers[1]!, PlanService).createPlan({ spec: everySecond() });
    assert.ok(plan);
    await sleep(30_000);
    await assertFiredOnce(servers[2]!, plan.id, 28);
  });

  it("neither loses nor repeats an occurrence when a server is killed with SIGKILL and another started", async () => {
    const { servers, start } = await startServers(3);
    const { plan } = await adminClient(servers[0]!, PlanService).createPlan({ spec: everySecond() });
    assert.ok(plan);
    await sleep(6000);
    servers[0]!.child.kill("SIGKILL");
    await servers[0]!.exited;
    await sleep(6000);
    const replacement = await start();
    await waitFor(
      async () => (await adminClient(replacement, PlanService).getPlan({ id: plan.id })).plan?.id,
      10_000,
      () => "the new server does not see the plan",
    );
    await sleep(6000);
    servers[1]!.child.kill("SIGKILL");
    await servers[1]!.exited;
    await sleep(4000);
    await assertFiredOnce(replacement, plan.id, 20);
  });
});
