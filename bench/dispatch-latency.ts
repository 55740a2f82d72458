import { performance } from "node:perf_hooks";
import { createApi, createRegistrationSecret, fakeTaskSpec } from "./api-clients.js";
import type { BenchOptions } from "./bench-options.js";
import { startMottainaiServer } from "./mottainai-server.js";
import { benchRow, type BenchResult } from "./report.js";
import { connectSimAgent, registerSimNode } from "./sim-agent.js";
import { quantile } from "./stats.js";
import { deferred, withTimeout, type Deferred } from "./waiting.js";

/**
 * Dispatch latency: time from calling CreateTask to the assignment arriving at an idle simulated
 * agent, both on the bench's clock, over options.dispatchTasks sequential tasks (each created
 * after the previous one's FinishAck). The agent has two slots so that a free credit is always
 * on the server before the next task is created. Baseline: a unary GetCurrentUser round trip on
 * the same kind of connection (gRPC over one HTTP/2 connection), same server, same run.
 * serverArgs go to the server (store-compare.ts runs it with --store mongodb://…).
 */
export async function runDispatchLatency(options: BenchOptions, serverArgs: string[] = []): Promise<BenchResult> {
  const server = await startMottainaiServer({ nodeFlags: options.serverNodeFlags, args: serverArgs });
  const api = createApi(server.url, server.adminToken);
  try {
    const secret = await createRegistrationSecret(api, "bench dispatch");
    const credential = await registerSimNode(api, secret, "bench-dispatch");
    let assigned: Deferred<{ taskId: string; at: number }> = deferred();
    let finished: Deferred<void> = deferred();
    const agent = await connectSimAgent({
      baseUrl: server.url,
      credential,
      hostname: "bench-dispatch",
      slots: 2,
      behaviour: "finish",
      onAssignment: (a, at) => assigned.resolve({ taskId: a.ref?.taskId ?? "", at }),
      onFinishAck: () => finished.resolve(),
    });
    try {
      const warmup = Math.ceil(options.dispatchTasks / 10);
      const latencies: number[] = [];
      for (let i = 0; i < warmup + options.dispatchTasks; i++) {
        assigned = deferred();
        finished = deferred();
        const t0 = performance.now();
        const { task } = await api.tasks.createTask({ spec: fakeTaskSpec(`dispatch-${i}`) });
        const got = await withTimeout(assigned.promise, 10_000, `the assignment of task ${i}`);
        if (got.taskId !== task?.id) throw new Error(`expected task ${task?.id}, the agent got ${got.taskId}`);
        if (i >= warmup) latencies.push(got.at - t0);
        await withTimeout(finished.promise, 10_000, `the FinishAck of task ${i}`);
      }

      const rtts: number[] = [];
      for (let i = 0; i < warmup + options.dispatchTasks; i++) {
        const t0 = performance.now();
        await api.users.getCurrentUser({});
        if (i >= warmup) rtts.push(performance.now() - t0);
      }
      return {
        rows: [
          benchRow("dispatch latency p50", quantile(latencies, 0.5), "ms", { op: "<=", target: 5 }, quantile(rtts, 0.5)),
          benchRow("dispatch latency p99", quantile(latencies, 0.99), "ms", { op: "<=", target: 25 }, quantile(rtts, 0.99)),
        ],
        notes: [
          `dispatch latency: ${options.dispatchTasks} sequential tasks (after ${warmup} warm-up) to one idle agent; ` +
            `baseline = p50/p99 of a unary GetCurrentUser round trip over gRPC/HTTP/2 to the same server.`,
        ],
      };
    } finally {
      agent.close();
    }
  } finally {
    api.close();
    await server.stop();
  }
}
