import assert from "node:assert/strict";
import { freshStore, type StoreFactory } from "./conformance-harness.js";
import type { LogSegmentRecord } from "./log-segment-store.js";

const segment = (taskId: string, start: number, length: number, sha256: string): LogSegmentRecord => ({
  taskId,
  start,
  length,
  sha256,
});

/** LogSegmentStore behaviour every backend shares: idempotent adds, log order, reference counting. */
export function logSegmentStoreConformance(factory: StoreFactory): void {
  describe("LogSegmentStore", () => {
    const s = freshStore(factory);

    it("lists a task's segments in log order; adding the same start again changes nothing", async () => {
      await s.store.logSegments.add(segment("a", 100, 50, "h2"));
      await s.store.logSegments.add(segment("a", 0, 100, "h1"));
      await s.store.logSegments.add(segment("b", 0, 10, "h3"));
      await s.store.logSegments.add(segment("a", 100, 70, "other"));
      assert.deepEqual(await s.store.logSegments.list("a"), [segment("a", 0, 100, "h1"), segment("a", 100, 50, "h2")]);
      assert.deepEqual(await s.store.logSegments.list("nope"), []);
      assert.deepEqual(await s.store.logSegments.listFrom("a", 100), [segment("a", 100, 50, "h2")]);
      assert.deepEqual(await s.store.logSegments.listFrom("a", 1), [segment("a", 100, 50, "h2")]);
      assert.deepEqual(await s.store.logSegments.listFrom("a", 0), await s.store.logSegments.list("a"));
      assert.deepEqual(await s.store.logSegments.listFrom("a", 150), []);
    });

    it("deletes a task's segments and returns only the digests nothing else references", async () => {
      await s.store.logSegments.add(segment("a", 0, 10, "shared"));
      await s.store.logSegments.add(segment("a", 10, 10, "own"));
      await s.store.logSegments.add(segment("a", 20, 10, "own"));
      await s.store.logSegments.add(segment("b", 0, 10, "shared"));
      assert.deepEqual(await s.store.logSegments.deleteTask("a"), ["own"]);
      assert.deepEqual(await s.store.logSegments.list("a"), []);
      assert.deepEqual(await s.store.logSegments.list("b"), [segment("b", 0, 10, "shared")]);
      assert.deepEqual(await s.store.logSegments.deleteTask("a"), []);
      assert.deepEqual(await s.store.logSegments.deleteTask("b"), ["shared"]);
    });
  });
}
