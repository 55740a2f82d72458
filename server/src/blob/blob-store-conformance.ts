import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { setTimeout as sleep } from "node:timers/promises";
import type { BlobInfo, BlobStore, StoredBlobInfo } from "./blob-store.js";

/** One backend instance as the conformance suite drives it: a fresh, empty store per case. */
export interface BlobStoreUnderTest {
  store: BlobStore;
  /** The backend's temporary uploads still present (files, objects, multipart uploads). */
  temporaries(): Promise<string[]>;
  /** Removes the store and everything in it after the case. */
  dispose(): Promise<void>;
}

const MIB = 1024 * 1024;
const sha = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

/** Splits data into a stream of chunks of at most chunkBytes. */
function chunked(data: Buffer, chunkBytes = 64 * 1024): Readable {
  return Readable.from(
    (function* () {
      for (let at = 0; at < data.length; at += chunkBytes) yield data.subarray(at, at + chunkBytes);
    })(),
  );
}

/** A source that yields `before` bytes and then fails like a dropped connection. */
function failingAfter(before: Buffer): Readable {
  return Readable.from(
    (async function* () {
      yield* chunked(before);
      throw new Error("connection reset by peer");
    })(),
  );
}

async function all(list: AsyncIterable<StoredBlobInfo>): Promise<StoredBlobInfo[]> {
  const out: StoredBlobInfo[] = [];
  for await (const entry of list) out.push(entry);
  return out;
}

/**
 * The BlobStore contract (blob-store.ts) as mocha cases: call inside a describe() of a backend's
 * test file, with a factory that makes a fresh, empty store for each case. Large cases use
 * 12 and 20 MiB so that backends with a multipart path (S3, parts of 8 MiB) take it. After every
 * case the suite checks that no temporary upload is left.
 */
export function blobStoreConformance(create: () => Promise<BlobStoreUnderTest>): void {
  let t: BlobStoreUnderTest | undefined;
  let store: BlobStore;

  beforeEach(async () => {
    t = await create();
    store = t.store;
  });
  afterEach(async function () {
    if (!t) return;
    const left = await t.temporaries();
    await t.dispose();
    t = undefined;
    if (this.currentTest?.state === "passed") assert.deepEqual(left, [], "no temporary upload outlives its put");
  });

  const assertNothingVisible = async (sha256: string) => {
    assert.equal(await store.stat(sha256), undefined, "stat finds nothing");
    assert.deepEqual(await all(store.list()), [], "list shows nothing");
    await assert.rejects(store.get(sha256), { code: "ENOENT" });
    assert.deepEqual(await t!.temporaries(), [], "no temporary upload is left");
  };

  it("puts a blob and reads back its exact bytes, stat and list entry", async () => {
    const data = randomBytes(100_000);
    const before = Date.now();
    const info = await store.put(chunked(data, 7_000));
    assert.deepEqual(info, { sha256: sha(data), size: data.length });
    assert.deepEqual(await store.stat(info.sha256), info);
    assert.ok((await buffer(await store.get(info.sha256))).equals(data), "same bytes");
    const listed = await all(store.list());
    assert.deepEqual(
      listed.map(({ sha256, size }) => ({ sha256, size })),
      [info],
    );
    const createTime = listed[0]?.createTime;
    assert.ok(createTime instanceof Date);
    const skew = 5 * 60 * 1000;
    assert.ok(Math.abs(createTime.getTime() - before) < skew, `createTime ${createTime.toISOString()}`);
  });

  it("accepts an async iterable of Uint8Array as the source", async () => {
    const data = Buffer.from("from an async iterable");
    const info = await store.put(
      (async function* () {
        yield new Uint8Array(data.subarray(0, 5));
        yield new Uint8Array(data.subarray(5));
      })(),
      sha(data),
    );
    assert.deepEqual(info, { sha256: sha(data), size: data.length });
    assert.ok((await buffer(await store.get(info.sha256))).equals(data));
  });

  it("accepts an array of buffers as the source", async () => {
    const parts = [Buffer.from("one "), Buffer.from("two")];
    const info = await store.put(parts);
    assert.deepEqual(info, { sha256: sha(Buffer.concat(parts)), size: 7 });
    assert.equal((await buffer(await store.get(info.sha256))).toString(), "one two");
  });

  it("stores and reads the empty blob", async () => {
    const empty = Buffer.alloc(0);
    const info = await store.put(Readable.from([]), sha(empty));
    assert.deepEqual(info, { sha256: sha(empty), size: 0 });
    assert.deepEqual(await store.stat(info.sha256), info);
    assert.equal((await buffer(await store.get(info.sha256))).length, 0);
    assert.equal((await buffer(await store.get(info.sha256, 0, 0))).length, 0);
    await assert.rejects(store.get(info.sha256, 1), { code: "ERR_BLOB_RANGE" });
    assert.equal((await all(store.list())).length, 1);
  });

  it("round-trips a 20 MiB blob (the multipart path) and reads ranges across part boundaries", async () => {
    const data = randomBytes(20 * MIB);
    const info = await store.put(chunked(data), sha(data));
    assert.deepEqual(info, { sha256: sha(data), size: data.length });
    assert.equal(sha(await buffer(await store.get(info.sha256))), info.sha256);
    const from = 8 * MIB - 10;
    assert.ok((await buffer(await store.get(info.sha256, from, 20))).equals(data.subarray(from, from + 20)));
    assert.ok((await buffer(await store.get(info.sha256, 16 * MIB))).equals(data.subarray(16 * MIB)));
  });

  it("refuses content that does not match the expected sha256 and leaves nothing", async () => {
    const data = Buffer.from("tampered");
    const claimed = sha(Buffer.from("original"));
    await assert.rejects(store.put(chunked(data), claimed), {
      name: "BlobDigestMismatchError",
      message: `content has sha256 ${sha(data)}, expected ${claimed}`,
    });
    await assertNothingVisible(sha(data));
    await assertNothingVisible(claimed);

    const large = randomBytes(12 * MIB);
    await assert.rejects(store.put(chunked(large), claimed), { name: "BlobDigestMismatchError" });
    await assertNothingVisible(sha(large));
  });

  it("refuses a malformed expected sha256 before reading", async () => {
    await assert.rejects(store.put(chunked(Buffer.from("x")), "ABC"), { name: "BlobDigestMismatchError" });
    await assertNothingVisible(sha(Buffer.from("x")));
  });

  it("rejects with the source's error when it fails midway and leaves nothing", async () => {
    const small = Buffer.from("partial content");
    await assert.rejects(store.put(failingAfter(small)), { message: "connection reset by peer" });
    await assertNothingVisible(sha(small));

    const large = randomBytes(12 * MIB);
    await assert.rejects(store.put(failingAfter(large), sha(large)), { message: "connection reset by peer" });
    await assertNothingVisible(sha(large));
  });

  it("can retry a put that failed", async () => {
    const data = randomBytes(10_000);
    await assert.rejects(store.put(failingAfter(data.subarray(0, 5_000)), sha(data)));
    assert.deepEqual(await store.put(chunked(data), sha(data)), { sha256: sha(data), size: data.length });
    assert.ok((await buffer(await store.get(sha(data)))).equals(data));
  });

  it("stores identical content once and refreshes its createTime", async () => {
    const data = Buffer.from("same bytes twice");
    const first = await store.put(chunked(data));
    const before = (await all(store.list()))[0]?.createTime;
    assert.ok(before);
    await sleep(1100);
    assert.deepEqual(await store.put(chunked(data), sha(data)), first);
    const listed = await all(store.list());
    assert.deepEqual(
      listed.map(({ sha256, size }) => ({ sha256, size })),
      [first],
      "one entry",
    );
    assert.ok((listed[0]?.createTime ?? before) > before, "a second put refreshes createTime");
  });

  it("reads ranges: from an offset, offset and length, at the end, and refuses past the end", async () => {
    const data = Buffer.from("0123456789");
    const { sha256 } = await store.put(chunked(data));
    const read = async (offset?: number, length?: number) => (await buffer(await store.get(sha256, offset, length))).toString();
    assert.equal(await read(), "0123456789");
    assert.equal(await read(3), "3456789");
    assert.equal(await read(3, 4), "3456");
    assert.equal(await read(0, 10), "0123456789");
    assert.equal(await read(9, 1), "9");
    assert.equal(await read(4, 0), "");
    assert.equal(await read(10), "", "offset = size is empty");
    assert.equal(await read(10, 0), "");
    for (const [offset, length] of [[11], [8, 5], [10, 1], [20, 0], [-1], [1.5]] as [number, number?][]) {
      await assert.rejects(store.get(sha256, offset, length), { code: "ERR_BLOB_RANGE", name: "BlobRangeError" });
    }
  });

  it("rejects get of a missing blob with ENOENT, and stat finds nothing", async () => {
    const missing = sha(Buffer.from("never stored"));
    await assert.rejects(store.get(missing), { code: "ENOENT" });
    await assert.rejects(store.get(missing, 5, 5), { code: "ENOENT" });
    await assert.rejects(store.get(missing, 0, 0), { code: "ENOENT" });
    await assert.rejects(store.get("../../etc/passwd"), { code: "ENOENT" });
    assert.equal(await store.stat(missing), undefined);
    assert.equal(await store.stat("not-a-digest"), undefined);
  });

  it("deletes idempotently", async () => {
    const data = Buffer.from("delete me");
    const { sha256 } = await store.put(chunked(data));
    const kept = await store.put(chunked(Buffer.from("keep me")));
    await store.delete(sha256);
    await store.delete(sha256);
    await store.delete(sha(Buffer.from("never stored")));
    await store.delete("not-a-digest");
    assert.equal(await store.stat(sha256), undefined);
    await assert.rejects(store.get(sha256), { code: "ENOENT" });
    assert.deepEqual(
      (await all(store.list())).map(({ sha256: s, size }) => ({ sha256: s, size })),
      [kept],
    );
  });

  it("takes concurrent puts of the same content, small and multipart", async () => {
    for (const data of [randomBytes(50_000), randomBytes(10 * MIB)]) {
      const infos: BlobInfo[] = await Promise.all(
        Array.from({ length: 6 }, (_, i) => store.put(chunked(data, 16_384 * (i + 1)), i % 2 ? sha(data) : undefined)),
      );
      for (const info of infos) assert.deepEqual(info, { sha256: sha(data), size: data.length });
      assert.ok((await buffer(await store.get(sha(data)))).equals(data));
    }
    assert.equal((await all(store.list())).length, 2);
  });

  it("takes concurrent puts of different content and lists each once", async () => {
    const blobs = Array.from({ length: 12 }, (_, i) => randomBytes(1000 + i));
    const infos = await Promise.all(blobs.map((b) => store.put(chunked(b))));
    const listed = await all(store.list());
    assert.deepEqual(listed.map((e) => e.sha256).sort(), infos.map((i) => i.sha256).sort());
    for (const entry of listed) assert.equal(entry.size, infos.find((i) => i.sha256 === entry.sha256)?.size);
  });
}
