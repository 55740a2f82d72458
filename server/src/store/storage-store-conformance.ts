import assert from "node:assert/strict";
import { freshStore, type StoreFactory } from "./conformance-harness.js";
import { StorageExistsError } from "./storage-store.js";

const sha = (c: string) => c.repeat(64);

/** StorageStore behaviour every backend shares: unique names, id-or-name lookup, files with counts and sizes. */
export function storageStoreConformance(factory: StoreFactory): void {
  describe("StorageStore", () => {
    const s = freshStore(factory);

    it("creates storages with unique names and finds them by id or name", async () => {
      const { storages } = s.store;
      const created = await storages.create({ id: "s1", name: "distfiles", ownerId: "u1", createTime: 3 });
      assert.deepEqual(created, { id: "s1", name: "distfiles", ownerId: "u1", createTime: 3, fileCount: 0, totalSize: 0 });
      await assert.rejects(storages.create({ id: "s2", name: "distfiles", ownerId: "u2", createTime: 3 }), StorageExistsError);
      assert.deepEqual(await storages.get("s1"), created);
      assert.equal((await storages.get("distfiles"))?.id, "s1");
      assert.equal(await storages.get("nope"), undefined);
      await storages.create({ id: "s3", name: "another", ownerId: "u2", createTime: 4 });
      assert.deepEqual(
        (await storages.list()).map((x) => x.name),
        ["another", "distfiles"],
      );
      assert.deepEqual(
        (await storages.list("u1")).map((x) => x.name),
        ["distfiles"],
      );
    });

    it("puts, replaces, lists and removes storage files; counts and sizes follow", async () => {
      const { storages } = s.store;
      await storages.create({ id: "s1", name: "d", ownerId: "u1", createTime: 3 });
      await storages.create({ id: "s2", name: "e", ownerId: "u1", createTime: 3 });
      assert.equal(await storages.putFile({ storageId: "s1", path: "x/a", size: 10, sha256: sha("a"), createTime: 4 }), true);
      assert.equal(await storages.putFile({ storageId: "s1", path: "x/b", size: 5, sha256: sha("b"), createTime: 4 }), true);
      assert.equal(await storages.putFile({ storageId: "s1", path: "x/a", size: 20, sha256: sha("c"), createTime: 5 }), true);
      assert.equal(await storages.putFile({ storageId: "s2", path: "y", size: 1, sha256: sha("c"), createTime: 5 }), true);
      assert.equal(await storages.putFile({ storageId: "gone", path: "a", size: 1, sha256: sha("c"), createTime: 5 }), false);
      assert.deepEqual(
        (await storages.list()).map((x) => [x.name, x.fileCount, x.totalSize]),
        [
          ["d", 2, 25],
          ["e", 1, 1],
        ],
      );
      assert.deepEqual(await storages.listFiles("s1", "x/"), [
        { storageId: "s1", path: "x/a", size: 20, sha256: sha("c"), createTime: 5 },
        { storageId: "s1", path: "x/b", size: 5, sha256: sha("b"), createTime: 4 },
      ]);
      assert.equal((await storages.getFile("s1", "x/b"))?.size, 5);
      assert.equal(await storages.getFile("s1", "nope"), undefined);
      assert.equal(await storages.removeFiles("s1", ["x/a", "missing"]), 1);
      assert.equal(await storages.removeFiles("s1", []), 0);
      assert.deepEqual(
        (await storages.listFiles("s1", "")).map((f) => f.path),
        ["x/b"],
      );
      assert.equal(await storages.delete("s1"), true);
      assert.equal(await storages.delete("s1"), false);
      assert.deepEqual(await storages.listFiles("s1", ""), [], "files go with their storage");
      assert.equal((await storages.get("e"))?.fileCount, 1);
    });
  });
}
