import assert from "node:assert/strict";
import { MongoClient } from "mongodb";
import { bootstrapAdmin } from "../auth/bootstrap.js";
import { newWaitingTask } from "../store/new-task.js";
import type { Store } from "../store/store.js";
import type { TaskDefinition } from "../store/task-store.js";
import { type JongodbServer, requireJongodb } from "./jongodb-server.js";
import { createMongoStore } from "./mongo-store.js";
import { testDefinition } from "../store/task-store-conformance.js";

const ci = Boolean(process.env.CI);
let databases = 0;
const freshName = () => `mottainai_multi_${process.pid}_${Date.now()}_${++databases}`;

const definition: TaskDefinition = { ...testDefinition, name: "race", namespaceMerged: false };

/**
 * Several servers on one database, each with its own client and connection pool: the races
 * that jongodb does not serialize (findOneAndUpdate is not atomic across connections;
 * docs/mongodb.md) must still give one winner, because claims are unique inserts.
 */
function multiServerCases(url: () => string) {
  let clients: MongoClient[] = [];
  let stores: Store[] = [];
  let name = "";

  beforeEach(async () => {
    name = freshName();
    clients = [new MongoClient(url()), new MongoClient(url())];
    await Promise.all(clients.map((c) => c.connect()));
    stores = [];
    for (const c of clients) stores.push(await createMongoStore(c.db(name)));
  });
  afterEach(async () => {
    await Promise.all(clients.map((c) => c.close()));
  });

  const racers = () => [stores[0], stores[1], stores[0], stores[1]] as Store[];

  it("two servers racing assign() on one task: exactly one wins, every round", async () => {
    const rounds = 150;
    const winners: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const task = await stores[0]!.tasks.create(newWaitingTask({ id: `race-${i}`, definition, ownerId: "o", now: 1000 }));
      const results = await Promise.all(
        racers().map((s, k) =>
          s.tasks.assign({
            taskId: task.id,
            fromAttempt: 0,
            nodeId: `node-${k}`,
            leaseId: `lease-${k}`,
            leaseExpireTime: 10_000,
            logBase: 0,
            now: 2000,
          }),
        ),
      );
      const won = results.filter((r) => r !== undefined);
      winners.push(won.length);
      const stored = await stores[1]!.tasks.get(task.id);
      assert.equal(stored?.leaseId, won[0]?.leaseId, "the stored lease is the winner's");
      assert.equal((await stores[1]!.tasks.attempts(task.id)).length, 1);
    }
    assert.deepEqual(
      winners.filter((n) => n !== 1),
      [],
      `rounds without exactly one winner, of ${rounds}`,
    );
  });

  it("two servers racing to end one attempt (lease sweeps): exactly one ends it", async () => {
    for (let i = 0; i < 60; i++) {
      const task = await stores[0]!.tasks.create(newWaitingTask({ id: `end-${i}`, definition, ownerId: "o", now: 1000 }));
      await stores[0]!.tasks.assign({
        taskId: task.id,
        fromAttempt: 0,
        nodeId: "n",
        leaseId: "l",
        leaseExpireTime: 10_000,
        logBase: 0,
        now: 2000,
      });
      const ended = await Promise.all(
        racers().map((s) =>
          s.tasks.endAttempt({
            taskId: task.id,
            attempt: 1,
            leaseId: "l",
            result: "error",
            exitCode: null,
            error: "lease expired",
            taskStatus: "waiting",
            infraFailures: 1,
            scriptRetries: 0,
            logSize: 0,
            now: 3000,
          }),
        ),
      );
      assert.equal(ended.filter((r) => r !== undefined).length, 1, `round ${i}`);
      // The requeued task can be claimed again (attempt 2 is a new claim).
      const again = await stores[1]!.tasks.assign({
        taskId: task.id,
        fromAttempt: 1,
        nodeId: "m",
        leaseId: "l2",
        leaseExpireTime: 10_000,
        logBase: 0,
        now: 4000,
      });
      assert.equal(again?.attempt, 2);
    }
  });

  it("a claim whose holder died is taken over once it is stale", async () => {
    const task = await stores[0]!.tasks.create(newWaitingTask({ id: "stale", definition, ownerId: "o", now: 1000 }));
    // A server that inserted the claim and died before its write.
    await clients[0]!
      .db(name)
      .collection<{ _id: string; taskId: string; time: number }>("claims")
      .insertOne({ _id: `${task.id}:1`, taskId: task.id, time: 1000 });
    const assignment = { taskId: task.id, fromAttempt: 0, nodeId: "n", leaseId: "l", leaseExpireTime: 1e9, logBase: 0 };
    assert.equal(await stores[1]!.tasks.assign({ ...assignment, now: 30_000 }), undefined, "a fresh claim is respected");
    assert.equal((await stores[1]!.tasks.assign({ ...assignment, now: 62_000 }))?.attempt, 1, "a stale one is taken over");
  });

  it("sequences stay unique when two servers append events and create tasks at once", async () => {
    const appended = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        stores[i % 2]!.events.append({
          time: i,
          type: "t",
          subjectId: String(i),
          payloadKind: "",
          payload: null,
          attributes: {},
        }),
      ),
    );
    const sequences = appended.map((e) => e.sequence);
    assert.equal(new Set(sequences).size, sequences.length);
    assert.equal((await stores[0]!.events.listAfter(0, 1000)).length, 60);
    const tasks = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        stores[i % 2]!.tasks.create(newWaitingTask({ id: `seq-${i}`, definition, ownerId: "o", now: i })),
      ),
    );
    assert.equal(new Set(tasks.map((t) => t.seq)).size, 40);
  });

  it("two servers bootstrapping an empty database at once create one admin, and neither fails", async () => {
    const tokens = await Promise.all(stores.map((s) => bootstrapAdmin(s, 1000)));
    assert.equal(tokens.filter((t) => t !== undefined).length, 1);
    assert.equal((await stores[0]!.users.list()).filter((u) => u.name === "admin").length, 1);
  });
}

describe("several servers on one MongoDB database (jongodb, one client per server)", function () {
  this.timeout(120_000);
  let server: JongodbServer | undefined;

  before(async function () {
    server = await requireJongodb(ci, process.env);
    if (!server) this.skip();
  });
  after(async () => {
    await server?.stop();
  });

  multiServerCases(() => server!.url);
});
