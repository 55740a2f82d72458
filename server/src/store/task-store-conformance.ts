import assert from "node:assert/strict";
import { freshStore, itShared, type StoreFactory } from "./conformance-harness.js";
import { newWaitingTask } from "./new-task.js";
import type { Assignment, AttemptEnd, TaskDefinition, TaskRecord } from "./task-store.js";

/** A host task definition with every field empty, for store tests. */
export const testDefinition: TaskDefinition = {
  name: "t",
  type: "host",
  image: "",
  script: ["true"],
  entrypoint: [],
  environment: [],
  source: "",
  commit: "",
  directory: "",
  privkey: "",
  binds: [],
  artefactPath: "artefacts",
  artefactPushFilters: [],
  storage: [],
  storagePath: "storage",
  namespace: [],
  namespaceFilters: [],
  namespaceMerged: true,
  rootTask: [],
  tagNamespace: "",
  publishMode: "",
  queue: "",
  retry: 0,
  timeout: 0,
  eta: 0,
  cacheImage: false,
  cacheClean: false,
  prune: false,
  disablePushOnFailure: false,
  quota: "",
  labels: {},
};

/** A waiting task of ownerId, dispatchable at once. */
export function testTask(id: string, ownerId = "u1"): Omit<TaskRecord, "seq"> {
  return { ...newWaitingTask({ id, definition: testDefinition, ownerId, now: 1 }), notBefore: 0 };
}

const claim = (taskId: string, over: Partial<Assignment> = {}): Assignment => ({
  taskId,
  fromAttempt: 0,
  nodeId: "n1",
  leaseId: "L1",
  leaseExpireTime: 100,
  logBase: 0,
  now: 5,
  ...over,
});

const ending = (taskId: string, over: Partial<AttemptEnd> = {}): AttemptEnd => ({
  taskId,
  attempt: 1,
  leaseId: "L1",
  result: "success",
  exitCode: 0,
  error: "",
  taskStatus: "done",
  infraFailures: 0,
  scriptRetries: 0,
  logSize: 3,
  now: 7,
  ...over,
});

/** TaskStore behaviour every backend shares (DESIGN §4): CAS claims, lease fencing, fair listing. */
export function taskStoreConformance(factory: StoreFactory): void {
  describe("TaskStore", () => {
    const s = freshStore(factory);

    it("creates tasks with increasing seq and reads them back unchanged", async () => {
      const definition = {
        ...testDefinition,
        script: ["echo a", "echo b"],
        environment: ["A=1"],
        labels: { "kubernetes.io/arch": "amd64", $odd: "x", plain: "" },
      };
      const a = await s.store.tasks.create({ ...testTask("a"), definition, pipelineId: "p1", targetNode: "^n" });
      const b = await s.store.tasks.create(testTask("b"));
      assert.ok(a.seq >= 1);
      assert.ok(b.seq > a.seq);
      assert.deepEqual(await s.store.tasks.get("a"), a);
      assert.deepEqual(await s.store.tasks.get("b"), b);
      assert.equal(await s.store.tasks.get("missing"), undefined);
      assert.deepEqual(await s.store.tasks.attempts("a"), []);
      await assert.rejects(s.store.tasks.create(testTask("a")));
    });

    it("assigns a waiting task once: the compare-and-set refuses a second claim", async () => {
      await s.store.tasks.create(testTask("a"));
      assert.equal((await s.store.tasks.assign(claim("a")))?.leaseId, "L1");
      assert.equal(await s.store.tasks.assign(claim("a", { nodeId: "n2", leaseId: "L2" })), undefined);
      const task = await s.store.tasks.get("a");
      assert.equal(task?.status, "setup");
      assert.equal(task?.attempt, 1);
      assert.equal(task?.leaseId, "L1");
      assert.equal(task?.nodeId, "n1");
      assert.equal(task?.startTime, 5);
      assert.deepEqual(
        (await s.store.tasks.attempts("a")).map((a) => [a.number, a.nodeId, a.status]),
        [[1, "n1", "setup"]],
      );
      assert.equal(await s.store.tasks.assign(claim("missing")), undefined);
    });

    it("lets exactly one of many concurrent claims of a task win", async () => {
      await s.store.tasks.create(testTask("a"));
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => s.store.tasks.assign(claim("a", { nodeId: `n${i}`, leaseId: `L${i}` }))),
      );
      const winners = results.filter((r) => r !== undefined);
      assert.equal(winners.length, 1);
      const task = await s.store.tasks.get("a");
      assert.equal(task?.leaseId, winners[0]?.leaseId);
      assert.equal((await s.store.tasks.attempts("a")).length, 1);
    });

    it("fences messages by lease: a stale lease cannot mark running or end the attempt", async () => {
      await s.store.tasks.create(testTask("a"));
      await s.store.tasks.assign(claim("a"));
      assert.equal(await s.store.tasks.markRunning("a", 1, "stale", 6), undefined);
      assert.equal(await s.store.tasks.markRunning("a", 2, "L1", 6), undefined);
      assert.equal((await s.store.tasks.markRunning("a", 1, "L1", 6))?.status, "running");
      assert.equal(await s.store.tasks.markRunning("a", 1, "L1", 6), undefined, "only from setup");
      assert.equal((await s.store.tasks.attempts("a"))[0]?.status, "running");
      assert.equal(await s.store.tasks.endAttempt(ending("a", { leaseId: "stale" })), undefined);
      assert.equal(await s.store.tasks.endAttempt(ending("a", { attempt: 2 })), undefined);
      assert.equal((await s.store.tasks.endAttempt(ending("a")))?.status, "done");
      assert.equal(await s.store.tasks.endAttempt(ending("a")), undefined);
      const task = await s.store.tasks.get("a");
      assert.equal(task?.status, "done");
      assert.equal(task?.result, "success");
      assert.equal(task?.exitCode, 0);
      assert.equal(task?.endTime, 7);
      assert.equal(task?.logSize, 3);
      assert.equal(task?.leaseId, "");
      assert.equal(task?.leaseExpireTime, 0);
      const [attempt] = await s.store.tasks.attempts("a");
      assert.deepEqual(attempt, {
        taskId: "a",
        number: 1,
        nodeId: "n1",
        leaseId: "L1",
        status: "done",
        result: "success",
        exitCode: 0,
        error: "",
        logBase: 0,
        startTime: 5,
        endTime: 7,
      });
    });

    it("lists finished tasks that ended before a time, oldest end first", async () => {
      for (const [id, end] of [
        ["late", 300],
        ["early", 100],
        ["mid", 200],
      ] as const) {
        await s.store.tasks.create(testTask(id));
        await s.store.tasks.assign(claim(id));
        await s.store.tasks.endAttempt(ending(id, { now: end }));
      }
      await s.store.tasks.create(testTask("stopped-waiting"));
      await s.store.tasks.stopWaiting("stopped-waiting", 150);
      await s.store.tasks.create(testTask("running"));
      await s.store.tasks.assign(claim("running"));
      await s.store.tasks.create(testTask("waiting"));
      assert.deepEqual(
        (await s.store.tasks.listFinishedBefore(250, 10)).map((t) => t.id),
        ["early", "stopped-waiting", "mid"],
      );
      assert.deepEqual(
        (await s.store.tasks.listFinishedBefore(250, 2)).map((t) => t.id),
        ["early", "stopped-waiting"],
      );
      assert.deepEqual(
        (await s.store.tasks.listFinishedBefore(100, 10)).map((t) => t.id),
        [],
      );
    });

    it("requeues an attempt as waiting and finds expired leases", async () => {
      await s.store.tasks.create(testTask("a"));
      await s.store.tasks.assign(claim("a"));
      assert.deepEqual(
        (await s.store.tasks.listExpiredLeases(50)).map((t) => t.id),
        [],
      );
      assert.deepEqual(
        (await s.store.tasks.listExpiredLeases(150)).map((t) => t.id),
        ["a"],
      );
      await s.store.tasks.renewLeases("n1", 200);
      assert.deepEqual(
        (await s.store.tasks.listExpiredLeases(150)).map((t) => t.id),
        [],
      );
      const requeued = await s.store.tasks.endAttempt(
        ending("a", {
          result: "error",
          exitCode: null,
          error: "lease expired",
          taskStatus: "waiting",
          infraFailures: 1,
          logSize: 0,
          now: 300,
        }),
      );
      assert.equal(requeued?.status, "waiting");
      const task = await s.store.tasks.get("a");
      assert.equal(task?.status, "waiting");
      assert.equal(task?.result, "none");
      assert.equal(task?.exitCode, null);
      assert.equal(task?.error, "");
      assert.equal(task?.endTime, null);
      assert.equal(task?.infraFailures, 1);
      assert.equal((await s.store.tasks.attempts("a"))[0]?.error, "lease expired");
      assert.equal((await s.store.tasks.attempts("a"))[0]?.result, "error");
      const second = await s.store.tasks.assign(
        claim("a", { fromAttempt: 1, nodeId: "n2", leaseId: "L2", leaseExpireTime: 400, logBase: 10, now: 301 }),
      );
      assert.equal(second?.attempt, 2);
      assert.equal(second?.startTime, 5, "the task keeps its first start time");
      assert.deepEqual(
        (await s.store.tasks.attempts("a")).map((a) => [a.number, a.nodeId, a.logBase, a.startTime]),
        [
          [1, "n1", 0, 5],
          [2, "n2", 10, 301],
        ],
      );
    });

    it("renews and shortens only the node's active leases; shortening never extends", async () => {
      for (const id of ["a", "b", "c", "d"]) await s.store.tasks.create(testTask(id));
      await s.store.tasks.assign(claim("a", { leaseExpireTime: 100 }));
      await s.store.tasks.assign(claim("b", { leaseId: "Lb", leaseExpireTime: 20 }));
      await s.store.tasks.assign(claim("c", { nodeId: "n2", leaseId: "Lc", leaseExpireTime: 100 }));
      await s.store.tasks.shortenLeases("n1", 50);
      const lease = async (id: string) => (await s.store.tasks.get(id))?.leaseExpireTime;
      assert.deepEqual([await lease("a"), await lease("b"), await lease("c"), await lease("d")], [50, 20, 100, 0]);
      await s.store.tasks.renewLeases("n1", 500);
      assert.deepEqual([await lease("a"), await lease("b"), await lease("c"), await lease("d")], [500, 500, 100, 0]);
      assert.deepEqual(
        (await s.store.tasks.listActive()).map((t) => t.id),
        ["a", "b", "c"],
      );
      assert.deepEqual(
        (await s.store.tasks.listExpiredLeases(200)).map((t) => t.id),
        ["c"],
      );
    });

    it("stops: a stop request only for active tasks, which then end as stopped", async () => {
      await s.store.tasks.create(testTask("a"));
      await s.store.tasks.create(testTask("b"));
      assert.equal(await s.store.tasks.requestStop("a", 4), undefined, "not active yet");
      await s.store.tasks.assign(claim("a"));
      const stopping = await s.store.tasks.requestStop("a", 6);
      assert.equal(stopping?.status, "stop");
      assert.equal(stopping?.updateTime, 6);
      assert.equal(await s.store.tasks.requestStop("a", 6), undefined, "already stopping");
      assert.equal(await s.store.tasks.markRunning("a", 1, "L1", 7), undefined, "a stopping task does not start");
      assert.deepEqual(
        (await s.store.tasks.listActive()).map((t) => t.id),
        ["a"],
      );
      const stopped = await s.store.tasks.endAttempt(
        ending("a", { result: "error", exitCode: null, error: "stopped", taskStatus: "stopped", now: 8 }),
      );
      assert.equal(stopped?.status, "stopped");
      assert.equal(stopped?.result, "error");
      assert.equal((await s.store.tasks.attempts("a"))[0]?.status, "stopped");
      assert.equal(await s.store.tasks.requestStop("a", 9), undefined);

      const waitingStopped = await s.store.tasks.stopWaiting("b", 9);
      assert.equal(waitingStopped?.status, "stopped");
      assert.equal(waitingStopped?.result, "error");
      assert.equal(waitingStopped?.error, "stopped before it ran");
      assert.equal(waitingStopped?.endTime, 9);
      assert.equal(await s.store.tasks.stopWaiting("b", 10), undefined);
      assert.equal(await s.store.tasks.stopWaiting("a", 10), undefined);
    });

    it("restarts only finished tasks, as waiting from scratch, keeping the attempt history", async () => {
      await s.store.tasks.create(testTask("a"));
      assert.equal(await s.store.tasks.restart("a", 2), undefined, "waiting tasks do not restart");
      await s.store.tasks.assign(claim("a"));
      assert.equal(await s.store.tasks.restart("a", 6), undefined, "active tasks do not restart");
      await s.store.tasks.endAttempt(ending("a", { result: "failed", exitCode: 1, scriptRetries: 1, infraFailures: 1, now: 8 }));
      const restarted = await s.store.tasks.restart("a", 20);
      assert.ok(restarted);
      assert.deepEqual(
        {
          status: restarted.status,
          result: restarted.result,
          exitCode: restarted.exitCode,
          error: restarted.error,
          nodeId: restarted.nodeId,
          infraFailures: restarted.infraFailures,
          scriptRetries: restarted.scriptRetries,
          startTime: restarted.startTime,
          endTime: restarted.endTime,
          notBefore: restarted.notBefore,
          updateTime: restarted.updateTime,
          attempt: restarted.attempt,
        },
        {
          status: "waiting",
          result: "none",
          exitCode: null,
          error: "",
          nodeId: "",
          infraFailures: 0,
          scriptRetries: 0,
          startTime: null,
          endTime: null,
          notBefore: 20,
          updateTime: 20,
          attempt: 1,
        },
      );
      assert.equal(await s.store.tasks.hasWaiting(), true);
      const again = await s.store.tasks.assign(claim("a", { fromAttempt: 1, leaseId: "L2", now: 21 }));
      assert.equal(again?.startTime, 21, "a restarted task starts afresh");
      assert.deepEqual(
        (await s.store.tasks.attempts("a")).map((a) => [a.number, a.status, a.result]),
        [
          [1, "done", "failed"],
          [2, "setup", "none"],
        ],
      );
    });

    it("deletes a task with its attempts", async () => {
      await s.store.tasks.create(testTask("a"));
      await s.store.tasks.assign(claim("a"));
      assert.equal(await s.store.tasks.delete("a"), true);
      assert.equal(await s.store.tasks.get("a"), undefined);
      assert.deepEqual(await s.store.tasks.attempts("a"), []);
      assert.equal(await s.store.tasks.delete("a"), false);
    });

    it("finds an attempt by its task token hash, in any state", async () => {
      await s.store.tasks.create(testTask("a"));
      await s.store.tasks.create(testTask("b"));
      await s.store.tasks.assign(claim("a", { tokenHash: "h1" }));
      await s.store.tasks.assign(claim("b", { leaseId: "Lb" }));
      assert.deepEqual(
        [(await s.store.tasks.attemptByTokenHash("h1"))?.taskId, (await s.store.tasks.attemptByTokenHash("h1"))?.number],
        ["a", 1],
      );
      assert.equal(await s.store.tasks.attemptByTokenHash(""), undefined, "an attempt without a token has none");
      assert.equal(await s.store.tasks.attemptByTokenHash("other"), undefined);
      await s.store.tasks.endAttempt(ending("a", { taskStatus: "waiting", infraFailures: 1 }));
      await s.store.tasks.assign(claim("a", { fromAttempt: 1, leaseId: "L2", tokenHash: "h2" }));
      assert.equal((await s.store.tasks.attemptByTokenHash("h1"))?.status, "done");
      assert.equal((await s.store.tasks.attemptByTokenHash("h2"))?.number, 2);
    });

    it("lists waiting tasks fairly across owners, FIFO within one, only for served queues and types", async () => {
      for (let i = 0; i < 50; i++) await s.store.tasks.create(testTask(`a${i}`, "heavy"));
      await s.store.tasks.create(testTask("b0", "light"));
      await s.store.tasks.create({ ...testTask("gpu", "light"), queue: "gpu" });
      await s.store.tasks.create({ ...testTask("dock", "light"), definition: { ...testDefinition, type: "docker" } });
      await s.store.tasks.create({ ...testTask("later", "light"), notBefore: 1000 });
      const q = { now: 10, queues: ["general"], types: ["host"], perOwner: 3, limit: 4 };
      assert.deepEqual(
        (await s.store.tasks.listWaiting(q)).map((t) => t.id),
        ["a0", "b0", "a1", "a2"],
      );
      assert.deepEqual(
        (await s.store.tasks.listWaiting({ ...q, queues: ["general", "gpu"], types: ["host", "docker"], limit: 10 })).map(
          (t) => t.id,
        ),
        ["a0", "b0", "a1", "gpu", "a2", "dock"],
      );
      assert.deepEqual(
        (await s.store.tasks.listWaiting({ ...q, now: 2000, perOwner: 1 })).map((t) => t.id),
        ["a0", "b0"],
      );
      assert.deepEqual(
        (await s.store.tasks.listWaiting({ ...q, now: 2000, perOwner: 2, limit: 10 })).map((t) => t.id),
        ["a0", "b0", "a1", "later"],
      );
      assert.deepEqual(
        (await s.store.tasks.listWaiting({ ...q, queues: [] })).map((t) => t.id),
        [],
      );
      assert.deepEqual(
        (await s.store.tasks.listWaiting({ ...q, types: [] })).map((t) => t.id),
        [],
      );
      await s.store.tasks.assign(claim("a0"));
      assert.deepEqual(
        (await s.store.tasks.listWaiting(q)).map((t) => t.id),
        ["a1", "b0", "a2", "a3"],
        "only waiting tasks",
      );
    });

    it("lists newest first with filters and seq pagination; waiting oldest first", async () => {
      for (const id of ["a", "b", "c", "d"]) await s.store.tasks.create(testTask(id, id === "c" ? "u2" : "u1"));
      const page1 = await s.store.tasks.list({ limit: 2 });
      assert.deepEqual(
        page1.map((t) => t.id),
        ["d", "c"],
      );
      const page2 = await s.store.tasks.list({ limit: 2, beforeSeq: page1[1]?.seq });
      assert.deepEqual(
        page2.map((t) => t.id),
        ["b", "a"],
      );
      assert.deepEqual(
        (await s.store.tasks.list({ limit: 10, ownerId: "u2" })).map((t) => t.id),
        ["c"],
      );
      const all = { now: 0, queues: ["general"], types: ["host"], perOwner: 10, limit: 10 };
      assert.deepEqual(
        (await s.store.tasks.listWaiting(all)).map((t) => t.id),
        ["a", "c", "b", "d"],
      );
      assert.equal((await s.store.tasks.stopWaiting("b", 9))?.status, "stopped");
      assert.deepEqual(
        (await s.store.tasks.list({ limit: 10, statuses: ["stopped"] })).map((t) => t.id),
        ["b"],
      );
      assert.equal((await s.store.tasks.restart("b", 10))?.status, "waiting");
      assert.equal((await s.store.tasks.get("b"))?.status, "waiting");
    });

    it("filters listings by status, result, pipeline and queue", async () => {
      await s.store.tasks.create({ ...testTask("a"), pipelineId: "p1" });
      await s.store.tasks.create({ ...testTask("b"), pipelineId: "p1", queue: "gpu" });
      await s.store.tasks.create(testTask("c"));
      await s.store.tasks.assign(claim("a"));
      await s.store.tasks.endAttempt(ending("a", { result: "failed", exitCode: 2 }));
      await s.store.tasks.assign(claim("c", { leaseId: "Lc" }));
      const ids = async (q: Parameters<typeof s.store.tasks.list>[0]) => (await s.store.tasks.list(q)).map((t) => t.id);
      assert.deepEqual(await ids({ limit: 10, pipelineId: "p1" }), ["b", "a"]);
      assert.deepEqual(await ids({ limit: 10, queue: "gpu" }), ["b"]);
      assert.deepEqual(await ids({ limit: 10, result: "failed" }), ["a"]);
      assert.deepEqual(await ids({ limit: 10, statuses: ["setup", "waiting"] }), ["c", "b"]);
      assert.deepEqual(await ids({ limit: 10, statuses: ["done"], pipelineId: "p1" }), ["a"]);
      assert.deepEqual(await ids({ limit: 10, statuses: ["running"] }), []);
      assert.equal(await s.store.tasks.hasWaiting(), true);
      await s.store.tasks.stopWaiting("b", 9);
      assert.equal(await s.store.tasks.hasWaiting(), false);
    });

    it("counts unfinished tasks per status and queue", async () => {
      await s.store.tasks.create(testTask("a"));
      await s.store.tasks.create({ ...testTask("b"), queue: "gpu" });
      await s.store.tasks.create({ ...testTask("c"), queue: "gpu" });
      await s.store.tasks.create(testTask("d"));
      await s.store.tasks.assign(claim("a"));
      await s.store.tasks.assign(claim("d", { leaseId: "Ld" }));
      await s.store.tasks.endAttempt(ending("d", { leaseId: "Ld" }));
      const counts = (await s.store.tasks.countUnfinished()).map((c) => `${c.status}/${c.queue}=${c.count}`).sort();
      assert.deepEqual(counts, ["setup/general=1", "waiting/gpu=2"]);
    });

    itShared(
      factory,
      "gives tasks created through two stores on one database distinct seq, and lets one claim win",
      async (one, two) => {
        const created = await Promise.all(
          Array.from({ length: 20 }, (_, i) => (i % 2 ? one : two).tasks.create(testTask(`t${i}`))),
        );
        assert.equal(new Set(created.map((t) => t.seq)).size, 20);
        const listed = await one.tasks.list({ limit: 100 });
        assert.equal(listed.length, 20);
        const seqs = listed.map((t) => t.seq);
        assert.deepEqual(
          seqs,
          [...seqs].sort((a, b) => b - a),
        );
        const claims = await Promise.all([one, two, one, two].map((st, i) => st.tasks.assign(claim("t0", { leaseId: `L${i}` }))));
        assert.equal(claims.filter((c) => c !== undefined).length, 1);
      },
    );
  });
}
