import assert from "node:assert/strict";
import { freshStore, type StoreFactory } from "./conformance-harness.js";
import { newWaitingTask } from "./new-task.js";
import { testDefinition as definition } from "./task-store-conformance.js";

const sha = (c: string) => c.repeat(64);

/** ArtefactStore behaviour every backend shares: upsert by (task, path), literal prefixes, per-task removal. */
export function artefactStoreConformance(factory: StoreFactory): void {
  describe("ArtefactStore", () => {
    const s = freshStore(factory);
    beforeEach(async () => {
      await s.store.tasks.create(newWaitingTask({ id: "t1", definition, ownerId: "u1", now: 1 }));
      await s.store.tasks.create(newWaitingTask({ id: "t2", definition, ownerId: "u1", now: 1 }));
    });

    it("puts, replaces, gets and lists artefacts by prefix, sorted by path", async () => {
      const { artefacts } = s.store;
      await artefacts.put({ taskId: "t1", path: "b/2", size: 2, sha256: sha("a"), createTime: 5 });
      await artefacts.put({ taskId: "t1", path: "a", size: 1, sha256: sha("b"), createTime: 5 });
      await artefacts.put({ taskId: "t1", path: "b/1", size: 3, sha256: sha("c"), createTime: 5 });
      await artefacts.put({ taskId: "t2", path: "b/9", size: 3, sha256: sha("c"), createTime: 5 });
      assert.deepEqual(await artefacts.put({ taskId: "t1", path: "b/2", size: 7, sha256: sha("d"), createTime: 6 }), {
        taskId: "t1",
        path: "b/2",
        size: 7,
        sha256: sha("d"),
        createTime: 6,
      });
      assert.deepEqual(
        (await artefacts.list("t1", "")).map((a) => [a.path, a.size]),
        [
          ["a", 1],
          ["b/1", 3],
          ["b/2", 7],
        ],
      );
      assert.deepEqual(
        (await artefacts.list("t1", "b/")).map((a) => a.path),
        ["b/1", "b/2"],
      );
      assert.deepEqual(await artefacts.get("t1", "b/2"), { taskId: "t1", path: "b/2", size: 7, sha256: sha("d"), createTime: 6 });
      assert.equal(await artefacts.get("t1", "zzz"), undefined);
      // A prefix is literal text, not a LIKE pattern or a regular expression.
      await artefacts.put({ taskId: "t1", path: "b_x", size: 1, sha256: sha("e"), createTime: 5 });
      await artefacts.put({ taskId: "t1", path: "b.(x", size: 1, sha256: sha("e"), createTime: 5 });
      assert.deepEqual(
        (await artefacts.list("t1", "b_")).map((a) => a.path),
        ["b_x"],
      );
      assert.deepEqual(
        (await artefacts.list("t1", "b.(")).map((a) => a.path),
        ["b.(x"],
      );
    });

    it("takes concurrent puts of one path: one row, one of the puts' content", async () => {
      const { artefacts } = s.store;
      await Promise.all(
        Array.from({ length: 8 }, (_, i) => artefacts.put({ taskId: "t1", path: "x", size: i, sha256: sha("a"), createTime: i })),
      );
      const rows = await artefacts.list("t1", "");
      assert.equal(rows.length, 1);
    });

    it("removes every artefact row of one task, and only those", async () => {
      const { artefacts } = s.store;
      await artefacts.put({ taskId: "t1", path: "a", size: 1, sha256: sha("a"), createTime: 5 });
      await artefacts.put({ taskId: "t1", path: "b", size: 1, sha256: sha("a"), createTime: 5 });
      await artefacts.put({ taskId: "t2", path: "a", size: 1, sha256: sha("a"), createTime: 5 });
      assert.equal(await artefacts.deleteForTask("t1"), 2);
      assert.equal(await artefacts.deleteForTask("t1"), 0);
      assert.deepEqual(await artefacts.list("t1", ""), []);
      assert.equal((await artefacts.list("t2", "")).length, 1);
    });
  });
}
