import { MongoClient } from "mongodb";
import type { Store } from "../store/store.js";
import { storeConformance } from "../store/store-conformance.js";
import { type JongodbServer, requireJongodb } from "./jongodb-server.js";
import { createMongoStore, openMongoStore } from "./mongo-store.js";

const ci = Boolean(process.env.CI);
let databases = 0;
const freshName = () => `mottainai_test_${process.pid}_${Date.now()}_${++databases}`;

/**
 * The store on database name of client. With drop, close() drops the database (a real MongoDB;
 * jongodb has no dropDatabase and forgets everything when it stops).
 */
async function storeOn(client: MongoClient, name: string, drop: boolean): Promise<Store> {
  const store = await createMongoStore(client.db(name));
  return {
    ...store,
    close: async () => {
      await store.close();
      if (drop) await client.db(name).dropDatabase();
    },
  };
}

// jongodb applies concurrent findOneAndUpdates on different connections without document-level
// atomicity (two winners of one compare-and-set, duplicate $inc results; docs/mongodb.md), so its
// client uses one connection and the cross-process cases run only on a real MongoDB.
describe("MongoDB store conformance (jongodb)", function () {
  let server: JongodbServer | undefined;
  let client: MongoClient;

  before(async function () {
    server = await requireJongodb(ci, process.env);
    if (!server) return this.skip();
    client = new MongoClient(server.url, { maxPoolSize: 1 });
    await client.connect();
  });
  after(async () => {
    await client?.close();
    await server?.stop();
  });

  storeConformance({ open: () => storeOn(client, freshName(), false) });
});

// Registered only when a real MongoDB is given: the summary reporter counts a skipped case as a
// failure in CI, and CI has no real MongoDB (DESIGN §8).
const realUrl = process.env.MOTTAINAI_TEST_MONGO_URL;
if (realUrl) {
  describe("MongoDB store conformance (MOTTAINAI_TEST_MONGO_URL)", function () {
    let client: MongoClient;
    before(async () => {
      client = new MongoClient(realUrl);
      await client.connect();
    });
    after(async () => {
      await client?.close();
    });

    storeConformance({
      open: () => storeOn(client, freshName(), true),
      openShared: async () => {
        const name = freshName();
        const one = await openMongoStore(realUrl, name);
        const two = await openMongoStore(realUrl, name);
        return [
          one,
          {
            ...two,
            close: () =>
              two.close().then(() =>
                client
                  .db(name)
                  .dropDatabase()
                  .then(() => {}),
              ),
          },
        ];
      },
    });
  });
}
