import { isAbsolute, resolve } from "node:path";
import { parseArgs } from "node:util";

/** Names accepted by --only, in the order the runner runs them. */
export const BENCHMARK_NAMES = [
  "dispatch",
  "throughput",
  "logs",
  "failover",
  "idle",
  "docker",
  "libvirt",
  "lxd",
  "namespaces",
  "transfer",
  "stores",
  "pipelines",
  "plans",
  "events",
  "subscribers",
] as const;

/** One of BENCHMARK_NAMES. */
export type BenchmarkName = (typeof BENCHMARK_NAMES)[number];

/** Everything the command line controls; defaults are the full run, --quick the small one. */
export interface BenchOptions {
  only: BenchmarkName[];
  /** Whether --only was given: then a benchmark that cannot run (no Docker engine) fails instead of being skipped. */
  onlyGiven: boolean;
  /** Where to write the JSON array of rows, if anywhere. */
  jsonFile: string | undefined;
  /** Extra node flags for every mottainai-server process, e.g. ["--cpu-prof", "--cpu-prof-dir=…"]. */
  serverNodeFlags: string[];
  /** Sequential tasks timed by the dispatch latency benchmark (plus a warm-up of a tenth). Default 500, quick 100. */
  dispatchTasks: number;
  /** Firings of an @every 1s plan timed by the plan benchmark. Default 60, quick 15. */
  planFirings: number;
  /** Tasks of the throughput benchmark. Default 5000, quick 1000. */
  throughputTasks: number;
  /** Simulated agents of the throughput benchmark. Default 50. */
  throughputAgents: number;
  /** Slots of each of those agents. Default 4. */
  throughputSlots: number;
  /** CreateTask calls in flight at once. Default 64. */
  createInFlight: number;
  /** Bytes streamed by the log benchmark. Default 512 MiB, quick 64 MiB. */
  logBytes: number;
  /** Rounds of the failover benchmark (the median is reported). Default 7, quick 3. */
  failoverRounds: number;
  /** Idle simulated agents. Default 10,000, quick 1,000. */
  idleAgents: number;
  /** Child processes that hold them. Default 4. */
  idleProcesses: number;
  /** Heartbeat interval given to the idle agents, in ms. Default 10 s (the server's default). */
  idleHeartbeatMs: number;
  /** Wall time over which the server's CPU is measured, in ms. Default 30 s, quick 10 s. */
  idleWindowMs: number;
  /** Sequential docker tasks (and `docker run` baselines) of the docker benchmark. Default 20, quick 5. */
  dockerTasks: number;
  /** Sequential libvirt tasks (and bare `virsh create` boots) of the libvirt benchmark. Default 10, quick 3. */
  libvirtTasks: number;
  /** Sequential lxd tasks (and `lxc launch`+`exec`+`delete` baselines) of the lxd benchmark. Default 10, quick 3. */
  lxdTasks: number;
  /** Size of the file the transfer benchmark uploads and downloads, in bytes. Default 1 GiB, quick 256 MiB. */
  transferBytes: number;
  /** Rounds (cp, upload, download) per backend of the transfer benchmark; medians are reported. Default 3, quick 1. */
  transferRounds: number;
}

const USAGE = `usage: npm run bench -- [options]
  --only NAME[,NAME]        run only these: ${BENCHMARK_NAMES.join(", ")}
  --json FILE               also write the rows as a JSON array to FILE
  --quick                   smaller counts (about 75 s instead of about 4 min)
  --server-node-flags="F …" extra node flags for the servers, e.g. --server-node-flags="--cpu-prof --cpu-prof-dir=/tmp/prof"
  --dispatch-tasks N        (500; quick 100)
  --plan-firings N          (60; quick 15; one per second)
  --throughput-tasks N      (5000; quick 1000)
  --throughput-agents N     (50)
  --throughput-slots N      (4)
  --create-in-flight N      (64)
  --log-mib N               (512; quick 64)
  --failover-rounds N       (7; quick 3)
  --idle-agents N           (10000; quick 1000)
  --idle-processes N        (4)
  --idle-heartbeat-ms N     (10000)
  --idle-window-ms N        (30000; quick 10000)
  --docker-tasks N          (20; quick 5; docker is skipped without a Docker engine unless named in --only)
  --libvirt-tasks N         (10; quick 3; libvirt is skipped without libvirtd unless named in --only)
  --lxd-tasks N             (10; quick 3; lxd is skipped without LXD unless named in --only)
  --transfer-size SIZE      file of the transfer benchmark: bytes or with K, M, G, KiB, MiB, GiB (1GiB; quick 256MiB)
  --transfer-rounds N       (3; quick 1; Ceph is skipped with a note when its gateway does not answer)`;

/** Thrown for a bad command line; the message ends with the usage. */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * Parses the runner's arguments. Relative --json paths are resolved against the directory npm was
 * started from (INIT_CWD), since npm runs scripts in the repository root.
 */
export function parseBenchOptions(argv: string[], env: Record<string, string | undefined>): BenchOptions | "help" {
  const intOptions = {
    "dispatch-tasks": "dispatchTasks",
    "plan-firings": "planFirings",
    "throughput-tasks": "throughputTasks",
    "throughput-agents": "throughputAgents",
    "throughput-slots": "throughputSlots",
    "create-in-flight": "createInFlight",
    "log-mib": "logBytes",
    "failover-rounds": "failoverRounds",
    "idle-agents": "idleAgents",
    "idle-processes": "idleProcesses",
    "idle-heartbeat-ms": "idleHeartbeatMs",
    "idle-window-ms": "idleWindowMs",
    "docker-tasks": "dockerTasks",
    "libvirt-tasks": "libvirtTasks",
    "lxd-tasks": "lxdTasks",
    "transfer-rounds": "transferRounds",
  } as const;
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        help: { type: "boolean", short: "h" },
        quick: { type: "boolean" },
        only: { type: "string" },
        json: { type: "string" },
        "server-node-flags": { type: "string" },
        "transfer-size": { type: "string" },
        ...Object.fromEntries(Object.keys(intOptions).map((k) => [k, { type: "string" as const }])),
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${USAGE}`);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  if (v.help) return "help";
  const quick = v.quick === true;
  const options: BenchOptions = {
    only: [...BENCHMARK_NAMES],
    onlyGiven: false,
    jsonFile: undefined,
    serverNodeFlags: [],
    dispatchTasks: quick ? 100 : 500,
    planFirings: quick ? 15 : 60,
    throughputTasks: quick ? 1000 : 5000,
    throughputAgents: 50,
    throughputSlots: 4,
    createInFlight: 64,
    logBytes: (quick ? 64 : 512) * 1024 * 1024,
    failoverRounds: quick ? 3 : 7,
    idleAgents: quick ? 1000 : 10_000,
    idleProcesses: 4,
    idleHeartbeatMs: 10_000,
    idleWindowMs: quick ? 10_000 : 30_000,
    dockerTasks: quick ? 5 : 20,
    libvirtTasks: quick ? 3 : 10,
    lxdTasks: quick ? 3 : 10,
    transferBytes: (quick ? 256 : 1024) * 1024 * 1024,
    transferRounds: quick ? 1 : 3,
  };
  for (const [flag, key] of Object.entries(intOptions)) {
    const raw = v[flag];
    if (typeof raw !== "string") continue;
    if (!/^[1-9]\d*$/.test(raw)) throw new UsageError(`--${flag}: expected a positive integer, got "${raw}"\n${USAGE}`);
    options[key] = key === "logBytes" ? Number(raw) * 1024 * 1024 : Number(raw);
  }
  if (typeof v["transfer-size"] === "string") options.transferBytes = parseSize(v["transfer-size"]);
  if (typeof v.only === "string") {
    const names = v.only
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    const unknown = names.filter((n) => !(BENCHMARK_NAMES as readonly string[]).includes(n));
    if (unknown.length > 0 || names.length === 0) {
      throw new UsageError(`--only: unknown benchmark "${unknown.join(",")}"; expected ${BENCHMARK_NAMES.join(", ")}\n${USAGE}`);
    }
    options.only = BENCHMARK_NAMES.filter((n) => names.includes(n));
    options.onlyGiven = true;
  }
  if (typeof v.json === "string") {
    options.jsonFile = isAbsolute(v.json) ? v.json : resolve(env.INIT_CWD ?? process.cwd(), v.json);
  }
  if (typeof v["server-node-flags"] === "string") options.serverNodeFlags = v["server-node-flags"].split(/\s+/).filter(Boolean);
  return options;
}

/** "1GiB", "256M", "4096": binary units (K = KiB = 1024 bytes), at least 1 byte. */
function parseSize(raw: string): number {
  const m = /^([1-9]\d*)\s*(?:([KMG])(?:i?B)?|B)?$/i.exec(raw.trim());
  if (!m) throw new UsageError(`--transfer-size: expected a size such as 1GiB, 256MiB or 4096, got "${raw}"\n${USAGE}`);
  const unit = { K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[(m[2] ?? "").toUpperCase() as "K" | "M" | "G"] ?? 1;
  return Number(m[1]) * unit;
}

/** The usage text. */
export function usage(): string {
  return USAGE;
}
