import assert from "node:assert/strict";
import { createBackoff } from "./backoff.js";

describe("backoff", () => {
  it("doubles its ceiling from 200 ms to 10 s with full jitter and resets", () => {
    const ceilings = createBackoff({ random: () => 0.999999 });
    const seen = Array.from({ length: 9 }, () => ceilings.next() + 1);
    assert.deepEqual(seen, [200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]);
    ceilings.reset();
    assert.equal(ceilings.next() + 1, 200);
    const floor = createBackoff({ random: () => 0 });
    assert.equal(floor.next(), 0);
    const half = createBackoff({ initialMs: 100, maxMs: 1000, random: () => 0.5 });
    assert.deepEqual([half.next(), half.next(), half.next()], [50, 100, 200]);
  });
});
