import assert from "node:assert/strict";
import { freshStore, itShared, type StoreFactory } from "./conformance-harness.js";
import type { EventRecord } from "./event-store.js";

const event = (type: string, subjectId = "s", time = 1): Omit<EventRecord, "sequence"> => ({
  time,
  type,
  subjectId,
  payloadKind: "",
  payload: null,
  attributes: {},
});

/** EventStore behaviour every backend shares: strictly increasing sequences and replay from one. */
export function eventStoreConformance(factory: StoreFactory): void {
  describe("EventStore", () => {
    const s = freshStore(factory);

    it("assigns sequences from 1 and stores payloads and attributes unchanged", async () => {
      assert.equal(await s.store.events.lastSequence(), 0);
      assert.deepEqual(await s.store.events.listAfter(0, 10), []);
      const payload = {
        id: "t1",
        definition: { labels: { "a.b": "c", $d: "e" }, script: ["x"] },
        exitCode: null,
        nested: [{ n: 1.5 }, true, "s"],
      };
      const first = await s.store.events.append({
        time: 1234567890123,
        type: "task.created",
        subjectId: "t1",
        payloadKind: "task",
        payload,
        attributes: { "node.id": "n1", reason: "" },
      });
      const second = await s.store.events.append(event("node.connected", "n1"));
      assert.equal(first.sequence, 1);
      assert.ok(second.sequence > first.sequence);
      assert.equal(await s.store.events.lastSequence(), second.sequence);
      assert.deepEqual(await s.store.events.listAfter(0, 10), [first, second]);
      assert.deepEqual(first.payload, payload);
    });

    it("replays from a sequence in pages, oldest first", async () => {
      const appended: EventRecord[] = [];
      for (let i = 0; i < 25; i++) appended.push(await s.store.events.append(event(`e${i}`, `s${i}`, i)));
      const replayed: EventRecord[] = [];
      let after = 0;
      for (;;) {
        const page = await s.store.events.listAfter(after, 10);
        replayed.push(...page);
        if (page.length < 10) break;
        after = page[page.length - 1]!.sequence;
      }
      assert.deepEqual(replayed, appended);
      const from = appended[19]!.sequence;
      assert.deepEqual(
        (await s.store.events.listAfter(from, 100)).map((e) => e.type),
        ["e20", "e21", "e22", "e23", "e24"],
      );
      assert.deepEqual(await s.store.events.listAfter(appended[24]!.sequence, 100), []);
    });

    it("keeps sequences strictly increasing under concurrent appends, resolving in sequence order", async () => {
      const resolved: number[] = [];
      const appended = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          s.store.events.append(event(`e${i}`)).then((e) => {
            resolved.push(e.sequence);
            return e;
          }),
        ),
      );
      const sequences = appended.map((e) => e.sequence);
      assert.equal(new Set(sequences).size, 50);
      assert.deepEqual(
        resolved,
        [...resolved].sort((a, b) => a - b),
        "appends resolve in sequence order, so the event bus announces them in order",
      );
      const listed = await s.store.events.listAfter(0, 100);
      assert.deepEqual(
        listed.map((e) => e.sequence),
        [...sequences].sort((a, b) => a - b),
      );
      assert.equal(await s.store.events.lastSequence(), Math.max(...sequences));
    });

    it("prunes by age and by count, oldest first, never the newest event", async () => {
      const appended: EventRecord[] = [];
      for (let i = 1; i <= 10; i++) appended.push(await s.store.events.append(event(`e${i}`, "s", i * 100)));
      assert.equal(await s.store.events.firstSequence(), appended[0]!.sequence);
      assert.equal(await s.store.events.prune(0, 0), 0, "nothing is old and there is no cap");
      assert.equal(await s.store.events.prune(350, 0), 3, "times 100, 200, 300 are older than 350");
      assert.equal(await s.store.events.firstSequence(), appended[3]!.sequence);
      assert.equal(await s.store.events.prune(0, 4), 3, "keeps the newest 4");
      assert.deepEqual(
        (await s.store.events.listAfter(0, 100)).map((e) => e.type),
        ["e7", "e8", "e9", "e10"],
      );
      assert.equal(await s.store.events.prune(Number.MAX_SAFE_INTEGER, 0), 3, "all are old: the newest stays");
      assert.equal(await s.store.events.firstSequence(), appended[9]!.sequence);
      assert.equal(await s.store.events.lastSequence(), appended[9]!.sequence);
      const next = await s.store.events.append(event("e11"));
      assert.ok(next.sequence > appended[9]!.sequence, "sequences go on after a prune");
    });

    itShared(factory, "keeps sequences unique and increasing across two stores on one database", async (one, two) => {
      const appended = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? one : two).events.append(event(`e${i}`))));
      const sequences = appended.map((e) => e.sequence);
      assert.equal(new Set(sequences).size, 40);
      const byOne = appended.filter((_, i) => i % 2).map((e) => e.sequence);
      assert.deepEqual(
        byOne,
        [...byOne].sort((a, b) => a - b),
        "one store's appends are ordered",
      );
      const listed = await two.events.listAfter(0, 100);
      assert.deepEqual(
        listed.map((e) => e.sequence),
        [...sequences].sort((a, b) => a - b),
      );
      const later = await one.events.append(event("later"));
      assert.ok(later.sequence > Math.max(...sequences));
      assert.equal(await two.events.lastSequence(), later.sequence);
    });
  });
}
