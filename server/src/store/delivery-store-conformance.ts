import assert from "node:assert/strict";
import { freshStore, type StoreFactory } from "./conformance-harness.js";
import type { PublisherRecord } from "./delivery-store.js";
import type { Store } from "./store.js";
import { testTask } from "./task-store-conformance.js";

const publisher = (id: string, over: Partial<PublisherRecord> = {}): PublisherRecord => ({
  id,
  namespace: "repo",
  kind: "rsync",
  target: "/srv/mirror",
  branch: "",
  tag: "latest",
  creatorId: "u1",
  createTime: Number(id.replace(/\D/g, "")) || 1,
  ...over,
});

async function namespaces(store: Store, ...names: string[]): Promise<void> {
  for (const name of names) {
    await store.namespaces.create({
      name,
      ownerId: "u1",
      organizationId: "",
      visibility: "private",
      headRevision: 0,
      createTime: 1,
    });
  }
}

/**
 * DeliveryStore behaviour every backend shares (issue 6, item 7): one delivery per following
 * publisher, the newest move supersedes pending ones, guarded transitions, one running delivery
 * per publisher, the event cursor.
 */
export function deliveryStoreConformance(factory: StoreFactory): void {
  describe("DeliveryStore", () => {
    const s = freshStore(factory);
    let n = 0;
    const newId = () => `d${++n}`;
    beforeEach(() => {
      n = 0;
    });

    it("stores publishers per namespace and removes one (or a whole namespace) with its deliveries", async () => {
      const { deliveries } = s.store;
      await namespaces(s.store, "repo", "other");
      await deliveries.addPublisher(publisher("p2", { kind: "git", target: "git@host:x.git", branch: "main" }));
      await deliveries.addPublisher(publisher("p1"));
      await deliveries.addPublisher(publisher("p3", { namespace: "other" }));
      assert.deepEqual(
        (await deliveries.listPublishers("repo")).map((p) => p.id),
        ["p1", "p2"],
      );
      assert.deepEqual(
        await deliveries.getPublisher("p2"),
        publisher("p2", { kind: "git", target: "git@host:x.git", branch: "main" }),
      );
      assert.equal(await deliveries.getPublisher("nope"), undefined);
      await deliveries.enqueueTagMove({ namespace: "repo", tag: "latest", revision: 1 }, 10, newId);
      assert.equal(await deliveries.removePublisher("p1"), true);
      assert.equal(await deliveries.removePublisher("p1"), false);
      assert.deepEqual(
        (await deliveries.list({ namespace: "repo", limit: 10 })).map((d) => d.publisherId),
        ["p2"],
      );
      await s.store.namespaces.delete("repo");
      assert.deepEqual(await deliveries.listPublishers("repo"), [], "a deleted namespace takes its publishers along");
      assert.deepEqual(await deliveries.list({ namespace: "repo", limit: 10 }), [], "and their deliveries");
      assert.equal((await deliveries.listPublishers("other")).length, 1);
    });

    it("queues one delivery per follower of the moved tag; the newest move supersedes pending ones, never a running one", async () => {
      const { deliveries } = s.store;
      await namespaces(s.store, "repo", "other");
      await deliveries.addPublisher(publisher("p1"));
      await deliveries.addPublisher(publisher("p2"));
      await deliveries.addPublisher(publisher("p3", { tag: "stable" }));
      await deliveries.addPublisher(publisher("p4", { namespace: "other" }));
      const first = await deliveries.enqueueTagMove({ namespace: "repo", tag: "latest", revision: 3 }, 10, newId);
      assert.deepEqual(
        first.created.map((d) => [
          d.id,
          d.publisherId,
          d.namespace,
          d.revision,
          d.tag,
          d.state,
          d.attempts,
          d.error,
          d.nextAttemptTime,
        ]),
        [
          ["d1", "p1", "repo", 3, "latest", "pending", 0, "", 10],
          ["d2", "p2", "repo", 3, "latest", "pending", 0, "", 10],
        ],
      );
      assert.deepEqual(first.superseded, []);
      const claimed = await deliveries.claim("d2", 11);
      assert.equal(claimed?.state, "running");
      assert.equal(claimed?.attempts, 1);
      const second = await deliveries.enqueueTagMove({ namespace: "repo", tag: "latest", revision: 2 }, 12, newId);
      assert.deepEqual(
        second.superseded.map((d) => [d.id, d.state, d.updateTime]),
        [["d1", "superseded", 12]],
      );
      assert.equal((await deliveries.get("d2"))?.state, "running", "a running delivery is not superseded");
      assert.equal((await deliveries.newerThan((await deliveries.get("d2"))!))?.id, "d4");
      assert.equal(await deliveries.newerThan((await deliveries.get("d4"))!), undefined);
      const only = await deliveries.enqueueTagMove(
        { namespace: "repo", tag: "latest", revision: 5, publisherId: "p1" },
        13,
        newId,
      );
      assert.deepEqual(
        only.created.map((d) => [d.publisherId, d.revision]),
        [["p1", 5]],
      );
      assert.deepEqual(
        only.superseded.map((d) => d.id),
        ["d3"],
      );
      assert.deepEqual(
        (await deliveries.list({ namespace: "repo", limit: 10 })).map((d) => [d.id, d.state]),
        [
          ["d5", "pending"],
          ["d4", "pending"],
          ["d3", "superseded"],
          ["d2", "running"],
          ["d1", "superseded"],
        ],
      );
      assert.deepEqual(
        (await deliveries.list({ namespace: "repo", publisherId: "p2", limit: 1 })).map((d) => d.id),
        ["d4"],
      );
    });

    it("lists due deliveries (one per publisher with none running), guards every transition, retries and requeues", async () => {
      const { deliveries } = s.store;
      await namespaces(s.store, "repo");
      await deliveries.addPublisher(publisher("p1"));
      await deliveries.addPublisher(publisher("p2"));
      await deliveries.enqueueTagMove({ namespace: "repo", tag: "latest", revision: 1 }, 10, newId);
      assert.deepEqual(await deliveries.listDue(9, 10), []);
      assert.deepEqual(
        (await deliveries.listDue(10, 10)).map((d) => d.id),
        ["d1", "d2"],
      );
      assert.deepEqual(
        (await deliveries.listDue(10, 1)).map((d) => d.id),
        ["d1"],
      );
      assert.equal(await deliveries.nextDueTime(), 10);

      await deliveries.claim("d1", 11);
      assert.equal(await deliveries.claim("d1", 11), undefined, "claimed once");
      await deliveries.enqueueTagMove({ namespace: "repo", tag: "latest", revision: 2, publisherId: "p1" }, 12, newId);
      assert.deepEqual(
        (await deliveries.listDue(100, 10)).map((d) => d.id),
        ["d2"],
        "p1 has a running delivery",
      );
      assert.equal(await deliveries.nextDueTime(), 10, "only publishers with nothing running count");

      const retrying = await deliveries.finish("d1", { state: "pending", error: "boom", nextAttemptTime: 50 }, 13);
      assert.deepEqual(
        [retrying?.state, retrying?.error, retrying?.nextAttemptTime, retrying?.attempts],
        ["pending", "boom", 50, 1],
      );
      assert.equal(
        await deliveries.finish("d1", { state: "succeeded", error: "", nextAttemptTime: 0 }, 14),
        undefined,
        "not running",
      );
      await deliveries.claim("d1", 50);
      const failed = await deliveries.finish("d1", { state: "failed", error: "boom again", nextAttemptTime: 0 }, 51);
      assert.deepEqual([failed?.state, failed?.attempts, failed?.updateTime], ["failed", 2, 51]);
      const retried = await deliveries.retry("d1", 60);
      assert.deepEqual(
        [retried?.state, retried?.attempts, retried?.nextAttemptTime, retried?.error],
        ["pending", 0, 60, "boom again"],
      );
      await deliveries.claim("d1", 61);
      assert.equal(await deliveries.retry("d1", 62), undefined, "a running delivery cannot be retried");
      await deliveries.finish("d1", { state: "succeeded", error: "", nextAttemptTime: 0 }, 63);
      assert.equal(await deliveries.retry("d1", 64), undefined, "nor a succeeded one");

      await deliveries.claim("d2", 70);
      const requeued = await deliveries.requeueRunning(80);
      assert.deepEqual(
        requeued.map((d) => [d.id, d.state, d.attempts, d.nextAttemptTime]),
        [["d2", "pending", 1, 80]],
      );
      assert.equal(await deliveries.nextDueTime(), 12);
      assert.equal(await deliveries.get("nope"), undefined);
    });

    it("keeps an event cursor that only moves forward, also through enqueueTagMove", async () => {
      const { deliveries } = s.store;
      await namespaces(s.store, "repo");
      assert.equal(await deliveries.eventCursor(), undefined);
      await deliveries.setEventCursor(5);
      assert.equal(await deliveries.eventCursor(), 5);
      await deliveries.enqueueTagMove({ namespace: "repo", tag: "latest", revision: 1, eventSequence: 9 }, 1, newId);
      assert.equal(await deliveries.eventCursor(), 9);
      await deliveries.setEventCursor(7);
      assert.equal(await deliveries.eventCursor(), 9);
    });
  });

  describe("BlobReferences", () => {
    const s = freshStore(factory);

    it("finds digests named by artefacts, storage files, namespace entries of any revision and log segments", async () => {
      const store = s.store;
      const digest = (i: number) => i.toString(16).padStart(64, "0");
      await store.tasks.create(testTask("t1"));
      await store.artefacts.put({ taskId: "t1", path: "a", size: 1, sha256: digest(1), createTime: 1 });
      await store.storages.create({ id: "s1", name: "bucket", ownerId: "u1", createTime: 1 });
      await store.storages.putFile({ storageId: "s1", path: "b", size: 1, sha256: digest(2), createTime: 1 });
      await namespaces(store, "repo");
      const commit = { namespace: "repo", remove: [], taskId: "", message: "", creatorId: "u1", tag: "latest", now: 1 };
      await store.namespaces.commitRevision({ ...commit, head: 0, parent: 0, put: [{ path: "c", size: 1, sha256: digest(3) }] });
      await store.namespaces.commitRevision({ ...commit, head: 1, parent: 1, put: [{ path: "c", size: 1, sha256: digest(4) }] });
      await store.logSegments.add({ taskId: "t1", start: 0, length: 1, sha256: digest(5) });
      const all = Array.from({ length: 700 }, (_, i) => digest(i));
      assert.deepEqual([...(await store.blobReferences.referenced(all))].sort(), [1, 2, 3, 4, 5].map(digest));
      assert.deepEqual([...(await store.blobReferences.referenced([]))], []);
    });
  });
}
