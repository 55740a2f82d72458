import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogBuffer, type LogBuffer } from "./log-buffer.js";

function pattern(length: number, seed = 0): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

function drain(log: LogBuffer, maxBytes: number): { offsets: number[]; data: Buffer } {
  const offsets: number[] = [];
  const parts: Buffer[] = [];
  for (let c = log.chunk(maxBytes); c; c = log.chunk(maxBytes)) {
    offsets.push(c.offset);
    parts.push(c.data);
  }
  return { offsets, data: Buffer.concat(parts) };
}

describe("LogBuffer", () => {
  let dir: string;
  let spillDir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "mottainai-log-buffer-"));
    spillDir = join(dir, "spill");
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("assigns offsets from 0 and hands out chunks of at most maxBytes in order", () => {
    const log = createLogBuffer({ spillDir });
    assert.equal(log.chunk(10), undefined);
    log.append(Buffer.from("hello "));
    log.append(Buffer.from("world"));
    log.append(new Uint8Array(0));
    assert.equal(log.size, 11);
    assert.equal(log.pending, 11);
    assert.deepEqual(log.chunk(4), { offset: 0, data: Buffer.from("hell") });
    assert.deepEqual(log.chunk(4), { offset: 4, data: Buffer.from("o wo") });
    assert.equal(log.inFlight, 8);
    assert.deepEqual(log.chunk(100), { offset: 8, data: Buffer.from("rld") });
    assert.equal(log.chunk(100), undefined);
    assert.equal(log.sent, 11);
    assert.equal(log.pending, 0);
    log.dispose();
  });

  it("copies appended bytes, so the caller may reuse its buffer", () => {
    const log = createLogBuffer({ spillDir });
    const b = Buffer.from("abc");
    log.append(b);
    b.fill(0x78);
    assert.deepEqual(log.chunk(10)?.data, Buffer.from("abc"));
  });

  it("ack drops acknowledged bytes and moves sent forward when the server is ahead", () => {
    const log = createLogBuffer({ spillDir });
    const data = pattern(200_000);
    log.append(data);
    log.chunk(1000);
    log.ack(600);
    assert.equal(log.acked, 600);
    assert.equal(log.sent, 1000);
    assert.equal(log.inFlight, 400);
    log.ack(500);
    assert.equal(log.acked, 600, "a lower ack is ignored");
    log.ack(150_000);
    assert.equal(log.sent, 150_000);
    assert.ok(log.memoryBytes < 200_000, "whole acknowledged segments are released");
    assert.deepEqual(drain(log, 7000).data, data.subarray(150_000));
    log.ack(200_000);
    assert.equal(log.memoryBytes, 0);
    assert.throws(() => log.ack(200_001), RangeError);
  });

  it("rewind resends from the committed offset, byte for byte", () => {
    const log = createLogBuffer({ spillDir });
    const data = pattern(10_000);
    log.append(data);
    drain(log, 3000);
    log.ack(2000);
    log.rewind(2000);
    assert.equal(log.sent, 2000);
    const again = drain(log, 3000);
    assert.deepEqual(again.offsets, [2000, 5000, 8000]);
    assert.deepEqual(again.data, data.subarray(2000));
    log.rewind(9000);
    assert.deepEqual(log.chunk(5000), { offset: 9000, data: data.subarray(9000) });
    assert.throws(() => log.rewind(1999), /acknowledged and dropped/);
    assert.throws(() => log.rewind(10_001), RangeError);
  });

  it("keeps many small appends exact across segment boundaries", () => {
    const log = createLogBuffer({ spillDir });
    const parts: Buffer[] = [];
    for (let i = 0; i < 5000; i++) {
      const p = Buffer.from(`line ${i}\n`);
      parts.push(p);
      log.append(p);
    }
    const all = Buffer.concat(parts);
    assert.equal(log.size, all.length);
    assert.deepEqual(drain(log, 4099).data, all);
  });

  it("spills past the memory limit, reads back from the file and never drops a byte", () => {
    const log = createLogBuffer({ spillDir, memoryLimit: 1024, name: "task/1#2" });
    const data = pattern(10_000, 7);
    for (let pos = 0; pos < data.length; pos += 333) log.append(data.subarray(pos, pos + 333));
    assert.equal(log.size, 10_000);
    assert.ok(log.spilled);
    assert.ok(log.memoryBytes <= 1024);
    const files = readdirSync(spillDir);
    assert.equal(files.length, 1);
    assert.match(files[0] as string, /^task_1_2-[0-9a-f]+\.spill$/);

    const first = drain(log, 700);
    assert.deepEqual(first.data, data, "one pass reads memory then file");
    log.ack(500);
    log.rewind(500);
    assert.deepEqual(drain(log, 1500).data, data.subarray(500), "a resend that starts in memory crosses into the file");
    log.ack(3000);
    log.rewind(3000);
    assert.deepEqual(drain(log, 1000).data, data.subarray(3000), "a resend from inside the file");
    assert.equal(log.memoryBytes, 0);
    assert.ok(log.spilled);

    log.ack(9600);
    assert.equal(log.spilled, false, "what is left fits in memory again: the file is gone");
    assert.deepEqual(readdirSync(spillDir), []);
    assert.equal(log.memoryBytes, 400);
    log.rewind(9600);
    assert.deepEqual(drain(log, 1000).data, data.subarray(9600));

    const more = pattern(3000, 3);
    log.append(more);
    assert.ok(log.spilled, "spills again when memory fills");
    log.rewind(9600);
    assert.deepEqual(drain(log, 999).data, Buffer.concat([data.subarray(9600), more]));
    log.ack(13_000);
    assert.equal(log.spilled, false, "fully acknowledged: the file is gone");
    assert.equal(log.memoryBytes, 0);
    assert.deepEqual(readdirSync(spillDir), []);
    log.append(Buffer.from("tail"));
    assert.deepEqual(log.chunk(100), { offset: 13_000, data: Buffer.from("tail") });
    log.dispose();
  });

  it("spills a single append larger than the memory limit", () => {
    const log = createLogBuffer({ spillDir, memoryLimit: 100 });
    const data = pattern(5000);
    log.append(data.subarray(0, 50));
    log.append(data.subarray(50));
    assert.ok(log.spilled);
    assert.equal(log.memoryBytes, 50);
    assert.deepEqual(drain(log, 64).data, data);
  });

  it("dispose deletes the spill file and is idempotent", () => {
    const log = createLogBuffer({ spillDir, memoryLimit: 10 });
    log.append(pattern(100));
    assert.equal(readdirSync(spillDir).length, 1);
    log.dispose();
    log.dispose();
    assert.deepEqual(readdirSync(spillDir), []);
    assert.throws(() => log.append(Buffer.from("x")), /disposed/);
  });

  it("rejects a chunk size below one byte", () => {
    const log = createLogBuffer({ spillDir });
    log.append(Buffer.from("x"));
    assert.throws(() => log.chunk(0), RangeError);
  });
});
