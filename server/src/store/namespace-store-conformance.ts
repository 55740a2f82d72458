import assert from "node:assert/strict";
import { EventBus } from "../events/event-bus.js";
import { NAMESPACE_TAG_MOVED } from "../namespaces/namespace-events.js";
import {
  NamespacePathNotFoundError,
  NamespacePublisher,
  NamespaceRefNotFoundError,
  type BlobRef,
} from "../namespaces/namespace-publisher.js";
import { itShared, type StoreFactory } from "./conformance-harness.js";
import type { NamespaceFileRecord, NamespaceRecord } from "./namespace-store.js";
import type { Store } from "./store.js";

const blob = (content: string): BlobRef => ({ sha256: content.padEnd(64, "0").slice(0, 64), size: content.length });
const file = (path: string, content: string): NamespaceFileRecord => ({ path, ...blob(content) });
const puts = (entries: Record<string, string>) => new Map(Object.entries(entries).map(([p, c]) => [p, blob(c)]));

const namespace = (name: string): NamespaceRecord => ({
  name,
  ownerId: "u1",
  organizationId: "",
  visibility: "private",
  headRevision: 0,
  createTime: 1,
});

/**
 * NamespaceStore behaviour every backend shares, driven through NamespacePublisher (which is
 * backend-agnostic): exact file lists per revision after publish, append, remove, replace and
 * rollback-then-publish; exact diffs; the head compare-and-set; clone; serialized concurrent
 * publishes, also from two store handles on one database (two server processes).
 */
export function namespaceStoreConformance(factory: StoreFactory): void {
  describe("NamespaceStore through NamespacePublisher", () => {
    namespaceCases(factory);
    itShared(
      factory,
      "serializes publishes from two server processes: consecutive revisions, each its parent plus one file",
      async (one, two) => {
        assert.equal(await one.namespaces.create(namespace("ns")), true);
        const publishers = [one, two].map((s) => new NamespacePublisher({ store: s.namespaces, events: new EventBus(s.events) }));
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            publishers[i % 2]!.publish({ namespace: "ns", changes: { put: puts({ [`f${i}`]: `c${i}` }) }, creatorId: "u1" }),
          ),
        );
        assert.deepEqual(
          results.map((r) => r.number).sort((a, b) => a - b),
          Array.from({ length: 20 }, (_, i) => i + 1),
        );
        for (const r of results) {
          const diff = await two.namespaces.diff("ns", r.number - 1, r.number);
          assert.deepEqual(
            [r.parent, r.fileCount, diff.added.length, diff.removed.length, diff.changed.length],
            [r.number - 1, r.number, 1, 0, 0],
          );
        }
      },
    );
  });
}

function namespaceCases(factory: StoreFactory): void {
  let store: Store;
  let events: EventBus;
  let publisher: NamespacePublisher;
  let clock: number;

  const files = (revision: number, prefix?: string) => store.namespaces.listFiles("ns", revision, prefix);
  const publish = (
    changes: Parameters<NamespacePublisher["publish"]>[0]["changes"],
    extra: { tag?: string; base?: string } = {},
  ) => publisher.publish({ namespace: "ns", changes, creatorId: "u1", ...extra });

  beforeEach(async () => {
    store = await factory.open();
    clock = 1000;
    events = new EventBus(store.events, () => clock);
    publisher = new NamespacePublisher({ store: store.namespaces, events, now: () => ++clock });
    assert.equal(await store.namespaces.create(namespace("ns")), true);
    assert.equal(await store.namespaces.create(namespace("ns")), false, "the name is taken");
  });
  afterEach(() => store.close());

  it("publishes, appends, removes and replaces with exact file lists per revision", async () => {
    const r1 = await publish({ put: puts({ "a.txt": "a1", "dir/b.txt": "b1" }) });
    assert.deepEqual([r1.number, r1.parent, r1.fileCount, r1.totalSize], [1, 0, 2, 4]);
    const r2 = await publish({ put: puts({ "c.txt": "c1", "a.txt": "a2" }) });
    assert.deepEqual([r2.number, r2.parent, r2.fileCount, r2.totalSize], [2, 1, 3, 6]);
    const r3 = await publish({ put: new Map(), remove: ["dir/b.txt"] });
    assert.deepEqual([r3.number, r3.parent, r3.fileCount, r3.totalSize], [3, 2, 2, 4]);
    const r4 = await publish({ put: puts({ "z.txt": "zz9" }), replaceAll: true });
    assert.deepEqual([r4.number, r4.parent, r4.fileCount, r4.totalSize], [4, 3, 1, 3]);

    assert.deepEqual(await files(1), [file("a.txt", "a1"), file("dir/b.txt", "b1")]);
    assert.deepEqual(await files(2), [file("a.txt", "a2"), file("c.txt", "c1"), file("dir/b.txt", "b1")]);
    assert.deepEqual(await files(3), [file("a.txt", "a2"), file("c.txt", "c1")]);
    assert.deepEqual(await files(4), [file("z.txt", "zz9")]);
    assert.deepEqual(await files(2, "dir/"), [file("dir/b.txt", "b1")]);
    assert.deepEqual(await files(5), []);
    assert.equal((await store.namespaces.getTag("ns", "latest"))?.revision, 4);
    assert.equal((await store.namespaces.get("ns"))?.headRevision, 4);
  });

  it("writes only the changed paths: an unchanged re-put adds no row", async () => {
    await publish({ put: puts({ "a.txt": "a1", "b.txt": "b1" }) });
    await publish({ put: puts({ "a.txt": "a1", "b.txt": "b2" }) });
    const diff = await store.namespaces.diff("ns", 1, 2);
    assert.deepEqual(diff, { added: [], removed: [], changed: [file("b.txt", "b2")] });
  });

  it("diffs exactly between any two revisions, in both directions", async () => {
    await publish({ put: puts({ keep: "k", change: "c1", gone: "g" }) });
    await publish({ put: puts({ change: "c2", tmp: "t" }), remove: ["gone"] });
    await publish({ put: puts({ added: "a" }), remove: ["tmp"] });
    assert.deepEqual(await store.namespaces.diff("ns", 1, 3), {
      added: [file("added", "a")],
      removed: [file("gone", "g")],
      changed: [file("change", "c2")],
    });
    assert.deepEqual(await store.namespaces.diff("ns", 3, 1), {
      added: [file("gone", "g")],
      removed: [file("added", "a")],
      changed: [file("change", "c1")],
    });
    assert.deepEqual(await store.namespaces.diff("ns", 0, 1), {
      added: [file("change", "c1"), file("gone", "g"), file("keep", "k")],
      removed: [],
      changed: [],
    });
    assert.deepEqual(await store.namespaces.diff("ns", 2, 2), { added: [], removed: [], changed: [] });
  });

  it("rollback moves the tag; the next publish is the rolled-back revision plus its changes", async () => {
    await publish({ put: puts({ a: "a1", b: "b1" }) });
    await publish({ put: puts({ a: "a2", c: "c1" }), remove: ["b"] });
    const moved: string[] = [];
    events.listen((e) => {
      if (e.type === NAMESPACE_TAG_MOVED) moved.push(`${e.attributes.tag}:${e.attributes.previous}->${e.attributes.revision}`);
    });
    const tag = await publisher.setTag("ns", "latest", "1");
    assert.equal(tag.revision, 1);
    assert.equal((await store.namespaces.get("ns"))?.headRevision, 2, "a rollback copies nothing and makes no revision");
    const r3 = await publish({ put: puts({ d: "d1" }) });
    assert.deepEqual([r3.number, r3.parent, r3.fileCount], [3, 1, 3]);
    assert.deepEqual(await files(3), [file("a", "a1"), file("b", "b1"), file("d", "d1")]);
    assert.deepEqual(await files(2), [file("a", "a2"), file("c", "c1")], "revision 2 is unchanged");
    assert.deepEqual(moved, ["latest:2->1", "latest:1->3"]);
  });

  it("publishes to another tag from that tag's revision, and resolves refs", async () => {
    await publish({ put: puts({ a: "a1" }) });
    await publisher.setTag("ns", "stable", "latest");
    await publish({ put: puts({ b: "b1" }) });
    const r3 = await publish({ put: puts({ s: "s1" }) }, { tag: "stable" });
    assert.equal(r3.parent, 1);
    assert.deepEqual(await files(3), [file("a", "a1"), file("s", "s1")]);
    assert.equal((await store.namespaces.getTag("ns", "latest"))?.revision, 2);
    assert.equal((await store.namespaces.getTag("ns", "stable"))?.revision, 3);
    const ns = (await store.namespaces.get("ns"))!;
    assert.equal(await publisher.resolveRef(ns, ""), 2);
    assert.equal(await publisher.resolveRef(ns, "3"), 3);
    await assert.rejects(publisher.resolveRef(ns, "4"), NamespaceRefNotFoundError);
    await assert.rejects(publisher.resolveRef(ns, "nope"), NamespaceRefNotFoundError);
  });

  it("refuses to remove a path the base lacks when strict, and writes nothing", async () => {
    await publish({ put: puts({ a: "a1" }) });
    await assert.rejects(
      publisher.publish({
        namespace: "ns",
        changes: { put: new Map(), remove: ["a", "b"] },
        strictRemove: true,
        creatorId: "u1",
      }),
      NamespacePathNotFoundError,
    );
    assert.equal((await store.namespaces.get("ns"))?.headRevision, 1);
  });

  it("serializes 20 concurrent publishes: consecutive revisions, each its parent plus one file", async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => publish({ put: puts({ [`f${String(i).padStart(2, "0")}`]: `c${i}` }) })),
    );
    assert.deepEqual(
      results.map((r) => r.number).sort((a, b) => a - b),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    for (const r of results) {
      assert.equal(r.parent, r.number - 1);
      assert.equal(r.fileCount, r.number);
      const diff = await store.namespaces.diff("ns", r.parent, r.number);
      assert.equal(diff.added.length, 1);
      assert.deepEqual([diff.removed.length, diff.changed.length], [0, 0]);
    }
  });

  it("a commit against a stale head fails without writing (the cross-process guard)", async () => {
    await publish({ put: puts({ a: "a1" }) });
    const stale = await store.namespaces.commitRevision({
      namespace: "ns",
      head: 0,
      parent: 0,
      put: [file("x", "x1")],
      remove: [],
      taskId: "",
      message: "",
      creatorId: "u1",
      tag: "latest",
      now: 5,
    });
    assert.equal(stale, undefined);
    assert.deepEqual(await files(1), [file("a", "a1")]);
    assert.equal((await store.namespaces.listRevisions("ns")).length, 1);
  });

  it("clones a revision into a new namespace", async () => {
    await publish({ put: puts({ a: "a1", b: "b1" }) });
    await publish({ put: new Map(), remove: ["a"] });
    const to = { name: "copy", ownerId: "u2", organizationId: "", visibility: "public" as const, headRevision: 0, createTime: 9 };
    const meta = { taskId: "", message: "clone", creatorId: "u2", createTime: 9 };
    const r = await store.namespaces.clone("ns", 1, to, meta, "latest");
    assert.deepEqual([r?.number, r?.fileCount, r?.totalSize], [1, 2, 4]);
    assert.deepEqual(await store.namespaces.listFiles("copy", 1), [file("a", "a1"), file("b", "b1")]);
    assert.equal(await store.namespaces.clone("ns", 1, to, meta, "latest"), undefined, "the name is taken");
  });
}
