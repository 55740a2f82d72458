import { createApi, createRegistrationSecret } from "./api-clients.js";
import type { BenchOptions } from "./bench-options.js";
import { startFleet, type Fleet, type FleetConfig } from "./fleet.js";
import { startH2Sink } from "./h2-sink.js";
import { startMottainaiServer } from "./mottainai-server.js";
import { countSockets, hardFdLimit, measureCpuShare, readRssBytes, waitUntilQuiet } from "./proc-stats.js";
import { benchRow, type BenchResult } from "./report.js";
import { sleep } from "./waiting.js";

/** Open files a server needs besides one socket per connection (database, logs, listener, …). */
const FD_HEADROOM = 512;
/** Time given to a freshly started server before its "before" RSS is read. */
const START_SETTLE_MS = 2000;
/**
 * After the connections are up, the server is "quiet" once a one-second CPU sample falls below
 * this share of a core: the connection burst (and the dispatch passes the agents' credits
 * trigger) is worked off. Steady heartbeat load is well below it.
 */
const QUIET_SHARE = 0.5;
const QUIET_CAP_MS = 120_000;

/** What one side (mottainai or the bare HTTP/2 baseline) costs with n idle connections. */
interface SideCost {
  kibPerConnection: number;
  cpuPercent: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  sockets: number;
  connectMs: number;
  /** Time the process needed after the connections were up to become quiet. */
  quietMs: number;
}

/**
 * Idle agents: options.idleAgents simulated agents, each on its own HTTP/2 connection, held by
 * options.idleProcesses child processes, registered and connected to one server whose
 * heartbeat interval is options.idleHeartbeatMs. Once the server is quiet (QUIET_SHARE) and one
 * more heartbeat interval passed (nothing forced), its CPU share over options.idleWindowMs
 * (/proc utime+stime) and then its RSS are read: memory per agent = (RSS with agents − RSS
 * before registration) / N.
 * Baseline: the same number of bare HTTP/2 connections to a trivial node:http2 server, each with
 * one open stream carrying a heartbeat-sized DATA frame at the same interval.
 */
export async function runIdleAgents(options: BenchOptions): Promise<BenchResult> {
  const n = options.idleAgents;
  const processes = Math.min(options.idleProcesses, n);
  const limit = hardFdLimit();
  if (limit < n + FD_HEADROOM) {
    throw new Error(`the hard open-files limit (${limit}) is below ${n + FD_HEADROOM}: raise it or pass a smaller --idle-agents`);
  }
  const shares = Array.from({ length: processes }, (_, i) => Math.floor(n / processes) + (i < n % processes ? 1 : 0));
  const fleetTimeoutMs = 60_000 + n * 25;

  const server = await startMottainaiServer({
    args: ["--heartbeat-interval", `${options.idleHeartbeatMs}ms`, "--lease-ttl", `${3 * options.idleHeartbeatMs}ms`],
    nodeFlags: options.serverNodeFlags,
    raiseFdLimit: true,
  });
  let agents: SideCost;
  try {
    const api = createApi(server.url, server.adminToken);
    const secret = await createRegistrationSecret(api, "bench idle");
    api.close();
    agents = await measureSide(
      server.pid,
      options,
      (i) => ({
        mode: "agents",
        url: server.url,
        count: shares[i] ?? 0,
        registrationToken: secret,
        namePrefix: `bench-idle-${i}`,
        slots: 1,
        behaviour: "finish",
        concurrency: 50,
      }),
      shares.length,
      fleetTimeoutMs,
    );
  } finally {
    await server.stop();
  }

  const sink = await startH2Sink({ raiseFdLimit: true });
  let bare: SideCost;
  try {
    bare = await measureSide(
      sink.pid,
      options,
      (i) => ({
        mode: "raw-h2",
        url: sink.url,
        count: shares[i] ?? 0,
        heartbeatMs: options.idleHeartbeatMs,
        concurrency: 50,
      }),
      shares.length,
      fleetTimeoutMs,
    );
  } finally {
    await sink.stop();
  }

  const heartbeatsPerSecond = n / (options.idleHeartbeatMs / 1000);
  const describe = (s: SideCost) =>
    `RSS ${s.rssBeforeMiB.toFixed(0)} → ${s.rssAfterMiB.toFixed(0)} MiB, ${s.sockets} sockets, connected in ${(s.connectMs / 1000).toFixed(1)} s, ` +
    `quiet ${(s.quietMs / 1000).toFixed(0)} s later, ${((s.cpuPercent / 100 / heartbeatsPerSecond) * 1e6).toFixed(0)} µs CPU per heartbeat`;
  return {
    rows: [
      benchRow(
        `idle agents: server memory per agent (${n})`,
        agents.kibPerConnection,
        "KiB",
        { op: "<=", target: 100 },
        bare.kibPerConnection,
      ),
      benchRow(
        `idle agents: heartbeat CPU (${n}, ${options.idleHeartbeatMs / 1000} s)`,
        agents.cpuPercent,
        "% core",
        { op: "<=", target: 20 },
        bare.cpuPercent,
      ),
    ],
    notes: [
      `idle agents: ${n} agents in ${processes} processes, heartbeat every ${options.idleHeartbeatMs / 1000} s, ` +
        `CPU over ${options.idleWindowMs / 1000} s, one interval after the server became quiet (< ${QUIET_SHARE * 100} % of a core); ` +
        `mottainai-server: ${describe(agents)}; baseline node:http2 server: ${describe(bare)}.`,
    ],
  };
}

/**
 * Reads the RSS of pid, connects the fleets that config(i) describes, checks that pid holds a
 * socket per connection, lets it settle for one heartbeat interval, then measures CPU and RSS.
 */
async function measureSide(
  pid: number,
  options: BenchOptions,
  config: (i: number) => FleetConfig,
  fleetCount: number,
  fleetTimeoutMs: number,
): Promise<SideCost> {
  await sleep(START_SETTLE_MS);
  const rssBefore = readRssBytes(pid);
  const fleets: Fleet[] = [];
  try {
    const started = await Promise.all(
      Array.from({ length: fleetCount }, async (_, i) => {
        const fleet = await startFleet(`fleet-${config(i).mode}-${i}`, config(i), fleetTimeoutMs);
        fleets.push(fleet);
        return fleet;
      }),
    );
    const n = Array.from({ length: fleetCount }, (_, i) => config(i).count).reduce((a, b) => a + b, 0);
    const sockets = countSockets(pid);
    if (sockets < n)
      throw new Error(`expected one connection per client, process ${pid} holds ${sockets} sockets for ${n} clients`);
    const quietMs = await waitUntilQuiet(pid, QUIET_SHARE, QUIET_CAP_MS);
    await sleep(options.idleHeartbeatMs);
    const cpu = await measureCpuShare(pid, options.idleWindowMs);
    const rssAfter = readRssBytes(pid);
    return {
      kibPerConnection: (rssAfter - rssBefore) / 1024 / n,
      cpuPercent: cpu * 100,
      rssBeforeMiB: rssBefore / 1048576,
      rssAfterMiB: rssAfter / 1048576,
      sockets,
      connectMs: Math.max(...started.map((f) => f.connectMs)),
      quietMs,
    };
  } finally {
    await Promise.all(fleets.map((f) => f.stop()));
  }
}
