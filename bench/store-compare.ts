import { startJongodb } from "../server/src/mongo/jongodb-server.js";
import type { BenchOptions } from "./bench-options.js";
import { deferCleanup } from "./cleanup.js";
import { runDispatchLatency } from "./dispatch-latency.js";
import { benchRow, type BenchResult, type BenchRow, type Goal } from "./report.js";
import { runThroughput } from "./throughput.js";

/** The Goal a row was measured against ("<= 5" → {op: "<=", target: 5}). */
const goalOf = (row: BenchRow): Goal => {
  const [op, target] = row.goal.split(" ");
  return { op: op as Goal["op"], target: Number(target) };
};

/**
 * Dispatch latency and throughput on the two metadata stores in one run: first on SQLite (the
 * default), then on MongoDB served by jongodb, each with a fresh server process. The SQLite rows
 * keep their usual baselines; each MongoDB row's baseline is the SQLite figure just measured, so
 * its ratio is MongoDB / SQLite. jongodb is an in-memory test server, not a production MongoDB
 * (no journal, no replication, its own query engine), and the server's client is limited to one
 * connection (maxPoolSize=1) because jongodb applies concurrent updates on different connections
 * without document-level atomicity (docs/mongodb.md): the figures show what the store costs in
 * round trips, not what a real replica set does.
 */
export async function runStoreCompare(options: BenchOptions): Promise<BenchResult> {
  const jongodb = await startJongodb();
  const stop = deferCleanup(() => jongodb.stop());
  try {
    const mongo = (db: string) => ["--store", `${jongodb.url.replace(/\/$/, "")}/${db}?maxPoolSize=1`];
    const sqliteDispatch = await runDispatchLatency(options);
    const mongoDispatch = await runDispatchLatency(options, mongo("bench_dispatch"));
    // Fewer agents and tasks than the throughput benchmark: on jongodb a dispatch round costs
    // several sequential queries per agent, and 50 agents take minutes. Both stores run the same.
    const small = { ...options, throughputAgents: 10, throughputTasks: Math.min(options.throughputTasks, 500) };
    const sqliteThroughput = await runThroughput(small);
    const mongoThroughput = await runThroughput(small, { args: mongo("bench_throughput"), name: "MongoDB (jongodb)" });
    const rows: BenchRow[] = [];
    for (const [sqlite, mongoResult] of [
      [sqliteDispatch, mongoDispatch],
      [sqliteThroughput, mongoThroughput],
    ] as const) {
      for (const [i, row] of sqlite.rows.entries()) {
        const m = mongoResult.rows[i] as BenchRow;
        rows.push({ ...row, name: `${row.name} (SQLite)` });
        rows.push(benchRow(`${m.name} (MongoDB/jongodb)`, m.value, m.unit, goalOf(m), row.value));
      }
    }
    return {
      rows,
      notes: [
        ...sqliteDispatch.notes,
        ...sqliteThroughput.notes,
        "stores: the (MongoDB/jongodb) rows ran the same benchmarks on a server with --store mongodb://… on jongodb " +
          "(an in-memory MongoDB-wire test server, NOT a production MongoDB; one client connection, maxPoolSize=1); " +
          "their baseline is the SQLite figure of the same run, so ratio = MongoDB / SQLite.",
      ],
    };
  } finally {
    await stop();
  }
}
