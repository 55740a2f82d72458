import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parsePipelineFile } from "@mottainai/proto";
import { pino } from "pino";
import { EventBus } from "../events/event-bus.js";
import { openSqliteStore } from "../sqlite/sqlite-store.js";
import type { Store } from "../store/store.js";
import type { TaskOutcome } from "../store/task-store.js";
import { PipelineAdvancer } from "./pipeline-advancer.js";
import { definitionFromPipelineSpec } from "./pipeline-definition.js";

const logger = pino({ level: "silent" });
const host = (extra = "") => `{type: host, script: [x]${extra}}`;

/** Ends a waiting task's first attempt with result, as an agent's report would. */
async function finish(store: Store, taskId: string, result: TaskOutcome): Promise<void> {
  const assigned = await store.tasks.assign({
    taskId,
    fromAttempt: 0,
    nodeId: "n",
    leaseId: "l",
    leaseExpireTime: 1e13,
    logBase: 0,
    now: 1,
  });
  assert.ok(assigned, `task ${taskId} was waiting`);
  await store.tasks.endAttempt({
    taskId,
    attempt: 1,
    leaseId: "l",
    result,
    exitCode: result === "success" ? 0 : 1,
    error: "",
    taskStatus: "done",
    infraFailures: 0,
    scriptRetries: 0,
    logSize: 0,
    now: 2,
  });
}

async function insertPipeline(store: Store, id: string, yaml: string): Promise<void> {
  await store.pipelines.create({
    id,
    ownerId: "u1",
    definition: definitionFromPipelineSpec(parsePipelineFile(yaml)),
    status: "running",
    result: "none",
    run: 1,
    createTime: 1,
    startTime: null,
    endTime: null,
    updateTime: 1,
  });
}

const memberTasks = async (store: Store, pipelineId: string) =>
  (await store.tasks.list({ pipelineId, limit: 100 })).map((t) => [t.definition.name, t.id]).sort();

describe("PipelineAdvancer", () => {
  let store: Store;
  let events: EventBus;
  let advancer: PipelineAdvancer;
  let ids: number;
  const advancerOn = (s: Store, e: EventBus) =>
    new PipelineAdvancer({
      store: s,
      events: e,
      scheduler: { kick() {} },
      logger,
      sweepIntervalMs: 0,
      newTaskId: () => `t${++ids}`,
    });

  beforeEach(() => {
    ids = 0;
    store = openSqliteStore(":memory:");
    events = new EventBus(store.events);
    advancer = advancerOn(store, events);
  });
  afterEach(async () => {
    await advancer.close();
    await store.close();
  });

  it("creates the task of a member claimed before a crash under the claimed id, and nothing twice", async () => {
    await insertPipeline(store, "p1", `chain: [a, b]\ntasks:\n  a: ${host()}\n  b: ${host()}\n`);
    await store.pipelines.claimMember("p1", "a", 1, { kind: "task", taskId: "claimed-a" });
    await advancer.start();
    assert.deepEqual(await memberTasks(store, "p1"), [["a", "claimed-a"]]);
    await advancer.sweep();
    await advancer.sweep();
    assert.deepEqual(await memberTasks(store, "p1"), [["a", "claimed-a"]]);
    const task = await store.tasks.get("claimed-a");
    assert.deepEqual([task?.pipelineId, task?.ownerId, task?.status, task?.queue], ["p1", "u1", "waiting", "general"]);
  });

  it("advances on task.finished events, one member at a time under concurrency 1, and derives the result", async () => {
    await insertPipeline(
      store,
      "p1",
      `queue: builds\nconcurrency: 1\ngroup: [a, b, c]\ntasks:\n  a: ${host()}\n  b: ${host()}\n  c: ${host()}\n`,
    );
    await advancer.start();
    assert.deepEqual(await memberTasks(store, "p1"), [["a", "t1"]]);
    assert.equal((await store.tasks.get("t1"))?.queue, "builds");
    for (const [taskId, next] of [
      ["t1", "t2"],
      ["t2", "t3"],
    ] as const) {
      await finish(store, taskId, "success");
      await events.publish("task.finished", taskId, { kind: "task", value: await store.tasks.get(taskId) });
      await new Promise((r) => setTimeout(r, 20));
      await advancer.advance("p1");
      assert.ok(await store.tasks.get(next), `${next} created after ${taskId} ended`);
      assert.equal((await store.tasks.list({ pipelineId: "p1", statuses: ["waiting"], limit: 10 })).length, 1);
    }
    await finish(store, "t3", "failed");
    await advancer.advance("p1");
    const p = await store.pipelines.get("p1");
    assert.deepEqual([p?.status, p?.result], ["done", "failed"]);
    const types = (await store.events.listAfter(0, 100)).map((e) => e.type).filter((t) => t.startsWith("pipeline."));
    assert.deepEqual(types, ["pipeline.started", "pipeline.finished"]);
  });

  it("gives an inheriting member its parents' tasks as root tasks after its own, with their keys", async () => {
    await insertPipeline(
      store,
      "p1",
      `group: [a, b]\nchord: [c]\ntasks:\n  a: ${host()}\n  b: ${host()}\n  c: ${host(", root_task: [r0], inherit_artefacts: true")}\n`,
    );
    await advancer.start();
    await finish(store, "t1", "success");
    await finish(store, "t2", "success");
    await advancer.advance("p1");
    const c = await store.tasks.get("t3");
    assert.deepEqual(
      [c?.definition.rootTask, c?.definition.dependsOn, c?.definition.inheritArtefacts],
      [["r0", "t1", "t2"], ["a", "b"], true],
    );
  });

  describe("two processes on one SQLite file", () => {
    let dir: string;
    before(() => (dir = mkdtempSync(join(tmpdir(), "mottainai-advancer-"))));
    after(() => rmSync(dir, { recursive: true, force: true }));

    it("create each member's task once when they advance together", async () => {
      const path = join(dir, "store.db");
      const one = openSqliteStore(path);
      const two = openSqliteStore(path);
      const [a1, a2] = [advancerOn(one, new EventBus(one.events)), advancerOn(two, new EventBus(two.events))];
      try {
        await insertPipeline(
          one,
          "p1",
          `concurrency: 2\ngroup: [a, b, c, d]\ntasks:\n  a: ${host()}\n  b: ${host()}\n  c: ${host()}\n  d: ${host()}\n`,
        );
        await Promise.all([a1.advance("p1"), a2.advance("p1"), a1.advance("p1"), a2.advance("p1")]);
        const tasks = await memberTasks(one, "p1");
        assert.deepEqual(
          tasks.map(([name]) => name),
          ["a", "b"],
        );
      } finally {
        await a1.close();
        await a2.close();
        await one.close();
        await two.close();
      }
    });
  });
});
