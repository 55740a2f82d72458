import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { LocalBlobStore } from "../blob/local-blob-store.js";
import { openSqliteStore } from "../sqlite/sqlite-store.js";
import type { Store } from "../store/store.js";
import { TaskLogStore } from "./task-log-store.js";

describe("TaskLogStore", () => {
  let dir: string;
  let store: Store;
  let blobs: LocalBlobStore;
  const open = (segmentBytes = 10) =>
    new TaskLogStore({
      dir: join(dir, "logs"),
      segments: store.logSegments,
      blobs,
      logger: pino({ level: "silent" }),
      segmentBytes,
    });

  const readAll = async (logs: TaskLogStore, id: string, from = 0) => {
    const parts: Buffer[] = [];
    for (let offset = from; ;) {
      const data = await logs.read(id, offset, 7);
      if (data.length === 0) return Buffer.concat(parts).toString();
      parts.push(data);
      offset += data.length;
    }
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "logs-"));
    store = openSqliteStore(join(dir, "db"));
    blobs = new LocalBlobStore(join(dir, "blobs"));
  });
  afterEach(() => store.close());

  it("appends only at the committed size and seals full segments into blobs", async () => {
    const logs = open(10);
    assert.equal(await logs.append("t", 0, Buffer.from("0123456789abc")), 13);
    await assert.rejects(logs.append("t", 5, Buffer.from("x")), { message: "log append at 5 but t has 13 bytes" });
    assert.equal(await logs.append("t", 13, Buffer.from("def")), 16);
    await logs.seal("t");
    assert.deepEqual(
      (await store.logSegments.list("t")).map((s) => [s.start, s.length]),
      [
        [0, 13],
        [13, 3],
      ],
    );
    assert.deepEqual(readdirSync(join(dir, "logs", "t")), []);
    assert.equal(await readAll(logs, "t"), "0123456789abcdef");
    assert.equal(await readAll(logs, "t", 11), "bcdef");
    assert.equal(await readAll(open(10), "t"), "0123456789abcdef", "a fresh store reads the sealed segments");
  });

  it("recovers after a crash: unsealed files are found, already sealed ones dropped", async () => {
    const logs = open(1000);
    await logs.append("t", 0, Buffer.from("sealed|"));
    await logs.seal("t");
    await logs.append("t", 7, Buffer.from("live"));
    // A crash after the segment row was written but before its file was deleted:
    writeFileSync(join(dir, "logs", "t", "0"), "sealed|");
    const reopened = open(1000);
    assert.equal(await reopened.size("t"), 11);
    assert.equal(await readAll(reopened, "t"), "sealed|live");
    assert.deepEqual(readdirSync(join(dir, "logs", "t")), ["7"]);
    assert.equal(await reopened.append("t", 11, Buffer.from("!")), 12);
    mkdirSync(join(dir, "logs", "u"));
    assert.equal(await reopened.size("u"), 0);
  });

  it("removes a log without deleting a blob another task's segment still uses", async () => {
    const logs = open(1000);
    await logs.append("a", 0, Buffer.from("same bytes"));
    await logs.append("b", 0, Buffer.from("same bytes"));
    await logs.seal("a");
    await logs.seal("b");
    const [segment] = await store.logSegments.list("a");
    await logs.remove("a");
    assert.ok(await blobs.stat(segment!.sha256), "still used by b");
    assert.equal(await readAll(logs, "b"), "same bytes");
    await logs.remove("b");
    assert.equal(await blobs.stat(segment!.sha256), undefined);
    assert.equal(await logs.size("b"), 0);
  });

  it("shared: every append is a segment other servers see at once, and a log continues on another server", async () => {
    const shared = (name: string) =>
      new TaskLogStore({
        dir: join(dir, name),
        segments: store.logSegments,
        blobs,
        logger: pino({ level: "silent" }),
        shared: true,
      });
    const a = shared("a");
    const b = shared("b");
    assert.equal(await a.append("t", 0, Buffer.from("hello ")), 6);
    assert.equal(await b.size("t"), 6, "acknowledged bytes are in the shared store");
    assert.equal(await readAll(b, "t"), "hello ");
    // Server a died; the agent resends from the committed offset through server b.
    await assert.rejects(b.append("t", 3, Buffer.from("lo ")), { message: "log append at 3 but t has 6 bytes" });
    assert.equal(await b.append("t", 6, Buffer.from("world\n")), 12);
    assert.equal(await readAll(a, "t"), "hello world\n", "a reader's cached segment list is extended past its end");
    assert.equal(await a.size("t"), 12);
    assert.deepEqual(readdirSync(join(dir, "a")), [], "no live files");
    await b.remove("t");
    assert.equal(await b.size("t"), 0);
    assert.deepEqual(await store.logSegments.list("t"), []);
  });
});
