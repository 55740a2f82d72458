import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { text } from "node:stream/consumers";
import { LocalBlobStore, openLocalBlobStore } from "./local-blob-store.js";

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

describe("LocalBlobStore", () => {
  let dir: string;
  let store: LocalBlobStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "blobs-"));
    store = new LocalBlobStore(dir);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("stores content by sha256, once, and reads it back from an offset", async () => {
    const info = await store.put(Readable.from([Buffer.from("hello "), Buffer.from("world")]));
    assert.deepEqual(info, { sha256: sha("hello world"), size: 11 });
    assert.deepEqual(await store.put(Readable.from([Buffer.from("hello world")]), sha("hello world")), info);
    assert.equal(await text(await store.get(info.sha256)), "hello world");
    assert.equal(await text(await store.get(info.sha256, 6)), "world");
    assert.deepEqual(await store.stat(info.sha256), info);
    await store.delete(info.sha256);
    assert.equal(await store.stat(info.sha256), undefined);
    await assert.rejects(store.get(info.sha256), { code: "ENOENT" });
  });

  it("refuses content that does not match the promised digest and leaves nothing behind", async () => {
    await assert.rejects(store.put(Readable.from([Buffer.from("tampered")]), sha("original")), {
      name: "BlobDigestMismatchError",
      message: `content has sha256 ${sha("tampered")}, expected ${sha("original")}`,
    });
    assert.equal(await store.stat(sha("tampered")), undefined);
    assert.deepEqual(readdirSync(join(dir, "tmp")), []);
  });

  it("leaves nothing behind when the source fails midway", async () => {
    const failing = Readable.from(
      (async function* () {
        yield Buffer.from("partial");
        throw new Error("connection reset");
      })(),
    );
    await assert.rejects(store.put(failing), { message: "connection reset" });
    assert.deepEqual(readdirSync(dir), ["tmp"]);
    assert.deepEqual(readdirSync(join(dir, "tmp")), []);
  });

  it("deletes temporary files older than an hour at open, and keeps younger ones", async () => {
    mkdirSync(join(dir, "tmp"));
    const hourAgo = (Date.now() - 61 * 60 * 1000) / 1000;
    writeFileSync(join(dir, "tmp", "crashed"), "half an upload");
    utimesSync(join(dir, "tmp", "crashed"), hourAgo, hourAgo);
    writeFileSync(join(dir, "tmp", "running"), "an upload in progress");
    const reopened = await openLocalBlobStore(dir);
    assert.deepEqual(readdirSync(join(dir, "tmp")), ["running"]);
    await openLocalBlobStore(dir, { now: () => Date.now() + 2 * 60 * 60 * 1000 });
    assert.deepEqual(readdirSync(join(dir, "tmp")), []);
    assert.deepEqual(await reopened.put(Readable.from([Buffer.from("still works")])), {
      sha256: sha("still works"),
      size: 11,
    });
  });

  it("creates its directory at open", async () => {
    const fresh = join(dir, "new", "blobs");
    await openLocalBlobStore(fresh);
    assert.deepEqual(readdirSync(fresh), ["tmp"]);
  });
});
