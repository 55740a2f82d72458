import assert from "node:assert/strict";
import pino from "pino";
import type { EventRecord, EventStore } from "../store/event-store.js";
import { EventBus } from "./event-bus.js";
import { EventFeed } from "./event-feed.js";

const logger = pino({ level: "silent" });

/** An event log whose visible events the test controls (another server's insert may lag). */
class FakeLog implements Pick<EventStore, "listAfter" | "lastSequence"> {
  readonly visible = new Map<number, EventRecord>();
  reads = 0;

  add(...sequences: number[]): EventRecord[] {
    return sequences.map((sequence) => {
      const e = { sequence, time: 0, type: "t", subjectId: String(sequence), payloadKind: "", payload: null, attributes: {} };
      this.visible.set(sequence, e);
      return e;
    });
  }

  async listAfter(after: number, limit: number): Promise<EventRecord[]> {
    this.reads++;
    return [...this.visible.values()]
      .filter((e) => e.sequence > after)
      .sort((a, b) => a.sequence - b.sequence)
      .slice(0, limit);
  }

  async lastSequence(): Promise<number> {
    return Math.max(0, ...this.visible.keys());
  }
}

const settle = () => new Promise((r) => setTimeout(r, 5));

describe("EventFeed", () => {
  let log: FakeLog;
  let seen: number[];
  let clock: number;
  let feed: EventFeed;

  beforeEach(async () => {
    log = new FakeLog();
    seen = [];
    clock = 1000;
    log.add(1, 2);
    feed = new EventFeed({
      store: log,
      emit: (e) => seen.push(e.sequence),
      logger,
      pollIntervalMs: 60_000,
      gapTimeoutMs: 500,
      now: () => clock,
    });
    await feed.start();
  });
  afterEach(() => feed.close());

  it("starts at the end of the log and emits later events once, in order", async () => {
    log.add(3, 4);
    feed.poll();
    await settle();
    feed.poll();
    await settle();
    assert.deepEqual(seen, [3, 4]);
    assert.equal(feed.watermark, 4);
  });

  it("emits an offered local event at once and does not emit it again when the poll reads it", async () => {
    const [three] = log.add(3);
    feed.offer(three!);
    assert.deepEqual(seen, [3], "no read needed");
    feed.poll();
    await settle();
    feed.offer(three!);
    assert.deepEqual(seen, [3]);
  });

  it("holds events back behind a gap until the missing one appears", async () => {
    log.add(4, 5);
    feed.poll();
    await settle();
    assert.deepEqual(seen, [], "3 is allocated but not inserted yet");
    clock += 400;
    log.add(3);
    feed.poll();
    await settle();
    assert.deepEqual(seen, [3, 4, 5]);
  });

  it("moves past a gap that lasts longer than the gap timeout", async () => {
    const [four] = log.add(4);
    feed.offer(four!);
    await settle();
    assert.deepEqual(seen, []);
    clock += 499;
    feed.poll();
    await settle();
    assert.deepEqual(seen, []);
    clock += 1;
    feed.poll();
    await settle();
    assert.deepEqual(seen, [4], "3 never came (its server died between taking the sequence and inserting)");
    log.add(3, 5);
    feed.poll();
    await settle();
    assert.deepEqual(seen, [4, 5], "3 turning up late is left to replays");
  });

  it("reads pages until it has caught up", async () => {
    log.add(...Array.from({ length: 1200 }, (_, i) => i + 3));
    feed.poll();
    await settle();
    await settle();
    assert.equal(seen.length, 1200);
    assert.deepEqual(seen.slice(0, 3), [3, 4, 5]);
    assert.equal(feed.watermark, 1202);
  });
});

describe("EventFeed with change streams", () => {
  it("reads at once when the store signals an append, and keeps polling when it cannot", async () => {
    const log = new FakeLog();
    let signal: (() => void) | undefined;
    let stopped = false;
    const watching = Object.assign(log, {
      watchAppends(onAppend: () => void) {
        signal = onAppend;
        return async () => {
          stopped = true;
        };
      },
    });
    const seen: number[] = [];
    const feed = new EventFeed({ store: watching, emit: (e) => seen.push(e.sequence), logger, pollIntervalMs: 60_000 });
    await feed.start();
    log.add(1);
    signal?.();
    await settle();
    assert.deepEqual(seen, [1], "no need to wait for the poll");
    await feed.close();
    assert.ok(stopped);

    const plain = new FakeLog();
    const unavailable = Object.assign(plain, {
      watchAppends(_onAppend: () => void, onUnavailable: (err: Error) => void) {
        setImmediate(() => onUnavailable(new Error("unsupported aggregation stage: $changeStream")));
        return async () => {};
      },
    });
    const polled: number[] = [];
    const fallback = new EventFeed({ store: unavailable, emit: (e) => polled.push(e.sequence), logger, pollIntervalMs: 10 });
    await fallback.start();
    await settle();
    plain.add(1, 2);
    await new Promise((r) => setTimeout(r, 50));
    await fallback.close();
    assert.deepEqual(polled, [1, 2]);
  });
});

describe("EventBus on a shared log", () => {
  it("delivers every server's events to each bus once and in order, and replays stop at the watermark", async () => {
    const events: EventRecord[] = [];
    let next = 1;
    let hold: number | undefined;
    // One log, two servers: appends take a sequence at once but the test may delay the insert.
    const store: EventStore = {
      async append(e) {
        const stored = { ...e, sequence: next++ };
        if (stored.sequence !== hold) events.push(stored);
        return stored;
      },
      async listAfter(after, limit) {
        return events
          .filter((e) => e.sequence > after)
          .sort((a, b) => a.sequence - b.sequence)
          .slice(0, limit);
      },
      async lastSequence() {
        return Math.max(0, ...events.map((e) => e.sequence));
      },
      async firstSequence() {
        return Math.min(...events.map((e) => e.sequence));
      },
      async prune() {
        return 0;
      },
    };
    const shared = { logger, pollIntervalMs: 10, gapTimeoutMs: 10_000 };
    const a = new EventBus(store, Date.now, shared);
    const b = new EventBus(store, Date.now, shared);
    await a.start();
    await b.start();
    const seenA: number[] = [];
    const seenB: number[] = [];
    a.listen((e) => seenA.push(e.sequence));
    b.listen((e) => seenB.push(e.sequence));
    try {
      await a.publish("x", "1");
      hold = 2;
      const late = await b.publish("x", "2");
      await a.publish("x", "3");
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(seenA, [1], "3 waits behind 2, whose insert is late");
      assert.equal(a.watermark(), 1);
      events.push(late);
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(seenA, [1, 2, 3]);
      assert.deepEqual(seenB, [1, 2, 3]);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
