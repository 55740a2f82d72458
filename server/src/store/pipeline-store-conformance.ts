import assert from "node:assert/strict";
import { freshStore, itShared, type StoreFactory } from "./conformance-harness.js";
import type { MemberRecord, PipelineRecord } from "./pipeline-store.js";
import type { Store } from "./store.js";
import { testDefinition } from "./task-store-conformance.js";

/** A pipeline a → b (chain) plus c (depends on a), for store tests. */
export function testPipeline(id: string, ownerId = "u1", createTime = 10): Omit<PipelineRecord, "seq"> {
  const member = (key: string, dependsOn: string[]) => ({
    key,
    definition: { ...testDefinition, name: key, labels: { "a.b": "c" } },
    dependsOn,
    inheritArtefacts: key === "c",
  });
  return {
    id,
    ownerId,
    definition: {
      name: `pipe ${id}`,
      queue: "q",
      concurrency: 2,
      chain: [],
      group: ["a", "b", "c"],
      chord: [],
      members: [member("a", []), member("b", ["a"]), member("c", ["a"])],
    },
    status: "running",
    result: "none",
    run: 1,
    createTime,
    startTime: null,
    endTime: null,
    updateTime: createTime,
  };
}

const pending = (pipelineId: string, key: string, run = 1): MemberRecord => ({
  pipelineId,
  key,
  run,
  state: "pending",
  taskId: "",
  result: "none",
  startTime: null,
  endTime: null,
});

/** PipelineStore behaviour every backend shares: records, listings, single-winner claims, ends, updates, retries. */
export function pipelineStoreConformance(factory: StoreFactory): void {
  describe("PipelineStore", () => {
    const s = freshStore(factory);

    it("creates a pipeline with pending members and reads it back", async () => {
      const { pipelines } = s.store;
      const created = await pipelines.create(testPipeline("p1"));
      assert.ok(created.seq > 0);
      assert.deepEqual(await pipelines.get("p1"), created);
      assert.equal(await pipelines.get("nope"), undefined);
      assert.deepEqual(await pipelines.members("p1"), [pending("p1", "a"), pending("p1", "b"), pending("p1", "c")]);
      assert.deepEqual(await pipelines.members("nope"), []);
    });

    it("lists newest first by owner and status, paged by seq, and lists the unfinished", async () => {
      const { pipelines } = s.store;
      const one = await pipelines.create(testPipeline("p1", "u1"));
      await pipelines.create(testPipeline("p2", "u2"));
      await pipelines.create(testPipeline("p3", "u1"));
      await pipelines.update({ id: "p2", set: { status: "done", result: "success" }, now: 20 });
      await pipelines.update({ id: "p3", set: { status: "stop" }, now: 20 });
      const ids = async (q: Parameters<Store["pipelines"]["list"]>[0]) => (await pipelines.list(q)).map((p) => p.id);
      assert.deepEqual(await ids({ limit: 10 }), ["p3", "p2", "p1"]);
      assert.deepEqual(await ids({ limit: 10, ownerId: "u1" }), ["p3", "p1"]);
      assert.deepEqual(await ids({ limit: 10, statuses: ["done", "stop"] }), ["p3", "p2"]);
      assert.deepEqual(await ids({ limit: 1, beforeSeq: (await pipelines.get("p3"))!.seq }), ["p2"]);
      assert.deepEqual(await ids({ limit: 10, beforeSeq: one.seq }), []);
      assert.deepEqual(await pipelines.listUnfinished(), ["p1", "p3"]);
    });

    it("claims a member once: for its task or to skip it", async () => {
      const { pipelines } = s.store;
      await pipelines.create(testPipeline("p1"));
      const won = await pipelines.claimMember("p1", "a", 1, { kind: "task", taskId: "t1" });
      assert.deepEqual(won, { ...pending("p1", "a"), state: "created", taskId: "t1" });
      assert.deepEqual(await pipelines.claimMember("p1", "a", 1, { kind: "task", taskId: "t2" }), won);
      assert.deepEqual(await pipelines.claimMember("p1", "a", 1, { kind: "skip" }), won);
      const skipped = await pipelines.claimMember("p1", "b", 1, { kind: "skip" });
      assert.deepEqual(skipped, { ...pending("p1", "b"), state: "skipped", result: "skipped" });
      assert.deepEqual(await pipelines.claimMember("p1", "b", 1, { kind: "task", taskId: "t3" }), skipped);
      assert.equal(await pipelines.claimMember("p1", "c", 2, { kind: "task", taskId: "t4" }), undefined);
      assert.equal(await pipelines.claimMember("p1", "zz", 1, { kind: "task", taskId: "t4" }), undefined);
      assert.deepEqual(await pipelines.members("p1"), [won, skipped, pending("p1", "c")]);
    });

    it("records how a created member ended, and nothing for others", async () => {
      const { pipelines } = s.store;
      await pipelines.create(testPipeline("p1"));
      await pipelines.claimMember("p1", "a", 1, { kind: "task", taskId: "t1" });
      await pipelines.claimMember("p1", "b", 1, { kind: "skip" });
      const end = { pipelineId: "p1", key: "a", run: 1, result: "failed" as const, startTime: 11, endTime: 12 };
      assert.equal(await pipelines.endMember(end), true);
      assert.equal(await pipelines.endMember(end), true);
      assert.equal(await pipelines.endMember({ ...end, run: 2 }), false);
      assert.equal(await pipelines.endMember({ ...end, key: "b" }), false);
      assert.equal(await pipelines.endMember({ ...end, key: "c" }), false);
      const [a, b, c] = await pipelines.members("p1");
      assert.deepEqual(a, {
        ...pending("p1", "a"),
        state: "created",
        taskId: "t1",
        result: "failed",
        startTime: 11,
        endTime: 12,
      });
      assert.equal(b?.result, "skipped");
      assert.deepEqual(c, pending("p1", "c"));
    });

    it("updates a pipeline only when its condition holds", async () => {
      const { pipelines } = s.store;
      await pipelines.create(testPipeline("p1"));
      const started = await pipelines.update({ id: "p1", ifNotStarted: true, set: { startTime: 15 }, now: 15 });
      assert.equal(started?.startTime, 15);
      assert.equal(started?.updateTime, 15);
      assert.equal(await pipelines.update({ id: "p1", ifNotStarted: true, set: { startTime: 16 }, now: 16 }), undefined);
      const done = await pipelines.update({
        id: "p1",
        ifStatus: ["running", "stop"],
        set: { status: "done", result: "failed", endTime: 20 },
        now: 20,
      });
      assert.deepEqual(done && { status: done.status, result: done.result, endTime: done.endTime, startTime: done.startTime }, {
        status: "done",
        result: "failed",
        endTime: 20,
        startTime: 15,
      });
      assert.equal(await pipelines.update({ id: "p1", ifStatus: ["running"], set: { status: "stop" }, now: 21 }), undefined);
      assert.equal(await pipelines.update({ id: "nope", set: { status: "stop" }, now: 21 }), undefined);
    });

    it("retries a finished pipeline once per run, resetting only the given members", async () => {
      const { pipelines } = s.store;
      await pipelines.create(testPipeline("p1"));
      await pipelines.claimMember("p1", "a", 1, { kind: "task", taskId: "t1" });
      await pipelines.endMember({ pipelineId: "p1", key: "a", run: 1, result: "success", startTime: 1, endTime: 2 });
      await pipelines.claimMember("p1", "b", 1, { kind: "task", taskId: "t2" });
      await pipelines.endMember({ pipelineId: "p1", key: "b", run: 1, result: "failed", startTime: 2, endTime: 3 });
      await pipelines.claimMember("p1", "c", 1, { kind: "skip" });
      assert.equal(await pipelines.retry("p1", 1, ["b", "c"], 30), undefined, "a running pipeline is not retried");
      await pipelines.update({ id: "p1", set: { status: "done", result: "failed", endTime: 4 }, now: 4 });
      const retried = await pipelines.retry("p1", 1, ["b", "c"], 30);
      assert.deepEqual(retried && [retried.run, retried.status, retried.result, retried.endTime, retried.updateTime], [
        2,
        "running",
        "none",
        null,
        30,
      ]);
      assert.equal(await pipelines.retry("p1", 1, ["b", "c"], 31), undefined, "a second retry of run 1 loses");
      const [a, b, c] = await pipelines.members("p1");
      assert.equal(a?.result, "success");
      assert.equal(a?.taskId, "t1");
      assert.deepEqual(b, pending("p1", "b", 2));
      assert.deepEqual(c, pending("p1", "c", 2));
      const again = await pipelines.claimMember("p1", "b", 2, { kind: "task", taskId: "t5" });
      assert.equal(again?.taskId, "t5");
    });

    it("deletes a pipeline with its members", async () => {
      const { pipelines } = s.store;
      await pipelines.create(testPipeline("p1"));
      await pipelines.create(testPipeline("p2"));
      await pipelines.claimMember("p1", "a", 1, { kind: "task", taskId: "t1" });
      assert.equal(await pipelines.delete("p1"), true);
      assert.equal(await pipelines.delete("p1"), false);
      assert.equal(await pipelines.get("p1"), undefined);
      assert.deepEqual(await pipelines.members("p1"), []);
      assert.equal((await pipelines.members("p2")).length, 3);
    });

    it("locks a pipeline for one holder until the lock expires or is released", async () => {
      const { pipelines } = s.store;
      assert.equal(await pipelines.lock("p1", "one", 100, 200), true);
      assert.equal(await pipelines.lock("p1", "two", 150, 250), false);
      assert.equal(await pipelines.lock("p1", "one", 150, 300), true, "the holder renews");
      assert.equal(await pipelines.lock("p2", "two", 150, 250), true, "per pipeline");
      await pipelines.unlock("p1", "two");
      assert.equal(await pipelines.lock("p1", "two", 250, 400), false, "only the holder unlocks");
      assert.equal(await pipelines.lock("p1", "two", 300, 400), true, "an expired lock is free");
      await pipelines.unlock("p1", "two");
      assert.equal(await pipelines.lock("p1", "one", 301, 500), true);
    });

    itShared(factory, "PipelineStore: two processes claiming one member: exactly one wins", async (one, two) => {
      await one.pipelines.create(testPipeline("p1"));
      for (const key of ["a", "b", "c"]) {
        const [x, y] = await Promise.all([
          one.pipelines.claimMember("p1", key, 1, { kind: "task", taskId: `${key}-one` }),
          two.pipelines.claimMember("p1", key, 1, { kind: "task", taskId: `${key}-two` }),
        ]);
        assert.ok(x && y);
        assert.equal(x.taskId, y.taskId);
        assert.ok([`${key}-one`, `${key}-two`].includes(x.taskId));
      }
    });
  });
}
