import assert from "node:assert/strict";
import { MongoClient } from "mongodb";
import type { PlanRunRecord } from "../store/plan-store.js";
import type { Store } from "../store/store.js";
import { testDefinition } from "../store/task-store-conformance.js";
import { type JongodbServer, requireJongodb } from "./jongodb-server.js";
import { createMongoStore } from "./mongo-store.js";

const ci = Boolean(process.env.CI);

// The conformance suite runs jongodb on one connection; plan claims are the one cross-process
// invariant that must also hold across connections there (a unique _id insert), so it is tested
// here with one client (and pool) per simulated server.
describe("MongoPlanStore claims across connections (jongodb)", function () {
  let server: JongodbServer | undefined;
  const clients: MongoClient[] = [];

  before(async function () {
    server = await requireJongodb(ci, process.env);
    if (!server) return this.skip();
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.stop();
  });

  it("lets exactly one of three servers win each occurrence", async () => {
    const name = `mottainai_plan_claims_${process.pid}_${Date.now()}`;
    const stores: Store[] = [];
    for (let i = 0; i < 3; i++) {
      const client = new MongoClient(server!.url, { maxPoolSize: 4 });
      await client.connect();
      clients.push(client);
      stores.push(await createMongoStore(client.db(name)));
    }
    await stores[0]!.plans.create({
      id: "p",
      ownerId: "u",
      definition: { planned: "@every 1s", timezone: "", catchUp: "skip", target: { kind: "task", task: testDefinition } },
      paused: false,
      nextRunTime: 1000,
      createTime: 0,
      updateTime: 0,
    });
    const run = (second: number, server: number): PlanRunRecord => ({
      key: `p@${second * 1000}`,
      planId: "p",
      scheduledTime: second * 1000,
      fireTime: second * 1000 + server,
      kind: "task",
      targetId: `t${second}-${server}`,
      manual: false,
      launched: false,
    });
    const seconds = 30;
    const attempts = await Promise.all(
      Array.from({ length: seconds * 3 }, (_, i) => {
        const second = Math.floor(i / 3) + 1;
        return stores[i % 3]!.plans.claimRun(run(second, i % 3)).then((won) => ({ second, won }));
      }),
    );
    for (let second = 1; second <= seconds; second++) {
      assert.equal(attempts.filter((a) => a.second === second && a.won).length, 1, `second ${second}`);
    }
    const runs = await stores[1]!.plans.listRuns("p", 100);
    assert.equal(runs.length, seconds);
    assert.equal(new Set(runs.map((r) => r.scheduledTime)).size, seconds);
  });
});
