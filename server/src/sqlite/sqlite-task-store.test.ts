import assert from "node:assert/strict";
import type { Store } from "../store/store.js";
import type { TaskRecord } from "../store/task-store.js";
import { newWaitingTask } from "../store/new-task.js";
import { openSqliteStore } from "./sqlite-store.js";

const definition = {
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

function newTask(id: string, ownerId = "u1"): Omit<TaskRecord, "seq"> {
  return { ...newWaitingTask({ id, definition, ownerId, now: 1 }), notBefore: 0 };
}

describe("SqliteTaskStore", () => {
  let store: Store;
  beforeEach(() => {
    store = openSqliteStore(":memory:");
  });
  afterEach(() => store.close());

  it("assigns a waiting task once: the compare-and-set refuses a second claim", async () => {
    await store.tasks.create(newTask("a"));
    const claim = { taskId: "a", fromAttempt: 0, nodeId: "n1", leaseId: "L1", leaseExpireTime: 100, logBase: 0, now: 5 };
    assert.equal((await store.tasks.assign(claim))?.leaseId, "L1");
    assert.equal(await store.tasks.assign({ ...claim, nodeId: "n2", leaseId: "L2" }), undefined);
    const task = await store.tasks.get("a");
    assert.equal(task?.status, "setup");
    assert.equal(task?.attempt, 1);
    assert.equal(task?.leaseId, "L1");
    assert.equal(task?.nodeId, "n1");
    assert.deepEqual(
      (await store.tasks.attempts("a")).map((a) => [a.number, a.nodeId, a.status]),
      [[1, "n1", "setup"]],
    );
  });

  it("fences messages by lease: a stale lease cannot mark running or end the attempt", async () => {
    await store.tasks.create(newTask("a"));
    await store.tasks.assign({
      taskId: "a",
      fromAttempt: 0,
      nodeId: "n1",
      leaseId: "L1",
      leaseExpireTime: 100,
      logBase: 0,
      now: 5,
    });
    assert.equal(await store.tasks.markRunning("a", 1, "stale", 6), undefined);
    assert.equal((await store.tasks.markRunning("a", 1, "L1", 6))?.status, "running");
    const end = {
      taskId: "a",
      attempt: 1,
      leaseId: "stale",
      result: "success" as const,
      exitCode: 0,
      error: "",
      taskStatus: "done" as const,
      infraFailures: 0,
      scriptRetries: 0,
      logSize: 3,
      now: 7,
    };
    assert.equal(await store.tasks.endAttempt(end), undefined);
    assert.equal((await store.tasks.endAttempt({ ...end, leaseId: "L1" }))?.status, "done");
    assert.equal(await store.tasks.endAttempt({ ...end, leaseId: "L1" }), undefined);
    const task = await store.tasks.get("a");
    assert.equal(task?.status, "done");
    assert.equal(task?.result, "success");
    assert.equal(task?.exitCode, 0);
    assert.equal(task?.endTime, 7);
    assert.equal(task?.logSize, 3);
  });

  it("requeues an attempt as waiting and finds expired leases", async () => {
    await store.tasks.create(newTask("a"));
    await store.tasks.assign({
      taskId: "a",
      fromAttempt: 0,
      nodeId: "n1",
      leaseId: "L1",
      leaseExpireTime: 100,
      logBase: 0,
      now: 5,
    });
    assert.deepEqual(
      (await store.tasks.listExpiredLeases(50)).map((t) => t.id),
      [],
    );
    assert.deepEqual(
      (await store.tasks.listExpiredLeases(150)).map((t) => t.id),
      ["a"],
    );
    await store.tasks.renewLeases("n1", 200);
    assert.deepEqual(
      (await store.tasks.listExpiredLeases(150)).map((t) => t.id),
      [],
    );
    const requeued = await store.tasks.endAttempt({
      taskId: "a",
      attempt: 1,
      leaseId: "L1",
      result: "error",
      exitCode: null,
      error: "lease expired",
      taskStatus: "waiting",
      infraFailures: 1,
      scriptRetries: 0,
      logSize: 0,
      now: 300,
    });
    assert.equal(requeued?.status, "waiting");
    const task = await store.tasks.get("a");
    assert.equal(task?.status, "waiting");
    assert.equal(task?.result, "none");
    assert.equal(task?.infraFailures, 1);
    assert.equal((await store.tasks.attempts("a"))[0]?.error, "lease expired");
    assert.equal(
      (
        await store.tasks.assign({
          taskId: "a",
          fromAttempt: 1,
          nodeId: "n2",
          leaseId: "L2",
          leaseExpireTime: 400,
          logBase: 10,
          now: 301,
        })
      )?.attempt,
      2,
    );
    assert.deepEqual(
      (await store.tasks.attempts("a")).map((a) => [a.number, a.nodeId, a.logBase]),
      [
        [1, "n1", 0],
        [2, "n2", 10],
      ],
    );
  });

  it("lists waiting tasks fairly across owners, FIFO within one, only for served queues and types", async () => {
    for (let i = 0; i < 50; i++) await store.tasks.create(newTask(`a${i}`, "heavy"));
    await store.tasks.create(newTask("b0", "light"));
    await store.tasks.create({ ...newTask("gpu", "light"), queue: "gpu" });
    await store.tasks.create({ ...newTask("dock", "light"), definition: { ...definition, type: "docker" } });
    await store.tasks.create({ ...newTask("later", "light"), notBefore: 1000 });
    const q = { now: 10, queues: ["general"], types: ["host"], perOwner: 3, limit: 4 };
    assert.deepEqual(
      (await store.tasks.listWaiting(q)).map((t) => t.id),
      ["a0", "b0", "a1", "a2"],
    );
    assert.deepEqual(
      (await store.tasks.listWaiting({ ...q, queues: ["general", "gpu"], types: ["host", "docker"], limit: 10 })).map(
        (t) => t.id,
      ),
      ["a0", "b0", "a1", "gpu", "a2", "dock"],
    );
    assert.deepEqual(
      (await store.tasks.listWaiting({ ...q, now: 2000, perOwner: 1 })).map((t) => t.id),
      ["a0", "b0"],
    );
    assert.deepEqual(
      (await store.tasks.listWaiting({ ...q, queues: [] })).map((t) => t.id),
      [],
    );
  });

  it("lists newest first with filters and seq pagination; waiting oldest first", async () => {
    for (const id of ["a", "b", "c", "d"]) await store.tasks.create(newTask(id, id === "c" ? "u2" : "u1"));
    const page1 = await store.tasks.list({ limit: 2 });
    assert.deepEqual(
      page1.map((t) => t.id),
      ["d", "c"],
    );
    const page2 = await store.tasks.list({ limit: 2, beforeSeq: page1[1]?.seq });
    assert.deepEqual(
      page2.map((t) => t.id),
      ["b", "a"],
    );
    assert.deepEqual(
      (await store.tasks.list({ limit: 10, ownerId: "u2" })).map((t) => t.id),
      ["c"],
    );
    const all = { now: 0, queues: ["general"], types: ["host"], perOwner: 10, limit: 10 };
    assert.deepEqual(
      (await store.tasks.listWaiting(all)).map((t) => t.id),
      ["a", "c", "b", "d"],
    );
    assert.equal((await store.tasks.stopWaiting("b", 9))?.status, "stopped");
    assert.deepEqual(
      (await store.tasks.list({ limit: 10, statuses: ["stopped"] })).map((t) => t.id),
      ["b"],
    );
    assert.equal((await store.tasks.restart("b", 10))?.status, "waiting");
    assert.equal((await store.tasks.get("b"))?.status, "waiting");
  });
});
