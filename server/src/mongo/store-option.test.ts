import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadServerConfig } from "../config.js";
import { mongoDatabaseName } from "./mongo-store.js";

describe("--store", () => {
  it("is sqlite by default and takes a MongoDB URL from the flag, the environment or the file", () => {
    assert.deepEqual(loadServerConfig([], {}).store, { backend: "sqlite" });
    assert.deepEqual(loadServerConfig(["--store", "sqlite"], {}).store, { backend: "sqlite" });
    assert.deepEqual(loadServerConfig(["--store", "mongodb://db1:27017,db2/ci?replicaSet=rs0"], {}).store, {
      backend: "mongodb",
      url: "mongodb://db1:27017,db2/ci?replicaSet=rs0",
    });
    assert.deepEqual(loadServerConfig([], { MOTTAINAI_STORE: "mongodb+srv://u:p@cluster.example" }).store, {
      backend: "mongodb",
      url: "mongodb+srv://u:p@cluster.example",
    });
    const dir = mkdtempSync(join(tmpdir(), "cfg-"));
    writeFileSync(join(dir, "c.yaml"), "store: mongodb://127.0.0.1/mottainai\n");
    assert.deepEqual(loadServerConfig(["--config", join(dir, "c.yaml")], {}).store, {
      backend: "mongodb",
      url: "mongodb://127.0.0.1/mottainai",
    });
  });

  it("names the option of a bad value without echoing a password", () => {
    assert.throws(() => loadServerConfig(["--store", "postgres://h/db"], {}), {
      name: "ConfigError",
      message:
        '--store: expected "sqlite" or a MongoDB connection string such as "mongodb://127.0.0.1:27017/mottainai", got "postgres://h/db"',
    });
    assert.throws(() => loadServerConfig([], { MOTTAINAI_STORE: "mongodb:///nohost" }), {
      message: /^MOTTAINAI_STORE: expected "sqlite" or a MongoDB connection string/,
    });
    assert.throws(
      () => loadServerConfig(["--store", "mongo://admin:secret@h/db"], {}),
      (err: Error) => {
        assert.match(err.message, /got "mongo:\/\/…@h\/db"$/);
        assert.doesNotMatch(err.message, /secret/);
        return true;
      },
    );
  });

  it("--blobs gridfs needs a MongoDB store, and refuses the S3 options", () => {
    const mongo = ["--store", "mongodb://127.0.0.1/ci"];
    assert.equal(loadServerConfig([...mongo, "--blobs", "gridfs"], {}).blobs, "gridfs");
    assert.equal(loadServerConfig(mongo, { MOTTAINAI_BLOBS: "gridfs" }).blobs, "gridfs");
    assert.throws(() => loadServerConfig(["--blobs", "gridfs"], {}), {
      name: "ConfigError",
      message: /^--blobs: gridfs keeps blobs in the MongoDB database of --store, but the store is sqlite/,
    });
    assert.throws(() => loadServerConfig([...mongo, "--blobs", "gridfs", "--s3-bucket", "b"], {}), {
      message: "--s3-bucket: only used with --blobs s3 (the blob store is gridfs)",
    });
    assert.throws(() => loadServerConfig([...mongo, "--blobs", "ceph"], {}), {
      message: '--blobs: expected local, s3 or gridfs, got "ceph"',
    });
  });

  it("takes the database from the URL's path", () => {
    assert.equal(mongoDatabaseName("mongodb://h:1/ci?replicaSet=rs0"), "ci");
    assert.equal(mongoDatabaseName("mongodb+srv://u:p@h/prod"), "prod");
    assert.equal(mongoDatabaseName("mongodb://h1,h2/?replicaSet=rs0"), undefined);
    assert.equal(mongoDatabaseName("mongodb://h"), undefined);
  });
});
