import assert from "node:assert/strict";
import pino from "pino";
import type { BlobStore } from "../blob/blob-store.js";
import { EventBus } from "../events/event-bus.js";
import { NAMESPACE_TAG_MOVED } from "../namespaces/namespace-events.js";
import { openSqliteStore } from "../sqlite/sqlite-store.js";
import type { DeliveryRecord, PublisherRecord } from "../store/delivery-store.js";
import type { Store } from "../store/store.js";
import { PermanentDeliveryError, type Deliverer, type DeliveryJob } from "./deliverer.js";
import { DeliveryWorker, deliveryBackoffMs } from "./delivery-worker.js";
import { TagMoveFeed } from "./tag-move-feed.js";

const logger = pino({ level: "silent" });
const noBlobs = {} as BlobStore;

/** A deliverer whose outcome the test decides, recording every job. */
function scriptedDeliverer() {
  const jobs: DeliveryJob[] = [];
  const d = {
    jobs,
    fail: undefined as Error | undefined,
    gate: undefined as Promise<void> | undefined,
    deliverer: {
      async deliver(job: DeliveryJob) {
        jobs.push(job);
        if (d.gate) await d.gate;
        if (d.fail) throw d.fail;
      },
    } satisfies Deliverer,
  };
  return d;
}

function recordingEvents() {
  const published: { type: string; subjectId: string; attributes: Record<string, string> }[] = [];
  return {
    published,
    types: () => published.map((e) => e.type),
    events: {
      async publish(type: string, subjectId: string, _payload?: unknown, attributes: Record<string, string> = {}) {
        published.push({ type, subjectId, attributes });
        return { sequence: published.length, time: 0, type, subjectId, payloadKind: "", payload: null, attributes };
      },
    },
  };
}

describe("delivery queue and worker", () => {
  let store: Store;
  let clock: number;
  let ids: number;
  const newId = () => `d${++ids}`;

  const publisher = (id: string, extra: Partial<PublisherRecord> = {}): PublisherRecord => ({
    id,
    namespace: "repo",
    kind: "rsync",
    target: "/srv/mirror",
    branch: "",
    tag: "latest",
    creatorId: "u1",
    createTime: ids++,
    ...extra,
  });

  beforeEach(async () => {
    store = openSqliteStore(":memory:");
    clock = 1_000_000;
    ids = 0;
    for (const name of ["repo", "other"]) {
      await store.namespaces.create({
        name,
        ownerId: "u1",
        organizationId: "",
        visibility: "private",
        headRevision: 0,
        createTime: 1,
      });
    }
  });

  afterEach(async () => {
    await store.close();
  });

  function worker(deliverer: Deliverer, events = recordingEvents().events, maxAttempts = 8) {
    return new DeliveryWorker({
      store: store.deliveries,
      revisionFiles: async () => [],
      blobs: noBlobs,
      deliverers: { rsync: deliverer, git: deliverer },
      events,
      logger,
      now: () => clock,
      maxAttempts,
      backoff: { baseMs: 1000, maxMs: 60_000 },
      timers: { set: () => undefined, clear: () => undefined },
    });
  }

  it("backs off exponentially from the base up to the cap", () => {
    const options = { baseMs: 1000, maxMs: 60_000 };
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 8].map((n) => deliveryBackoffMs(n, options)),
      [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000],
    );
    assert.equal(deliveryBackoffMs(1000, options), 60_000);
  });

  it("queues one delivery per publisher that follows the moved tag; a newer move supersedes pending ones", async () => {
    await store.deliveries.addPublisher(publisher("p1"));
    await store.deliveries.addPublisher(publisher("p2", { kind: "git", target: "/srv/git", branch: "main" }));
    await store.deliveries.addPublisher(publisher("p3", { tag: "stable" }));
    await store.deliveries.addPublisher(publisher("p4", { namespace: "other" }));

    const first = await store.deliveries.enqueueTagMove({ namespace: "repo", tag: "latest", revision: 3 }, clock, newId);
    assert.deepEqual(
      first.created.map((d) => [d.publisherId, d.revision, d.state, d.attempts]),
      [
        ["p1", 3, "pending", 0],
        ["p2", 3, "pending", 0],
      ],
    );
    assert.deepEqual(first.superseded, []);

    // A rollback is a move too: the newest move wins even with a lower revision number.
    const second = await store.deliveries.enqueueTagMove({ namespace: "repo", tag: "latest", revision: 2 }, clock, newId);
    assert.deepEqual(
      second.superseded.map((d) => [d.publisherId, d.revision, d.state]),
      [
        ["p1", 3, "superseded"],
        ["p2", 3, "superseded"],
      ],
    );
    const due = await store.deliveries.listDue(clock, 10);
    assert.deepEqual(
      due.map((d) => [d.publisherId, d.revision]),
      [
        ["p1", 2],
        ["p2", 2],
      ],
    );
    const listed = await store.deliveries.list({ namespace: "repo", publisherId: "p1", limit: 10 });
    assert.deepEqual(
      listed.map((d) => [d.revision, d.state]),
      [
        [2, "pending"],
        [3, "superseded"],
      ],
      "newest first, the superseded one kept for the record",
    );
  });

  it("retries a failing delivery with exponential backoff, then fails it after the last attempt, with an event for each", async () => {
    await store.deliveries.addPublisher(publisher("p1"));
    const scripted = scriptedDeliverer();
    scripted.fail = new Error("rsync exited with code 23: permission denied");
    const recorded = recordingEvents();
    const w = worker(scripted.deliverer, recorded.events, 4);
    const { created } = await store.deliveries.enqueueTagMove({ namespace: "repo", tag: "latest", revision: 1 }, clock, newId);
    const id = created[0]!.id;

    const waits: number[] = [];
    for (let attempt = 1; attempt <= 4; attempt++) {
      assert.equal(await w.runDue(), 1, `attempt ${attempt} runs when due`);
      const d = (await store.deliveries.get(id))!;
      assert.equal(d.attempts, attempt);
      assert.equal(d.error, "rsync exited with code 23: permission denied");
      if (attempt < 4) {
        assert.equal(d.state, "pending");
        waits.push(d.nextAttemptTime - clock);
        clock = d.nextAttemptTime - 1;
        assert.equal(await w.runDue(), 0, "nothing runs before the backoff is over");
        clock += 1;
      } else {
        assert.equal(d.state, "failed");
      }
    }
    assert.deepEqual(waits, [1000, 2000, 4000]);
    assert.equal(scripted.jobs.length, 4);
    assert.deepEqual(recorded.types(), [
      "delivery.started",
      "delivery.retrying",
      "delivery.started",
      "delivery.retrying",
      "delivery.started",
      "delivery.retrying",
      "delivery.started",
      "delivery.failed",
    ]);
    const failed = recorded.published.at(-1)!;
    assert.equal(failed.subjectId, id);
    assert.deepEqual(failed.attributes, {
      namespace: "repo",
      publisher_id: "p1",
      kind: "rsync",
      tag: "latest",
      revision: "1",
      attempt: "4",
      error: "rsync exited with code 23: permission denied",
    });
    assert.equal(recorded.published[1]!.attributes.next_attempt_time, new Date(1_000_000 + 1000).toISOString());

    // Fixed target, then a retry: a fresh attempt count, due at once.
    scripted.fail = undefined;
    const retried = await store.deliveries.retry(id, clock);
    assert.equal(retried?.state, "pending");
    assert.equal(retried?.attempts, 0);
    assert.equal(await w.runDue(), 1);
    const done = (await store.deliveries.get(id))!;
    assert.equal(done.state, "succeeded");
    assert.equal(done.attempts, 1);
    assert.equal(recorded.types().at(-1), "delivery.succeeded");
  });

  it("fails at once on a permanent error", async () => {
    await store.deliveries.addPublisher(publisher("p1"));
    const scripted = scriptedDeliverer();
    scripted.fail = new PermanentDeliveryError("namespace repo has no revision 9");
    const w = worker(scripted.deliverer);
    const { created } = await store.deliveries.enqueueTagMove({ namespace: "repo", tag: "latest", revision: 9 }, clock, newId);
    await w.runDue();
    const d = (await store.deliveries.get(created[0]!.id))!;
    assert.equal(d.state, "failed");
    assert.equal(d.attempts, 1);
  });

  it("runs one delivery at a time per publisher, publishers in parallel; a failure with a newer move queued is superseded", async () => {
    await store.deliveries.addPublisher(publisher("p1"));
    await store.deliveries.addPublisher(publisher("p2"));
    const scripted = scriptedDeliverer();
    let open!: () => void;
    scripted.gate = new Promise((resolve) => (open = resolve));
    scripted.fail = new Error("network down");
    const recorded = recordingEvents();
    const w = worker(scripted.deliverer, recorded.events);
    const { created } = await store.deliveries.enqueueTagMove({ namespace: "repo", tag: "latest", revision: 1 }, clock, newId);
    const running = w.runDue();
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(scripted.jobs.length, 2, "both publishers run at once");
    const { created: newer } = await store.deliveries.enqueueTagMove(
      { namespace: "repo", tag: "latest", revision: 2 },
      clock,
      newId,
    );
    assert.deepEqual(await store.deliveries.listDue(clock, 10), [], "a publisher with a running delivery gets no second one");
    open();
    assert.equal(await running, 2);
    for (const d of created) assert.equal((await store.deliveries.get(d.id))!.state, "superseded");
    assert.deepEqual(
      recorded.published.filter((e) => e.type === "delivery.superseded").map((e) => e.attributes.superseded_by),
      newer.map((d) => d.id),
    );
    scripted.gate = undefined;
    scripted.fail = undefined;
    assert.equal(await w.runDue(), 2);
    assert.deepEqual(
      scripted.jobs.slice(2).map((j) => j.delivery.revision),
      [2, 2],
    );
  });

  it("wakes up at the next due time, and not before a running delivery of the same publisher finished", async () => {
    await store.deliveries.addPublisher(publisher("p1"));
    const scripted = scriptedDeliverer();
    let open!: () => void;
    scripted.gate = new Promise((resolve) => (open = resolve));
    const timers: number[] = [];
    const w = new DeliveryWorker({
      store: store.deliveries,
      revisionFiles: async () => [],
      blobs: noBlobs,
      deliverers: { rsync: scripted.deliverer, git: scripted.deliverer },
      events: recordingEvents().events,
      logger,
      now: () => clock,
      backoff: { baseMs: 5000, maxMs: 60_000 },
      timers: { set: (_callback, ms) => timers.push(ms), clear: () => undefined },
    });
    await w.start();
    await store.deliveries.enqueueTagMove({ namespace: "repo", tag: "latest", revision: 1 }, clock, newId);
    w.notify();
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(scripted.jobs.length, 1);
    timers.length = 0;
    await store.deliveries.enqueueTagMove({ namespace: "repo", tag: "latest", revision: 2 }, clock, newId);
    for (let i = 0; i < 5; i++) w.notify();
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(timers, [], "a due delivery waiting for its publisher sets no timer (no busy loop)");
    scripted.fail = new Error("boom");
    open();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(
      scripted.jobs.map((j) => j.delivery.revision),
      [1, 2],
      "the finishing delivery wakes the worker for the next one",
    );
    assert.deepEqual(timers, [5000], "the failed attempt's backoff is the next wake-up");
    await w.close();
  });

  it("resumes after a restart: a delivery left running is pending again and runs", async () => {
    await store.deliveries.addPublisher(publisher("p1"));
    const { created } = await store.deliveries.enqueueTagMove({ namespace: "repo", tag: "latest", revision: 5 }, clock, newId);
    const claimed = (await store.deliveries.claim(created[0]!.id, clock)) as DeliveryRecord;
    assert.equal(claimed.state, "running");
    // The process died here. A new worker starts:
    const scripted = scriptedDeliverer();
    const w = worker(scripted.deliverer);
    await w.start();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await w.close();
    const d = (await store.deliveries.get(created[0]!.id))!;
    assert.equal(d.state, "succeeded");
    assert.equal(d.attempts, 2, "the interrupted attempt counts");
    assert.deepEqual(
      scripted.jobs.map((j) => j.delivery.revision),
      [5],
    );
  });

  it("turns namespace.tag_moved events into deliveries exactly once, across restarts", async () => {
    await store.deliveries.addPublisher(publisher("p1"));
    const bus = new EventBus(store.events, () => clock);
    await bus.publish("task.created", "t1");
    let notified = 0;
    const feed = () =>
      new TagMoveFeed({
        store: store.deliveries,
        eventLog: store.events,
        bus,
        onQueued: () => notified++,
        logger,
        newId,
        now: () => clock,
      });
    const first = feed();
    await first.start();
    assert.equal(await store.deliveries.eventCursor(), 1, "the first start begins at the end of the log");
    const move = (revision: number, tag = "latest") =>
      bus.publish(NAMESPACE_TAG_MOVED, "repo", undefined, { namespace: "repo", tag, revision: String(revision), previous: "0" });
    await move(1);
    await move(1, "stable");
    await new Promise((resolve) => setTimeout(resolve, 20));
    await first.close();
    assert.ok(notified >= 1);
    let listed = await store.deliveries.list({ namespace: "repo", limit: 10 });
    assert.deepEqual(
      listed.map((d) => [d.revision, d.state]),
      [[1, "pending"]],
    );
    const types = (await store.events.listAfter(0, 100)).map((e) => e.type);
    assert.ok(types.includes("delivery.queued"));

    // While no feed runs (a crash between the move and the queueing), the tag moves again.
    await move(2);
    const second = feed();
    await second.start();
    await second.close();
    listed = await store.deliveries.list({ namespace: "repo", limit: 10 });
    assert.deepEqual(
      listed.map((d) => [d.revision, d.state]),
      [
        [2, "pending"],
        [1, "superseded"],
      ],
    );
    const third = feed();
    await third.start();
    await third.close();
    assert.equal((await store.deliveries.list({ namespace: "repo", limit: 10 })).length, 2, "nothing queued twice");
  });
});
