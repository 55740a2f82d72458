import http2 from "node:http2";
import { once } from "node:events";
import { performance } from "node:perf_hooks";
import { TaskResult, TaskStatus, type LogAck, type TaskAssignment } from "@mottainai/proto";
import { createApi, createRegistrationSecret, fakeTaskSpec, type Api } from "./api-clients.js";
import type { BenchOptions } from "./bench-options.js";
import { startH2Sink } from "./h2-sink.js";
import { startMottainaiServer } from "./mottainai-server.js";
import { benchRow, type BenchResult } from "./report.js";
import { connectSimAgent, registerSimNode } from "./sim-agent.js";
import { deferred, withTimeout, type Deferred } from "./waiting.js";

/** Unacknowledged log bytes the simulated agent keeps on the wire, like the real agent. */
const MAX_UNACKED = 4 * 1024 * 1024;
/** Period of the log's byte pattern: a prime, so that bytes at different offsets differ. */
const PERIOD = 1_048_573;
/** Offsets of the spot checks, as fractions of the log. */
const SPOT_CHECKS = [0, 0.37, 0.5, 0.999];

/** Deterministic pseudo-random bytes such that the log's byte at offset o is pattern[o % PERIOD]. */
function makePattern(maxChunk: number): Buffer {
  const pattern = Buffer.allocUnsafe(PERIOD + maxChunk);
  let x = 0x9e3779b9;
  for (let i = 0; i < PERIOD; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    pattern[i] = x & 0xff;
  }
  pattern.copy(pattern, PERIOD, 0, maxChunk);
  return pattern;
}

const slice = (pattern: Buffer, offset: number, length: number) => pattern.subarray(offset % PERIOD, (offset % PERIOD) + length);

/**
 * Log throughput into storage through one agent stream: one simulated agent streams
 * options.logBytes for one fake task as LogChunks of the welcome's maxChunkBytes, keeping at most
 * 4 MiB unacknowledged (advancing on LogAck.committedOffset, rewinding on a resend), then reports
 * the end; timed from the first chunk to the FinishAck. Then checks the stored size (GetTask) and
 * bytes at a few offsets (FollowTaskLog). Baseline: the same bytes in the same chunks over one raw
 * HTTP/2 stream from the bench to a trivial node:http2 sink in another process.
 */
export async function runLogThroughput(options: BenchOptions): Promise<BenchResult> {
  const total = options.logBytes;
  const server = await startMottainaiServer({ nodeFlags: options.serverNodeFlags });
  const api = createApi(server.url, server.adminToken);
  let chunkBytes: number;
  let pattern: Buffer;
  let rate: number;
  let resends = 0;
  try {
    const secret = await createRegistrationSecret(api, "bench logs");
    const credential = await registerSimNode(api, secret, "bench-logs");
    const assigned = deferred<TaskAssignment>();
    const finishAck = deferred<void>();
    let ackArrived: Deferred<LogAck> = deferred();
    const agent = await connectSimAgent({
      baseUrl: server.url,
      credential,
      hostname: "bench-logs",
      slots: 1,
      behaviour: "manual",
      onAssignment: (a) => assigned.resolve(a),
      onLogAck: (ack) => ackArrived.resolve(ack),
      onFinishAck: () => finishAck.resolve(),
    });
    try {
      chunkBytes = agent.welcome.maxChunkBytes || 256 * 1024;
      pattern = makePattern(chunkBytes);
      const { task } = await api.tasks.createTask({ spec: fakeTaskSpec("logs") });
      const { ref } = await withTimeout(assigned.promise, 10_000, "the log task's assignment");
      if (!ref || ref.taskId !== task?.id) throw new Error("the agent got another task than the log task");
      agent.send({ case: "status", value: { ref, status: TaskStatus.RUNNING } });

      const t0 = performance.now();
      let sent = 0;
      let acked = 0;
      let rewoundTo = -1;
      while (acked < total) {
        while (sent < total && sent - acked < MAX_UNACKED) {
          const length = Math.min(chunkBytes, total - sent);
          agent.send({ case: "log", value: { ref, offset: BigInt(sent), data: slice(pattern, sent, length) } });
          sent += length;
        }
        const ack = await withTimeout(ackArrived.promise, 30_000, `a LogAck (${acked} of ${total} bytes acknowledged)`);
        ackArrived = deferred();
        const committed = Number(ack.committedOffset);
        acked = Math.max(acked, committed);
        if (ack.resend && committed !== rewoundTo) {
          resends++;
          rewoundTo = committed;
          sent = committed;
        }
      }
      agent.send({ case: "finished", value: { ref, result: TaskResult.SUCCESS, exitCode: 0, logSize: BigInt(total) } });
      await withTimeout(finishAck.promise, 30_000, "the log task's FinishAck");
      rate = total / 1e6 / ((performance.now() - t0) / 1000);
      await verifyStoredLog(api, ref.taskId, total, pattern);
    } finally {
      agent.close();
    }
  } finally {
    api.close();
    await server.stop();
  }

  const baseline = await rawHttp2Rate(total, chunkBytes, pattern);
  return {
    rows: [benchRow("log throughput into storage", rate, "MB/s", { op: ">=", target: 100 }, baseline)],
    notes: [
      `log throughput: ${(total / 1048576).toFixed(0)} MiB in ${chunkBytes / 1024} KiB chunks, ≤ 4 MiB unacked` +
        `${resends > 0 ? `, ${resends} resend(s)` : ""}, stored size and spot checks verified; MB = 10^6 bytes. ` +
        "Baseline = the same bytes over one raw HTTP/2 stream to a trivial node:http2 sink in a separate process " +
        "(not the mottainai server; it stores nothing).",
    ],
  };
}

/** Checks the stored log size and compares stored bytes with the pattern at SPOT_CHECKS. */
async function verifyStoredLog(api: Api, taskId: string, total: number, pattern: Buffer): Promise<void> {
  const { task } = await api.tasks.getTask({ id: taskId });
  if (Number(task?.logSize) !== total) throw new Error(`stored log size ${task?.logSize} != ${total} bytes sent`);
  for (const fraction of SPOT_CHECKS) {
    const offset = Math.floor(total * fraction);
    for await (const res of api.tasks.followTaskLog({ id: taskId, offset: BigInt(offset), follow: false })) {
      const length = Math.min(res.data.length, 64 * 1024);
      if (
        Number(res.offset) !== offset ||
        length === 0 ||
        !Buffer.from(res.data.subarray(0, length)).equals(slice(pattern, offset, length))
      ) {
        throw new Error(`stored log differs from what was sent at offset ${offset}`);
      }
      break;
    }
  }
}

/** MB/s of total bytes written in chunkBytes writes over one HTTP/2 stream to the h2 sink. */
async function rawHttp2Rate(total: number, chunkBytes: number, pattern: Buffer): Promise<number> {
  const sink = await startH2Sink();
  const session = http2.connect(sink.url);
  try {
    await once(session, "connect");
    const stream = session.request({ ":method": "POST", ":path": "/sink", "content-type": "application/octet-stream" });
    const body: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => body.push(chunk));
    const ended = once(stream, "end");
    const t0 = performance.now();
    for (let sent = 0; sent < total; sent += chunkBytes) {
      if (!stream.write(slice(pattern, sent, Math.min(chunkBytes, total - sent)))) await once(stream, "drain");
    }
    stream.end();
    await withTimeout(ended, 60_000, "the h2 sink's answer");
    const elapsed = (performance.now() - t0) / 1000;
    const received = (JSON.parse(Buffer.concat(body).toString()) as { bytes: number }).bytes;
    if (received !== total) throw new Error(`the h2 sink received ${received} of ${total} bytes`);
    return total / 1e6 / elapsed;
  } finally {
    session.destroy();
    await sink.stop();
  }
}
