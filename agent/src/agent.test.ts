import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  AgentService,
  CancelReason,
  ConnectResponseSchema,
  PROTOCOL_VERSION,
  TaskResult,
  TaskStatus,
  type AgentHello,
  type ConnectRequest,
  type LogChunk,
  type TaskFinished,
} from "@mottainai/proto";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Http2Server } from "node:http2";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { createAgent, type Agent, type AgentOptions } from "./agent.js";
import { createAsyncQueue } from "./async-queue.js";
import { AgentFatalError } from "./errors.js";
import { fakeOutput } from "./executor/fake-executor.js";
import { createServerTransport } from "./transport.js";

type ResponseInit = MessageInitShape<typeof ConnectResponseSchema>;
type Case = NonNullable<ConnectRequest["message"]["case"]>;
type ValueOf<C extends Case> = Extract<ConnectRequest["message"], { case: C }>["value"];

/** One agent stream as the scripted server sees it. */
class ServerStream {
  readonly out = createAsyncQueue<ResponseInit | Error>();
  private readonly inbox: ConnectRequest[] = [];
  private waiter: (() => void) | undefined;
  clientDone = false;

  constructor(readonly authorization: string | null) {}

  deliver(req: ConnectRequest | undefined): void {
    if (req) this.inbox.push(req);
    else this.clientDone = true;
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** The next message of kind `c`, skipping (and dropping) heartbeats and others listed in `skip`. */
  async expect<C extends Case>(c: C, skip: Case[] = ["heartbeat"]): Promise<ValueOf<C>> {
    for (;;) {
      const m = this.inbox.shift();
      if (m) {
        if (m.message.case === c) return m.message.value as ValueOf<C>;
        if (m.message.case && skip.includes(m.message.case)) continue;
        const brief = JSON.stringify(m.message.value, (k, v) =>
          typeof v === "bigint" ? String(v) : k === "data" ? `${Object.keys(v as object).length} bytes` : v,
        );
        throw new Error(`expected ${c}, got ${m.message.case}: ${brief}`);
      }
      if (this.clientDone) throw new Error(`expected ${c}, but the agent closed the stream`);
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
  }

  /** Waits until the agent half-closes its side. */
  async closed(): Promise<void> {
    while (!this.clientDone) {
      this.inbox.length = 0;
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
  }

  send(message: ResponseInit["message"]): void {
    this.out.push({ message });
  }

  welcome(init: Record<string, unknown> = {}): void {
    this.send({
      case: "welcome",
      value: {
        nodeId: "node-1",
        nodeName: "n1",
        protocolVersion: PROTOCOL_VERSION,
        heartbeatInterval: durationFromMs(60_000),
        logFlushInterval: durationFromMs(10),
        maxChunkBytes: 65_536,
        cancelGrace: durationFromMs(200),
        ...init,
      },
    });
  }

  fail(code: Code, message: string): void {
    this.out.push(new ConnectError(message, code));
  }

  end(): void {
    this.out.close();
  }

  /** Receives log chunks, acknowledging each, until TaskFinished; returns the log and the report. */
  async collect(taskId: string, from = 0n): Promise<{ log: Buffer; finished: TaskFinished; chunks: LogChunk[] }> {
    const parts: Buffer[] = [];
    const chunks: LogChunk[] = [];
    let committed = from;
    for (;;) {
      const m = await this.nextAbout(taskId);
      if (m.case === "log") {
        chunks.push(m.value);
        if (m.value.offset === committed) {
          parts.push(Buffer.from(m.value.data));
          committed += BigInt(m.value.data.length);
          this.send({ case: "logAck", value: { ref: m.value.ref, committedOffset: committed } });
        } else {
          this.send({ case: "logAck", value: { ref: m.value.ref, committedOffset: committed, resend: true } });
        }
      } else if (m.case === "finished") {
        assert.equal(m.value.logSize, committed, "finished comes after every log byte was sent");
        return { log: Buffer.concat(parts), finished: m.value, chunks };
      }
    }
  }

  private async nextAbout(taskId: string): Promise<{ case: "log"; value: LogChunk } | { case: "finished"; value: TaskFinished }> {
    for (;;) {
      for (let i = 0; i < this.inbox.length; i++) {
        const m = (this.inbox[i] as ConnectRequest).message;
        if ((m.case === "log" || m.case === "finished") && m.value.ref?.taskId === taskId) {
          this.inbox.splice(i, 1);
          return m;
        }
      }
      if (this.clientDone) throw new Error("the agent closed the stream");
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
  }
}

class ScriptedServer {
  private server: Http2Server | undefined;
  private readonly streams = createAsyncQueue<ServerStream>();
  private readonly iterator = this.streams[Symbol.asyncIterator]();
  url = "";

  async start(): Promise<void> {
    const streams = this.streams;
    const handler = connectNodeAdapter({
      routes: (router) =>
        router.service(AgentService, {
          async *connect(requests: AsyncIterable<ConnectRequest>, ctx: HandlerContext) {
            const stream = new ServerStream(ctx.requestHeader.get("authorization"));
            void (async () => {
              try {
                for await (const r of requests) stream.deliver(r);
              } catch {
                // The agent went away; the stream is over either way.
              }
              stream.deliver(undefined);
              stream.end();
            })();
            streams.push(stream);
            for await (const m of stream.out) {
              if (m instanceof Error) throw m;
              yield create(ConnectResponseSchema, m);
            }
          },
        }),
    });
    this.server = createServer(handler);
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The next stream an agent opens. */
  async accept(): Promise<ServerStream> {
    const r = await this.iterator.next();
    if (r.done) throw new Error("server closed");
    return r.value;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

describe("agent stream protocol (scripted in-process server)", function () {
  this.timeout(20_000);
  let server: ScriptedServer;
  let stateDir: string;
  const closers: (() => void)[] = [];
  const agents: Agent[] = [];

  beforeEach(async () => {
    server = new ScriptedServer();
    await server.start();
    stateDir = mkdtempSync(join(tmpdir(), "mottainai-agent-"));
  });
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((a) => a.stop()));
    for (const close of closers.splice(0)) close();
    await server.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  function start(options: Partial<AgentOptions> = {}): { agent: Agent; run: Promise<void> } {
    const t = createServerTransport({ server: server.url, credential: "secret-cred" });
    closers.push(t.close);
    const agent = createAgent({
      transport: t.transport,
      logger: pino({ level: "silent" }),
      stateDir,
      hostname: "test-host",
      agentVersion: "1.2.3",
      capacity: 2,
      labels: { arch: "amd64" },
      backoff: { initialMs: 5, maxMs: 20 },
      stopTimeoutMs: 300,
      path: process.env.PATH,
      ...options,
    });
    agents.push(agent);
    const run = agent.run();
    run.catch(() => undefined);
    return { agent, run };
  }

  async function connect(options: Partial<AgentOptions> = {}, welcome: Record<string, unknown> = {}) {
    const { agent, run } = start(options);
    const stream = await server.accept();
    const hello = await stream.expect("hello");
    stream.welcome(welcome);
    const credit = await stream.expect("credit");
    return { agent, run, stream, hello, credit };
  }

  const ref = (taskId: string, attempt = 1) => ({ taskId, attempt, leaseId: `lease-${taskId}-${attempt}` });
  const assign = (
    stream: ServerStream,
    taskId: string,
    spec: Record<string, unknown>,
    environment: Record<string, string> = {},
  ) => stream.send({ case: "assignment", value: { ref: ref(taskId), spec, environment } });

  it("says hello, grants its free capacity and authenticates with the bearer credential", async () => {
    const { stream, hello, credit } = await connect();
    assert.equal(stream.authorization, "Bearer secret-cred");
    assert.equal(hello.protocolVersion, PROTOCOL_VERSION);
    assert.equal(hello.agentVersion, "1.2.3");
    assert.equal(hello.hostname, "test-host");
    assert.deepEqual(hello.labels, { arch: "amd64" });
    assert.deepEqual(
      hello.queues.map((q) => [q.queue, q.slots]),
      [["general", 2]],
    );
    assert.deepEqual(hello.executors, ["host", "fake"]);
    assert.equal(hello.capacity, 2);
    assert.deepEqual(hello.running, []);
    assert.equal(credit.slots, 2);
  });

  it("runs a fake task: setup, running, every log byte in order in bounded chunks, success, then one more credit", async () => {
    const { stream } = await connect();
    assign(stream, "t1", { type: "fake", environment: ["FAKE_OUTPUT_BYTES=300000"] });
    assert.equal((await stream.expect("status")).status, TaskStatus.SETUP);
    assert.equal((await stream.expect("status")).status, TaskStatus.RUNNING);
    const { log, finished, chunks } = await stream.collect("t1");
    assert.deepEqual(log, fakeOutput(300_000));
    assert.ok(chunks.every((c) => c.data.length <= 65_536));
    assert.equal(finished.result, TaskResult.SUCCESS);
    assert.equal(finished.exitCode, 0);
    assert.equal(finished.logSize, 300_000n);
    assert.deepEqual({ ...finished.ref }, { ...finished.ref, ...ref("t1") });
    stream.send({ case: "finishAck", value: { ref: ref("t1") } });
    assert.equal((await stream.expect("credit", ["heartbeat", "log"])).slots, 1);
  });

  it("runs a host task with its exact output and reports a failing exit code", async () => {
    const { stream } = await connect();
    assign(
      stream,
      "h1",
      { type: "host", script: ['echo a; echo b >&2; printf "$MOTTAINAI_TASK_ID=$X"', "exit 4"], environment: ["X=1=2"] },
      { MOTTAINAI_TASK_ID: "h1" },
    );
    const { log, finished } = await stream.collect("h1");
    assert.equal(log.toString(), "a\nb\nh1=1=2");
    assert.equal(finished.result, TaskResult.FAILED);
    assert.equal(finished.exitCode, 4);
  });

  it("reports an unknown task type as ERROR naming the type", async () => {
    const { stream } = await connect();
    assign(stream, "d1", { type: "docker_execute" });
    const { finished } = await stream.collect("d1");
    assert.equal(finished.result, TaskResult.ERROR);
    assert.equal(finished.exitCode, undefined);
    assert.match(finished.error, /unsupported task type "docker_execute"/);
    assert.equal((await stream.expect("credit")).slots, 1);
  });

  it("stops an attempt on cancel and reports why; drops it silently when the lease is lost", async () => {
    const { stream } = await connect();
    assign(stream, "c1", { type: "fake", environment: ["FAKE_SLEEP_MS=60000"] });
    await stream.expect("status");
    await stream.expect("status");
    stream.send({ case: "cancel", value: { ref: ref("c1"), reason: CancelReason.STOP_REQUESTED } });
    const { finished } = await stream.collect("c1");
    assert.equal(finished.result, TaskResult.ERROR);
    assert.equal(finished.error, "stopped: stop requested");
    assert.equal((await stream.expect("credit")).slots, 1);

    assign(stream, "c2", { type: "fake", environment: ["FAKE_SLEEP_MS=60000"] });
    await stream.expect("status");
    await stream.expect("status");
    stream.send({ case: "cancel", value: { ref: ref("c2"), reason: CancelReason.LEASE_LOST } });
    assert.equal((await stream.expect("credit")).slots, 1, "the slot comes back with no report");
  });

  it("times a task out by itself", async () => {
    const { stream } = await connect();
    assign(stream, "to", { type: "fake", timeout: 0.2, environment: ["FAKE_SLEEP_MS=60000"] });
    const { finished } = await stream.collect("to");
    assert.equal(finished.result, TaskResult.ERROR);
    assert.equal(finished.error, "timed out after 0.2s");
  });

  it("never runs more than its capacity", async () => {
    const { stream } = await connect({ capacity: 1 });
    assign(stream, "a", { type: "fake", environment: ["FAKE_SLEEP_MS=60000"] });
    assign(stream, "b", { type: "fake" });
    const { finished } = await stream.collect("b");
    assert.equal(finished.result, TaskResult.ERROR);
    assert.match(finished.error, /no free slot/);
  });

  it("fails run() with the server's message on a protocol mismatch", async () => {
    const { run } = start();
    const stream = await server.accept();
    await stream.expect("hello");
    stream.fail(Code.FailedPrecondition, "protocol version mismatch: server speaks 9, agent 1");
    await assert.rejects(run, (err: Error) => {
      assert.ok(err instanceof AgentFatalError);
      assert.equal(err.message, "protocol version mismatch: server speaks 9, agent 1");
      assert.equal(err.code, Code.FailedPrecondition);
      return true;
    });
  });

  it("fails run() when the credential is refused", async () => {
    const { run } = start();
    const stream = await server.accept();
    stream.fail(Code.Unauthenticated, "unknown node credential");
    await assert.rejects(run, /unknown node credential/);
  });

  it("reconnects, reports what it still runs, resends from the committed offset and then reports the end", async () => {
    const { stream } = await connect();
    assign(stream, "r1", { type: "fake", environment: ["FAKE_OUTPUT_BYTES=100000", "FAKE_SLEEP_MS=400"] });
    await stream.expect("status");
    await stream.expect("status");
    const first = await stream.expect("log");
    assert.equal(first.offset, 0n);
    stream.send({ case: "logAck", value: { ref: ref("r1"), committedOffset: 1000n } });
    stream.fail(Code.Unavailable, "server going away");

    const again = await server.accept();
    const hello = await again.expect("hello");
    assert.equal(hello.running.length, 1);
    const running = hello.running[0] as AgentHello["running"][number];
    assert.equal(running.ref?.taskId, "r1");
    assert.equal(running.logSize, 100_000n);
    again.welcome({ keep: [ref("r1")] });
    assert.equal((await again.expect("credit")).slots, 1);
    const resent = await again.expect("log");
    assert.equal(resent.offset, 1000n, "resends from the last acknowledged offset");
    again.send({ case: "logAck", value: { ref: ref("r1"), committedOffset: 65_536n, resend: true } });
    const parts: Buffer[] = [];
    let committed = 65_536n;
    for (;;) {
      const chunk = await again.expect("log", ["heartbeat", "credit"]);
      if (chunk.offset !== committed) continue;
      parts.push(Buffer.from(chunk.data));
      committed += BigInt(chunk.data.length);
      again.send({ case: "logAck", value: { ref: ref("r1"), committedOffset: committed } });
      if (committed === 100_000n) break;
    }
    assert.deepEqual(Buffer.concat(parts), fakeOutput(100_000).subarray(65_536));
    const finished = await again.expect("finished", ["heartbeat", "log", "credit"]);
    assert.equal(finished.result, TaskResult.SUCCESS);
    assert.equal(finished.logSize, 100_000n);
  });

  it("with several servers, moves to the next one when its stream is lost and re-claims its attempt there", async () => {
    const second = new ScriptedServer();
    await second.start();
    try {
      const { stream } = await connect({ transport: undefined, servers: [server.url, second.url], credential: "secret-cred" });
      assign(stream, "f1", { type: "fake", environment: ["FAKE_OUTPUT_BYTES=5000", "FAKE_SLEEP_MS=300"] });
      await stream.expect("status");
      const first = await stream.expect("log", ["status"]);
      stream.send({ case: "logAck", value: { ref: ref("f1"), committedOffset: BigInt(first.data.length) } });
      stream.fail(Code.Unavailable, "server killed");

      const moved = await second.accept();
      assert.equal(moved.authorization, "Bearer secret-cred");
      const hello = await moved.expect("hello");
      assert.deepEqual(
        hello.running.map((r) => r.ref?.taskId),
        ["f1"],
      );
      moved.welcome({ keep: [ref("f1")] });
      const { log, finished } = await moved.collect("f1", BigInt(first.data.length));
      assert.equal(finished.result, TaskResult.SUCCESS);
      assert.deepEqual(Buffer.concat([Buffer.from(first.data), log]), fakeOutput(5000));
    } finally {
      await Promise.all(agents.splice(0).map((a) => a.stop()));
      await second.close();
    }
  });

  it("drops the attempts the welcome cancels and resends an unacknowledged report after a reconnect", async () => {
    const { stream } = await connect();
    assign(stream, "k1", { type: "fake", environment: ["FAKE_OUTPUT_BYTES=10"] });
    assign(stream, "x1", { type: "fake", environment: ["FAKE_SLEEP_MS=60000"] });
    const { finished } = await stream.collect("k1");
    assert.equal(finished.result, TaskResult.SUCCESS);
    stream.end();

    const again = await server.accept();
    const hello = await again.expect("hello");
    const byTask = new Map(hello.running.map((r) => [r.ref?.taskId, r]));
    assert.equal(byTask.get("k1")?.finished, true);
    assert.equal(byTask.get("x1")?.finished, false);
    again.welcome({ keep: [ref("k1")], cancel: [ref("x1")] });
    assert.equal((await again.expect("credit")).slots, 1, "the cancelled attempt still holds its slot until it ended");
    const report = await again.collect("k1", 10n);
    assert.equal(report.finished.result, TaskResult.SUCCESS);
    assert.equal(report.log.length, 0, "the log was acknowledged on the first stream");
    again.send({ case: "finishAck", value: { ref: ref("k1") } });
    assert.equal(
      (await again.expect("credit", ["heartbeat", "log", "finished"])).slots,
      1,
      "x1 ended: its slot comes back, unreported",
    );
  });

  it("stops gracefully: cancels running work, reports it and closes the stream", async () => {
    const { agent, run, stream } = await connect();
    assign(stream, "s1", { type: "fake", environment: ["FAKE_SLEEP_MS=60000"] });
    await stream.expect("status");
    await stream.expect("status");
    const stopped = agent.stop();
    const { finished } = await stream.collect("s1");
    assert.equal(finished.result, TaskResult.ERROR);
    assert.equal(finished.error, "stopped: agent shutting down");
    stream.send({ case: "finishAck", value: { ref: ref("s1") } });
    await stream.closed();
    stream.end();
    await stopped;
    await run;
  });

  it("sends heartbeats at the interval the server asks for", async () => {
    const { stream } = await connect({}, { heartbeatInterval: durationFromMs(20) });
    const a = await stream.expect("heartbeat", []);
    const b = await stream.expect("heartbeat", []);
    assert.equal(b.sequence, a.sequence + 1n);
  });
});
