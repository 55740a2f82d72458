// Events delivered to one Subscribe stream: events/s and append → receive latency (p99), against
// the same reader paging ListEvents (1000 a page, back to back) as the baseline. In process: a
// file-backed SQLite store as the server opens it, the real EventService behind the
// authenticator on an HTTP/2 port, and a gRPC client (connect-node) as a bridge uses.
import { mkdtempSync, rmSync } from "node:fs";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createClient } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { EventService } from "@mottainai/proto";
import { createAuthenticator } from "../server/src/auth/authenticator.js";
import { hashSecret } from "../server/src/auth/secrets.js";
import { EventBus } from "../server/src/events/event-bus.js";
import { createEventService } from "../server/src/services/event-service.js";
import { openSqliteStore } from "../server/src/sqlite/sqlite-store.js";
import type { BenchOptions } from "./bench-options.js";
import { benchRow, type BenchResult } from "./report.js";

const TOKEN = "mtk_bench-events";

const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.99)]!;

/** The event stream benchmark. */
export async function runEventStream(_options: BenchOptions): Promise<BenchResult> {
  const count = 20_000;
  const latencyEvents = 2_000;
  const dir = mkdtempSync(join(tmpdir(), "mottainai-bench-events-"));
  const store = openSqliteStore(join(dir, "bench.db"));
  const bus = new EventBus(store.events);
  await store.users.create({ id: "admin", name: "admin", email: "", role: "admin", passwordHash: "", createTime: 0 });
  await store.users.createToken({
    id: "t",
    name: "t",
    userId: "admin",
    hash: hashSecret(TOKEN),
    createTime: 0,
    lastUseTime: 0,
    expireTime: 0,
  });
  const handler = connectNodeAdapter({
    interceptors: [createAuthenticator(store)],
    routes: (router) => router.service(EventService, createEventService(store, bus)),
  });
  const server = http2.createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const client = createClient(
    EventService,
    createGrpcTransport({
      baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${TOKEN}`), next(req))],
    }),
  );
  const attributes = { namespace: "bench", tag: "latest", revision: "1", previous: "0" };
  const publishBatch = async (n: number) => {
    for (let i = 0; i < n; i += 500) {
      await Promise.all(
        Array.from({ length: Math.min(500, n - i) }, () => bus.publish("namespace.tag_moved", "bench", undefined, attributes)),
      );
    }
  };

  try {
    // Throughput: a live subscriber receives `count` events published as fast as the store takes them.
    const abort = new AbortController();
    let received = 0;
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    const reading = (async () => {
      for await (const _ of client.subscribe({ fromSequence: 0n }, { signal: abort.signal })) {
        if (++received === count) done();
      }
    })().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    await publishBatch(count);
    await all;
    const streamRate = count / ((performance.now() - t0) / 1000);

    // Latency: one event at a time, appended → received by the live stream.
    const sent = new Map<bigint, number>();
    const latencies: number[] = [];
    abort.abort();
    await reading;
    const live = new AbortController();
    let next!: () => void;
    const from = BigInt(await store.events.lastSequence());
    const latencyReader = (async () => {
      for await (const r of client.subscribe({ fromSequence: from }, { signal: live.signal })) {
        const t = sent.get(r.event!.sequence);
        if (t !== undefined) latencies.push(performance.now() - t);
        next?.();
      }
    })().catch(() => undefined);
    for (let i = 0; i < latencyEvents; i++) {
      const got = new Promise<void>((r) => (next = r));
      const t = performance.now();
      const e = await bus.publish("namespace.tag_moved", "bench", undefined, attributes);
      sent.set(BigInt(e.sequence), t);
      await got;
    }
    live.abort();
    await latencyReader;

    // Replay: the same stored events read through Subscribe from sequence 0.
    const r0 = performance.now();
    const replay = new AbortController();
    let replayed = 0;
    for await (const _ of client.subscribe({ fromSequence: 0n }, { signal: replay.signal })) {
      if (++replayed === count) break;
    }
    replay.abort();
    const replayRate = count / ((performance.now() - r0) / 1000);

    // Baseline: the same reader paging ListEvents from the start, and polling it back to back for new events.
    const p0 = performance.now();
    let after = 0n;
    let paged = 0;
    while (paged < count) {
      const page = await client.listEvents({ fromSequence: after, pageSize: 1000 });
      if (page.events.length === 0) break;
      paged += page.events.length;
      after = page.events[page.events.length - 1]!.sequence;
    }
    const pageRate = paged / ((performance.now() - p0) / 1000);
    const pollLatencies: number[] = [];
    after = BigInt(await store.events.lastSequence());
    for (let i = 0; i < latencyEvents / 4; i++) {
      const t = performance.now();
      await bus.publish("namespace.tag_moved", "bench", undefined, attributes);
      for (;;) {
        const page = await client.listEvents({ fromSequence: after, pageSize: 1000 });
        if (page.events.length > 0) {
          after = page.events[page.events.length - 1]!.sequence;
          break;
        }
      }
      pollLatencies.push(performance.now() - t);
    }

    return {
      rows: [
        benchRow("events/s to one Subscribe stream", streamRate, "events/s", { op: ">=", target: 20_000 }, pageRate),
        benchRow("events/s replayed by Subscribe", replayRate, "events/s", { op: ">=", target: 20_000 }, pageRate),
        benchRow("event appended → received p99", p99(latencies), "ms", { op: "<=", target: 20 }, p99(pollLatencies)),
      ],
      notes: [
        `event stream: ${count} events published as fast as SQLite takes them to one live gRPC subscriber (so bounded by the appends), and the same events replayed from sequence 0; latency over ${latencyEvents} events one at a time; baselines are the same client paging ListEvents (1000 a page: ${Math.round(pageRate)} events/s) and polling it back to back for each new event (p99 ${p99(pollLatencies).toFixed(2)} ms)`,
      ],
    };
  } finally {
    server.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
