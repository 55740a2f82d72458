import assert from "node:assert/strict";
import { parseDuration } from "./duration.js";

describe("parseDuration", () => {
  it("reads units and bare milliseconds", () => {
    assert.equal(parseDuration("250ms"), 250);
    assert.equal(parseDuration("10s"), 10_000);
    assert.equal(parseDuration("1m30s"), 90_000);
    assert.equal(parseDuration("2h"), 7_200_000);
    assert.equal(parseDuration("30d"), 30 * 86_400_000);
    assert.equal(parseDuration("1d12h"), 36 * 3_600_000);
    assert.equal(parseDuration("1.5s"), 1500);
    assert.equal(parseDuration("42"), 42);
  });
  it("rejects anything else", () => {
    for (const bad of ["", "s", "10x", "ten seconds", "1m 30s", "-1s"]) assert.equal(parseDuration(bad), undefined, bad);
  });
});
