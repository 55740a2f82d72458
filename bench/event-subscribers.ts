// 1,000 concurrent Subscribe streams on one real mottainai-server process: the server's memory
// per subscriber (baseline: the server's whole RSS before, per subscriber) and the time until
// one event reached all of them.
import { performance } from "node:perf_hooks";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { TokenService } from "@mottainai/proto";
import { bearer, createApi } from "./api-clients.js";
import type { BenchOptions } from "./bench-options.js";
import { startMottainaiServer } from "./mottainai-server.js";
import { readRssBytes } from "./proc-stats.js";
import { benchRow, type BenchResult } from "./report.js";

const SUBSCRIBERS = 1_000;

/** The concurrent subscribers benchmark. */
export async function runEventSubscribers(options: BenchOptions): Promise<BenchResult> {
  const server = await startMottainaiServer({ nodeFlags: options.serverNodeFlags });
  // 10 connections of 100 streams each.
  const apis = Array.from({ length: 10 }, () => createApi(server.url, server.adminToken));
  const abort = new AbortController();
  try {
    await new Promise((r) => setTimeout(r, 1000));
    const before = readRssBytes(server.pid);
    let reached = 0;
    let all!: () => void;
    const everyone = new Promise<void>((r) => (all = r));
    let opened = 0;
    let ready!: () => void;
    const allOpen = new Promise<void>((r) => (ready = r));
    const streams = Array.from({ length: SUBSCRIBERS }, async (_, i) => {
      const stream = apis[i % apis.length]!.events.subscribe({ fromSequence: 0n, types: ["token."] }, { signal: abort.signal });
      if (++opened === SUBSCRIBERS) ready();
      for await (const r of stream) {
        if (r.event?.attributes.name === "fanout" && ++reached === SUBSCRIBERS) all();
      }
    });
    await allOpen;
    // Let every stream reach the server and its replay finish.
    await new Promise((r) => setTimeout(r, 3000));
    const during = readRssBytes(server.pid);
    const t0 = performance.now();
    const tokens = createClient(
      TokenService,
      createConnectTransport({ baseUrl: server.url, httpVersion: "1.1", interceptors: [bearer(server.adminToken)] }),
    );
    await tokens.createToken({ name: "fanout" });
    await everyone;
    const fanoutMs = performance.now() - t0;
    const perSubscriberKiB = (during - before) / SUBSCRIBERS / 1024;
    abort.abort();
    await Promise.allSettled(streams);
    return {
      rows: [
        benchRow(
          "server memory per Subscribe stream (1,000)",
          perSubscriberKiB,
          "KiB",
          { op: "<=", target: 100 },
          before / 1024 / SUBSCRIBERS,
        ),
        benchRow("one event to 1,000 subscribers", fanoutMs, "ms", { op: "<=", target: 100 }, fanoutMs),
      ],
      notes: [
        `event subscribers: ${SUBSCRIBERS} Subscribe streams over 10 HTTP/2 connections to one server; memory is (VmRSS with the streams − VmRSS before) / N, baseline the whole server RSS before / N; the fan-out row has no baseline (ratio 1): time from CreateToken to its event at the last subscriber`,
      ],
    };
  } finally {
    abort.abort();
    for (const api of apis) api.close();
    await server.stop();
  }
}
