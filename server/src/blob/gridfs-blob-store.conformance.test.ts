import assert from "node:assert/strict";
import { MongoClient, ObjectId } from "mongodb";
import { Readable } from "node:stream";
import { type JongodbServer, requireJongodb } from "../mongo/jongodb-server.js";
import { blobStoreConformance } from "./blob-store-conformance.js";
import { createGridFsBlobStore } from "./gridfs-blob-store.js";

let databases = 0;
const freshName = () => `mottainai_gridfs_${process.pid}_${Date.now()}_${++databases}`;

// On jongodb (CI fails when it cannot start; a developer's run skips): the shared BlobStore
// contract and the GridFS specifics.
describe("GridFsBlobStore on jongodb", function () {
  let server: JongodbServer | undefined;
  let client: MongoClient;

  before(async function () {
    server = await requireJongodb(Boolean(process.env.CI), process.env);
    if (!server) return this.skip();
    client = new MongoClient(server.url, { maxPoolSize: 1 });
    await client.connect();
  });
  after(async () => {
    await client?.close();
    await server?.stop();
  });

  describe("conformance", () => {
    blobStoreConformance(async () => {
      const store = await createGridFsBlobStore(client.db(freshName()), { chunkSizeBytes: 256 * 1024 });
      return { store, temporaries: () => store.listTemp(), dispose: async () => {} };
    });
  });

  describe("backend specifics", () => {
    it("leaves no chunk behind when the source fails midway, with a pool of connections", async () => {
      const pooled = new MongoClient(server!.url);
      await pooled.connect();
      try {
        const db = pooled.db(freshName());
        const store = await createGridFsBlobStore(db, { chunkSizeBytes: 64 * 1024 });
        const source = Readable.from(
          (async function* () {
            for (let i = 0; i < 40; i++) yield Buffer.alloc(50_000, i);
            throw new Error("connection reset by peer");
          })(),
        );
        await assert.rejects(store.put(source), { message: "connection reset by peer" });
        assert.equal(await db.collection("blobs.chunks").countDocuments({}), 0);
        assert.equal(await db.collection("blobs.files").countDocuments({}), 0);
        assert.deepEqual(await store.listTemp(), []);
      } finally {
        await pooled.close();
      }
    });

    it("deletes the chunks and records of uploads older than an hour at open, and nothing else", async () => {
      const db = client.db(freshName());
      const store = await createGridFsBlobStore(db);
      const kept = await store.put(Readable.from([Buffer.from("a real blob")]));
      // What a crash mid-put leaves: an upload record and chunks with no files document.
      const crashed = new ObjectId();
      await db.collection("blobs.uploads").insertOne({ _id: crashed, startTime: new Date() });
      await db.collection("blobs.chunks").insertOne({ files_id: crashed, n: 0, data: Buffer.from("half") });
      assert.deepEqual(await store.listTemp(), [`upload ${crashed.toHexString()}`]);
      await createGridFsBlobStore(db);
      assert.equal(await db.collection("blobs.chunks").countDocuments({ files_id: crashed }), 1, "younger than an hour: kept");
      await createGridFsBlobStore(db, { now: () => Date.now() + 61 * 60 * 1000 });
      assert.deepEqual(await store.listTemp(), []);
      assert.equal(await db.collection("blobs.chunks").countDocuments({ files_id: crashed }), 0);
      assert.deepEqual(await store.stat(kept.sha256), kept, "blobs are not touched");
    });
  });
});
