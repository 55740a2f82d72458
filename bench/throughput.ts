import { performance } from "node:perf_hooks";
import { TaskStatus } from "@mottainai/proto";
import { createApi, createRegistrationSecret, createTasks } from "./api-clients.js";
import type { BenchOptions } from "./bench-options.js";
import { startMottainaiServer } from "./mottainai-server.js";
import { countSockets } from "./proc-stats.js";
import { benchRow, type BenchResult } from "./report.js";
import { connectSimAgent, registerSimNode, type SimAgent } from "./sim-agent.js";
import { deferred, sleep, withTimeout } from "./waiting.js";

/** Time the server gets to handle the agents' disconnections before the baseline starts. */
const DISCONNECT_SETTLE_MS = 1000;

/**
 * Throughput, created → done: options.throughputAgents simulated agents (each on its own
 * connection, throughputSlots slots, tasks that finish at once) while the bench creates
 * options.throughputTasks tasks with createInFlight CreateTask calls in flight; timed from the
 * first CreateTask to the last FinishAck (the server sends it after the task is stored as done).
 * Baseline: the rate of the same CreateTask calls into the same server once the agents left.
 * store.args go to the server (store-compare.ts runs it with --store mongodb://…).
 */
export async function runThroughput(
  options: BenchOptions,
  store: { args: string[]; name: string } = { args: [], name: "SQLite" },
): Promise<BenchResult> {
  const n = options.throughputTasks;
  const server = await startMottainaiServer({ nodeFlags: options.serverNodeFlags, args: store.args });
  const api = createApi(server.url, server.adminToken);
  const agents: SimAgent[] = [];
  try {
    const secret = await createRegistrationSecret(api, "bench throughput");
    let done = 0;
    const allDone = deferred<void>();
    const names = Array.from({ length: options.throughputAgents }, (_, i) => `bench-throughput-${i}`);
    const credentials = await Promise.all(names.map((name) => registerSimNode(api, secret, name)));
    for (const [i, name] of names.entries()) {
      agents.push(
        await connectSimAgent({
          baseUrl: server.url,
          credential: credentials[i] ?? "",
          hostname: name,
          slots: options.throughputSlots,
          behaviour: "finish",
          onFinishAck: () => {
            if (++done === n) allDone.resolve();
          },
        }),
      );
    }
    const sockets = countSockets(server.pid);
    if (sockets < agents.length + 1) throw new Error(`expected one connection per agent, the server holds ${sockets} sockets`);

    const t0 = performance.now();
    await createTasks(api, n, options.createInFlight, "throughput");
    await withTimeout(allDone.promise, Math.max(60_000, n * 20), `${n} tasks to finish (${done} did)`);
    const elapsed = (performance.now() - t0) / 1000;
    const { tasks: unfinished } = await api.tasks.listTasks({
      statuses: [TaskStatus.WAITING, TaskStatus.SETUP, TaskStatus.RUNNING],
      pageSize: 10,
    });
    if (unfinished.length > 0) throw new Error(`${unfinished.length}+ tasks are not done after all FinishAcks`);
    for (const agent of agents.splice(0)) agent.close();
    await sleep(DISCONNECT_SETTLE_MS);

    const b0 = performance.now();
    await createTasks(api, n, options.createInFlight, "baseline");
    const baseline = n / ((performance.now() - b0) / 1000);
    return {
      rows: [benchRow("throughput created→done", n / elapsed, "tasks/s", { op: ">=", target: 1000 }, baseline)],
      notes: [
        `throughput: ${n} fake tasks, ${options.throughputAgents} agents × ${options.throughputSlots} slots, ` +
          `${options.createInFlight} CreateTask calls in flight, ${store.name}; baseline = CreateTask rate into the same server with no agents.`,
      ],
    };
  } finally {
    for (const agent of agents) agent.close();
    api.close();
    await server.stop();
  }
}
