import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listenConsole, TRAILER_ACK } from "./libvirt-console.js";

describe("libvirt console", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "mottainai-console-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const nonce = "0123456789abcdef";

  async function run(chunks: (string | Buffer)[]): Promise<{ output: Buffer; exitCode?: number; ack: Buffer; started: boolean }> {
    const received: Buffer[] = [];
    const path = join(dir, "c.sock");
    const listener = await listenConsole({ path, nonce, onOutput: (c) => received.push(c) });
    const socket: Socket = connect(path);
    const acks: Buffer[] = [];
    socket.on("data", (c: Buffer) => acks.push(c));
    await new Promise<void>((r) => socket.once("connect", () => r()));
    for (const chunk of chunks) {
      socket.write(chunk);
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 30));
    socket.end();
    const end = await listener.ended;
    const started = listener.started;
    await listener.close();
    return { output: Buffer.concat(received), ...end, ack: Buffer.concat(acks), started };
  }

  it("removes the start marker and the trailer, keeps the bytes between exact, answers the trailer", async () => {
    const r = await run([
      `MOTTAINAI-ST`,
      `ART:${nonce}\nhello\r\n\0\xff`,
      Buffer.from([0x4d, 0x4f]), // "MO", a possible trailer start that is output after all
      "RE\nMOTTAINAI-END:",
      `${nonce}:4`,
      "2\nignored after the trailer",
    ]);
    assert.equal(r.started, true);
    assert.deepEqual(r.output, Buffer.concat([Buffer.from(`hello\r\n\0\xff`), Buffer.from("MORE\n")]));
    assert.equal(r.exitCode, 42);
    assert.deepEqual(r.ack, TRAILER_ACK);
  });

  it("delivers a held-back tail when the stream ends without a trailer", async () => {
    const r = await run([`MOTTAINAI-START:${nonce}\n`, "out MOTTAINAI-EN"]);
    assert.equal(r.output.toString(), "out MOTTAINAI-EN");
    assert.equal(r.exitCode, undefined);
    assert.equal(r.ack.length, 0);
  });

  it("treats a trailer with another nonce as output", async () => {
    const r = await run([`MOTTAINAI-START:${nonce}\n`, "MOTTAINAI-END:feedfeed:0\n", `MOTTAINAI-END:${nonce}:0\n`]);
    assert.equal(r.output.toString(), "MOTTAINAI-END:feedfeed:0\n");
    assert.equal(r.exitCode, 0);
  });

  it("reports a stream that never started", async () => {
    const r = await run([]);
    assert.equal(r.started, false);
    assert.equal(r.output.length, 0);
  });
});
