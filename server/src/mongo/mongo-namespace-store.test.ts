import assert from "node:assert/strict";
import { type Collection, type Db, MongoClient } from "mongodb";
import { EventBus } from "../events/event-bus.js";
import { NamespacePublisher, type BlobRef } from "../namespaces/namespace-publisher.js";
import type { Store } from "../store/store.js";
import { type JongodbServer, requireJongodb } from "./jongodb-server.js";
import { createMongoStore } from "./mongo-store.js";

const ci = Boolean(process.env.CI);
let databases = 0;
const freshName = () => `mottainai_ns_${process.pid}_${Date.now()}_${++databases}`;
const blob = (content: string): BlobRef => ({ sha256: content.padEnd(64, "0").slice(0, 64), size: content.length });
const puts = (entries: Record<string, string>) => new Map(Object.entries(entries).map(([p, c]) => [p, blob(c)]));
const namespace = {
  name: "ns",
  ownerId: "u1",
  organizationId: "",
  visibility: "private" as const,
  headRevision: 0,
  createTime: 1,
};

/**
 * A database whose "namespaces" collection parks the first updateOne (the head move of a
 * publish) until release() — a publish stalled, or crashed when it is never released — and
 * then, with fail, rejects it.
 */
function stallingHeadMove(db: Db, fail: boolean): { db: Db; release: () => void } {
  let release = () => {};
  const gate = new Promise<void>((resolve) => (release = resolve));
  let stalled = false;
  const wrap = (c: Collection) =>
    new Proxy(c, {
      get(target, key, receiver) {
        if (key !== "updateOne" || stalled) return Reflect.get(target, key, receiver);
        stalled = true;
        return async (...args: Parameters<Collection["updateOne"]>) => {
          await gate;
          if (fail) throw new Error("server crashed");
          return target.updateOne(...args);
        };
      },
    });
  return {
    db: new Proxy(db, {
      get(target, key, receiver) {
        if (key === "collection")
          return (name: string) => (name === "namespaces" ? wrap(target.collection(name)) : target.collection(name));
        return Reflect.get(target, key, receiver);
      },
    }),
    release: () => release(),
  };
}

// MongoDB-specific namespace cases: the revision claim across two clients (two server processes)
// on jongodb itself, which the claim's design makes possible, and recovery from a publish that
// crashed or stalled between its claim and its head move.
describe("MongoDB namespace publishes (jongodb)", function () {
  let server: JongodbServer | undefined;
  const clients: MongoClient[] = [];
  const client = async () => {
    const c = new MongoClient(server!.url);
    await c.connect();
    clients.push(c);
    return c;
  };

  before(async function () {
    server = await requireJongodb(ci, process.env);
    if (!server) return this.skip();
  });
  after(async () => {
    for (const c of clients) await c.close();
    await server?.stop();
  });

  it("jongodb keeps _id unique under concurrent inserts from two clients (what the claim relies on)", async () => {
    const name = freshName();
    const [a, b] = [await client(), await client()];
    const collections = [a, b].map((c) => c.db(name).collection<{ _id: string }>("claims"));
    for (let round = 0; round < 30; round++) {
      const results = await Promise.allSettled(
        Array.from({ length: 16 }, (_, i) => collections[i % 2]!.insertOne({ _id: `ns:${round}` })),
      );
      assert.equal(results.filter((r) => r.status === "fulfilled").length, 1, `round ${round}: one insert wins`);
    }
  });

  it("serializes publishes from two clients: consecutive revisions, each its parent plus one file", async () => {
    const name = freshName();
    const stores: Store[] = [];
    for (const c of [await client(), await client()]) stores.push(await createMongoStore(c.db(name)));
    const [one, two] = stores as [Store, Store];
    assert.equal(await one.namespaces.create(namespace), true);
    // One event log (one connection): jongodb's $inc counters are not atomic across connections.
    const events = new EventBus(one.events);
    const publishers = [one, two].map((s) => new NamespacePublisher({ store: s.namespaces, events, maxAttempts: 200 }));
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        publishers[i % 2]!.publish({ namespace: "ns", changes: { put: puts({ [`f${i}`]: `c${i}` }) }, creatorId: "u1" }),
      ),
    );
    assert.deepEqual(
      results.map((r) => r.number).sort((x, y) => x - y),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    for (const r of results) {
      const diff = await two.namespaces.diff("ns", r.number - 1, r.number);
      assert.deepEqual([r.parent, r.fileCount, diff.added.length, diff.removed.length], [r.number - 1, r.number, 1, 0]);
    }
    assert.equal((await one.namespaces.listFiles("ns", 20)).length, 20);
  });

  it("finishes a publish that crashed after its claim once the claim is stale, and publishes on top", async () => {
    const name = freshName();
    const c = await client();
    let clock = 1_000_000;
    const options = { namespaces: { claimTimeoutMs: 10_000, now: () => clock } };
    const crashing = stallingHeadMove(c.db(name), true);
    const crashed = await createMongoStore(crashing.db, options);
    const store = await createMongoStore(c.db(name), options);
    const events = new EventBus(store.events);
    const publisher = new NamespacePublisher({ store: store.namespaces, events, maxAttempts: 3 });
    assert.equal(await store.namespaces.create(namespace), true);
    await publisher.publish({ namespace: "ns", changes: { put: puts({ a: "a1", b: "b1" }) }, creatorId: "u1" });

    // The crashing publish claims revision 2 and writes its entries, then dies before the head move.
    const commit = crashed.namespaces.commitRevision({
      namespace: "ns",
      head: 1,
      parent: 1,
      put: [
        { path: "a", ...blob("a2") },
        { path: "c", ...blob("c1") },
      ],
      remove: ["b"],
      taskId: "",
      message: "crashed",
      creatorId: "u1",
      tag: "latest",
      now: 5,
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    crashing.release();
    await assert.rejects(commit, /server crashed/);

    // Readers see revision 1 only, whole.
    assert.equal((await store.namespaces.get("ns"))?.headRevision, 1);
    assert.deepEqual(
      (await store.namespaces.listRevisions("ns")).map((r) => r.number),
      [1],
    );
    assert.equal(await store.namespaces.getRevision("ns", 2), undefined);
    assert.deepEqual(
      (await store.namespaces.listFiles("ns", 1)).map((f) => f.path),
      ["a", "b"],
    );
    assert.deepEqual(
      await store.namespaces.getFiles("ns", 2, ["a", "b", "c"]),
      await store.namespaces.getFiles("ns", 1, ["a", "b", "c"]),
    );

    // While the claim is fresh, a publish cannot take revision 2.
    await assert.rejects(publisher.publish({ namespace: "ns", changes: { put: puts({ d: "d1" }) }, creatorId: "u1" }), {
      name: "NamespaceBusyError",
    });
    // Once it is stale, the next publish finishes revision 2 and commits 3 on top of it.
    clock += 10_001;
    const r3 = await publisher.publish({ namespace: "ns", changes: { put: puts({ d: "d1" }) }, creatorId: "u1" });
    assert.deepEqual([r3.number, r3.parent, r3.fileCount], [3, 2, 3]);
    const r2 = await store.namespaces.getRevision("ns", 2);
    assert.deepEqual([r2?.parent, r2?.fileCount, r2?.totalSize, r2?.message], [1, 2, 4, "crashed"]);
    assert.deepEqual(await store.namespaces.listFiles("ns", 2), [
      { path: "a", ...blob("a2") },
      { path: "c", ...blob("c1") },
    ]);
    assert.deepEqual(
      (await store.namespaces.listFiles("ns", 3)).map((f) => f.path),
      ["a", "c", "d"],
    );
    assert.deepEqual(
      (await store.namespaces.listFiles("ns", 1)).map((f) => f.path),
      ["a", "b"],
      "revision 1 is unchanged",
    );
    assert.deepEqual(await store.namespaces.diff("ns", 1, 2), {
      added: [{ path: "c", ...blob("c1") }],
      removed: [{ path: "b", ...blob("b1") }],
      changed: [{ path: "a", ...blob("a2") }],
    });
    assert.equal((await store.namespaces.getTag("ns", "latest"))?.revision, 3);
    assert.equal(await c.db(name).collection("namespace_intents").countDocuments({}), 0, "the intent is cleaned up");
  });

  it("a stalled publish whose claim was finished by another wakes up to its committed revision and changes nothing", async () => {
    const name = freshName();
    const c = await client();
    let clock = 1_000_000;
    const options = { namespaces: { claimTimeoutMs: 10_000, now: () => clock } };
    const stalling = stallingHeadMove(c.db(name), false);
    const slow = await createMongoStore(stalling.db, options);
    const store = await createMongoStore(c.db(name), options);
    const publisher = new NamespacePublisher({ store: store.namespaces, events: new EventBus(store.events) });
    assert.equal(await store.namespaces.create(namespace), true);
    await publisher.publish({ namespace: "ns", changes: { put: puts({ a: "a1" }) }, creatorId: "u1" });

    const commit = slow.namespaces.commitRevision({
      namespace: "ns",
      head: 1,
      parent: 1,
      put: [{ path: "s", ...blob("s1") }],
      remove: ["a"],
      taskId: "",
      message: "slow",
      creatorId: "u1",
      tag: "latest",
      now: 5,
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    clock += 10_001;
    const r3 = await publisher.publish({ namespace: "ns", changes: { put: puts({ a: "a3" }) }, creatorId: "u1" });
    assert.deepEqual([r3.number, r3.parent], [3, 2]);
    stalling.release();
    const r2 = await commit;
    assert.deepEqual([r2?.number, r2?.message, r2?.fileCount], [2, "slow", 1]);
    assert.equal((await store.namespaces.get("ns"))?.headRevision, 3);
    assert.deepEqual(
      (await store.namespaces.listFiles("ns", 2)).map((f) => f.path),
      ["s"],
    );
    assert.deepEqual(await store.namespaces.listFiles("ns", 3), [
      { path: "a", ...blob("a3") },
      { path: "s", ...blob("s1") },
    ]);
    assert.equal((await store.namespaces.getTag("ns", "latest"))?.revision, 3, "the late head move did not move the tag back");
  });
});
