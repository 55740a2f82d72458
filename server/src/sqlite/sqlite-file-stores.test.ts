import assert from "node:assert/strict";
import type { Store } from "../store/store.js";
import { newWaitingTask } from "../store/new-task.js";
import { StorageExistsError } from "../store/storage-store.js";
import { openSqliteStore } from "./sqlite-store.js";
import { testDefinition as definition } from "../store/task-store-conformance.js";

const sha = (c: string) => c.repeat(64);

describe("SqliteArtefactStore and SqliteStorageStore", () => {
  let store: Store;
  beforeEach(async () => {
    store = openSqliteStore(":memory:");
    await store.tasks.create(newWaitingTask({ id: "t1", definition, ownerId: "u1", now: 1 }));
    await store.tasks.create(newWaitingTask({ id: "t2", definition, ownerId: "u1", now: 1 }));
  });
  afterEach(() => store.close());

  it("puts, replaces, gets and lists artefacts by prefix, sorted by path", async () => {
    await store.artefacts.put({ taskId: "t1", path: "b/2", size: 2, sha256: sha("a"), createTime: 5 });
    await store.artefacts.put({ taskId: "t1", path: "a", size: 1, sha256: sha("b"), createTime: 5 });
    await store.artefacts.put({ taskId: "t1", path: "b/1", size: 3, sha256: sha("c"), createTime: 5 });
    await store.artefacts.put({ taskId: "t2", path: "b/9", size: 3, sha256: sha("c"), createTime: 5 });
    await store.artefacts.put({ taskId: "t1", path: "b/2", size: 7, sha256: sha("d"), createTime: 6 });
    assert.deepEqual(
      (await store.artefacts.list("t1", "")).map((a) => [a.path, a.size]),
      [
        ["a", 1],
        ["b/1", 3],
        ["b/2", 7],
      ],
    );
    assert.deepEqual(
      (await store.artefacts.list("t1", "b/")).map((a) => a.path),
      ["b/1", "b/2"],
    );
    assert.deepEqual(await store.artefacts.get("t1", "b/2"), {
      taskId: "t1",
      path: "b/2",
      size: 7,
      sha256: sha("d"),
      createTime: 6,
    });
    assert.equal(await store.artefacts.get("t1", "zzz"), undefined);
    // A prefix is literal text, not a LIKE pattern.
    await store.artefacts.put({ taskId: "t1", path: "b_x", size: 1, sha256: sha("e"), createTime: 5 });
    assert.deepEqual(
      (await store.artefacts.list("t1", "b_")).map((a) => a.path),
      ["b_x"],
    );
  });

  it("removes a task's artefact rows with the task, and only those", async () => {
    await store.artefacts.put({ taskId: "t1", path: "a", size: 1, sha256: sha("a"), createTime: 5 });
    await store.artefacts.put({ taskId: "t2", path: "a", size: 1, sha256: sha("a"), createTime: 5 });
    assert.equal(await store.tasks.delete("t1"), true);
    assert.deepEqual(await store.artefacts.list("t1", ""), []);
    assert.equal((await store.artefacts.list("t2", "")).length, 1);
    assert.equal(await store.artefacts.deleteForTask("t2"), 1);
  });

  it("creates storages with unique names and finds them by id or name", async () => {
    const s = await store.storages.create({ id: "s1", name: "distfiles", ownerId: "u1", createTime: 3 });
    assert.deepEqual(s, { id: "s1", name: "distfiles", ownerId: "u1", createTime: 3, fileCount: 0, totalSize: 0 });
    await assert.rejects(
      store.storages.create({ id: "s2", name: "distfiles", ownerId: "u2", createTime: 3 }),
      StorageExistsError,
    );
    assert.equal((await store.storages.get("s1"))?.name, "distfiles");
    assert.equal((await store.storages.get("distfiles"))?.id, "s1");
    assert.equal(await store.storages.get("nope"), undefined);
    await store.storages.create({ id: "s3", name: "another", ownerId: "u2", createTime: 4 });
    assert.deepEqual(
      (await store.storages.list()).map((x) => x.name),
      ["another", "distfiles"],
    );
    assert.deepEqual(
      (await store.storages.list("u1")).map((x) => x.name),
      ["distfiles"],
    );
  });

  it("puts, replaces, lists and removes storage files; counts and sizes follow", async () => {
    await store.storages.create({ id: "s1", name: "d", ownerId: "u1", createTime: 3 });
    assert.equal(await store.storages.putFile({ storageId: "s1", path: "x/a", size: 10, sha256: sha("a"), createTime: 4 }), true);
    assert.equal(await store.storages.putFile({ storageId: "s1", path: "x/b", size: 5, sha256: sha("b"), createTime: 4 }), true);
    assert.equal(await store.storages.putFile({ storageId: "s1", path: "x/a", size: 20, sha256: sha("c"), createTime: 5 }), true);
    assert.equal(await store.storages.putFile({ storageId: "gone", path: "a", size: 1, sha256: sha("c"), createTime: 5 }), false);
    const s = await store.storages.get("s1");
    assert.equal(s?.fileCount, 2);
    assert.equal(s?.totalSize, 25);
    assert.deepEqual(
      (await store.storages.listFiles("s1", "x/")).map((f) => [f.path, f.size, f.sha256]),
      [
        ["x/a", 20, sha("c")],
        ["x/b", 5, sha("b")],
      ],
    );
    assert.equal((await store.storages.getFile("s1", "x/b"))?.size, 5);
    assert.equal(await store.storages.removeFiles("s1", ["x/a", "missing"]), 1);
    assert.deepEqual(
      (await store.storages.listFiles("s1", "")).map((f) => f.path),
      ["x/b"],
    );
    assert.equal(await store.storages.delete("s1"), true);
    assert.equal(await store.storages.delete("s1"), false);
    assert.deepEqual(await store.storages.listFiles("s1", ""), []);
  });

  it("finds an attempt by its task token hash", async () => {
    await store.tasks.assign({
      taskId: "t1",
      fromAttempt: 0,
      nodeId: "n1",
      leaseId: "L1",
      leaseExpireTime: 100,
      logBase: 0,
      tokenHash: sha("f"),
      now: 5,
    });
    const attempt = await store.tasks.attemptByTokenHash(sha("f"));
    assert.equal(attempt?.taskId, "t1");
    assert.equal(attempt?.number, 1);
    assert.equal(await store.tasks.attemptByTokenHash(sha("0")), undefined);
    assert.equal(await store.tasks.attemptByTokenHash(""), undefined);
  });
});
