// `npm run bench`: starts real mottainai-server processes on 127.0.0.1, measures the figures of
// docs/benchmarks.md beside baselines taken in the same run, prints a table and, with --json FILE,
// writes the rows as JSON. Every process it starts is stopped at the end, also on error or Ctrl-C.
import { writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { parseBenchOptions, usage, UsageError, type BenchmarkName, type BenchOptions } from "./bench-options.js";
import { cleanupAll } from "./cleanup.js";
import { runArtefactTransfer } from "./artefact-transfer.js";
import { runDispatchLatency } from "./dispatch-latency.js";
import { runDockerTask } from "./docker-task.js";
import { runEventStream } from "./event-stream.js";
import { runEventSubscribers } from "./event-subscribers.js";
import { runFailover } from "./failover.js";
import { runIdleAgents } from "./idle-agents.js";
import { runLibvirtTask } from "./libvirt-task.js";
import { runLxdTask } from "./lxd-task.js";
import { runLogThroughput } from "./log-throughput.js";
import { runNamespacePublish } from "./namespace-publish.js";
import { runPipelineOverhead } from "./pipeline-overhead.js";
import { runPlanFiring } from "./plan-firing.js";
import { formatTable, type BenchResult, type BenchRow } from "./report.js";
import { runStoreCompare } from "./store-compare.js";
import { runThroughput } from "./throughput.js";

const BENCHMARKS: Record<BenchmarkName, (options: BenchOptions) => Promise<BenchResult>> = {
  dispatch: runDispatchLatency,
  throughput: runThroughput,
  logs: runLogThroughput,
  failover: runFailover,
  idle: runIdleAgents,
  docker: runDockerTask,
  libvirt: runLibvirtTask,
  lxd: runLxdTask,
  namespaces: runNamespacePublish,
  transfer: runArtefactTransfer,
  stores: runStoreCompare,
  pipelines: runPipelineOverhead,
  plans: runPlanFiring,
  events: runEventStream,
  subscribers: runEventSubscribers,
};

async function main(): Promise<number> {
  let options;
  try {
    options = parseBenchOptions(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  }
  if (options === "help") {
    console.log(usage());
    return 0;
  }

  const rows: BenchRow[] = [];
  const notes: string[] = [];
  let failed = 0;
  for (const name of options.only) {
    const t0 = performance.now();
    console.error(`[bench] ${name}: running`);
    try {
      const result = await BENCHMARKS[name](options);
      rows.push(...result.rows);
      notes.push(...result.notes);
      console.error(`[bench] ${name}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } catch (err) {
      failed++;
      console.error(`[bench] ${name}: FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    } finally {
      await cleanupAll();
    }
  }

  if (rows.length > 0) console.log(formatTable(rows));
  if (notes.length > 0) console.log(`\n${notes.map((n) => `- ${n}`).join("\n")}`);
  if (options.jsonFile) {
    writeFileSync(options.jsonFile, `${JSON.stringify(rows, null, 2)}\n`);
    console.error(`[bench] wrote ${options.jsonFile}`);
  }
  if (failed > 0) console.error(`[bench] ${failed} benchmark(s) failed`);
  return failed > 0 ? 1 : 0;
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    console.error(`[bench] ${signal}: stopping every process`);
    void cleanupAll().then(() => process.exit(130));
  });
}

main().then(
  async (code) => {
    await cleanupAll();
    process.exit(code);
  },
  async (err: unknown) => {
    console.error(err);
    await cleanupAll();
    process.exit(1);
  },
);
