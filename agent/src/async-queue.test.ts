import assert from "node:assert/strict";
import { createAsyncQueue } from "./async-queue.js";

describe("async queue", () => {
  it("delivers pushed values in order, waits for more, and ends after close", async () => {
    const q = createAsyncQueue<number>();
    q.push(1);
    q.push(2);
    const seen: number[] = [];
    const reader = (async () => {
      for await (const v of q) seen.push(v);
    })();
    await new Promise((r) => setTimeout(r, 5));
    q.push(3);
    q.close();
    assert.equal(q.push(4), false);
    await reader;
    assert.deepEqual(seen, [1, 2, 3]);
  });

  it("discards what is left when the consumer stops early", async () => {
    const q = createAsyncQueue<number>();
    for (let i = 0; i < 3000; i++) q.push(i);
    const it = q[Symbol.asyncIterator]();
    for (let i = 0; i < 2000; i++) assert.deepEqual(await it.next(), { value: i, done: false });
    assert.equal(q.length, 1000);
    await it.throw?.(new Error("aborted"));
    assert.equal(q.closed, true);
    assert.equal(q.length, 0);
    assert.deepEqual(await it.next(), { value: undefined, done: true });
  });
});
