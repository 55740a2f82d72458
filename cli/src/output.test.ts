import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { StorageSchema } from "@mottainai/proto";
import { createOutput } from "./output.js";

function fakeStreams(): { stdout: Writable; stderr: Writable; out: () => Buffer; err: () => string } {
  const collect = (chunks: Buffer[]) =>
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(Buffer.from(chunk));
        callback();
      },
    });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  return {
    stdout: collect(out),
    stderr: collect(err),
    out: () => Buffer.concat(out),
    err: () => Buffer.concat(err).toString(),
  };
}

describe("Output", () => {
  it("writes a ConnectError as one line on stderr: mottainai: unauthenticated: <message>", () => {
    const streams = fakeStreams();
    createOutput(streams).error(new ConnectError("invalid token", Code.Unauthenticated));
    assert.equal(streams.err(), "mottainai: unauthenticated: invalid token\n");
    assert.equal(streams.out().length, 0);
  });

  it("writes borderless tables with an aligned header and no trailing spaces", () => {
    const streams = fakeStreams();
    createOutput(streams).table(
      ["ID", "NAME", "RESULT"],
      [
        ["t1", "build world", ""],
        ["task-22", "x", "success"],
      ],
    );
    assert.equal(
      streams.out().toString(),
      ["ID       NAME         RESULT", "t1       build world", "task-22  x            success", ""].join("\n"),
    );
  });

  it("keeps each table row on one line", () => {
    const streams = fakeStreams();
    createOutput(streams).table(["#", "ERROR"], [["1", "lease expired\nagent lost"]]);
    assert.equal(streams.out().toString(), "#  ERROR\n1  lease expired agent lost\n");
  });

  it("writes only the header of an empty table", () => {
    const streams = fakeStreams();
    createOutput(streams).table(["ID", "NAME"], []);
    assert.equal(streams.out().toString(), "ID  NAME\n");
  });

  it("pretty-prints JSON with two spaces, and JSON lines compactly", () => {
    const streams = fakeStreams();
    const output = createOutput(streams);
    output.json([{ id: "a" }]);
    output.jsonLine({ sequence: "1", type: "task.created" });
    assert.equal(streams.out().toString(), '[\n  {\n    "id": "a"\n  }\n]\n{"sequence":"1","type":"task.created"}\n');
  });

  it("lists items as a table, or with json as an array of their proto3 JSON forms", () => {
    const storages = [create(StorageSchema, { id: "s1", name: "distfiles", fileCount: 2n })];
    const head = ["NAME", "FILES"];
    const row = (s: (typeof storages)[number]) => [s.name, String(s.fileCount)];
    const table = fakeStreams();
    createOutput(table).list(false, StorageSchema, storages, head, row);
    assert.equal(table.out().toString(), "NAME       FILES\ndistfiles  2\n");
    const json = fakeStreams();
    createOutput(json).list(true, StorageSchema, storages, head, row);
    assert.deepEqual(JSON.parse(json.out().toString()), [{ id: "s1", name: "distfiles", fileCount: "2" }]);
  });

  it("writes key: value lines", () => {
    const streams = fakeStreams();
    createOutput(streams).fields([
      ["id", "t1"],
      ["exit code", "-"],
    ]);
    assert.equal(streams.out().toString(), "id: t1\nexit code: -\n");
  });

  it("writes raw bytes unchanged, including invalid UTF-8 and a view into a larger buffer", async () => {
    const streams = fakeStreams();
    const backing = new Uint8Array([0x41, 0xff, 0xfe, 0x0d, 0x0a, 0x00, 0xe2, 0x82, 0x42]);
    await createOutput(streams).raw(backing.subarray(1, 8));
    assert.deepEqual(streams.out(), Buffer.from([0xff, 0xfe, 0x0d, 0x0a, 0x00, 0xe2, 0x82]));
  });
});
