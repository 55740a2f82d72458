import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { TaskCount } from "../store/task-store.js";

/** What the gauges read at every scrape. */
export interface MetricsSources {
  /** Unfinished tasks per status and queue, from the (possibly shared) store. */
  countUnfinished(): Promise<TaskCount[]>;
  /** Agents whose stream is open on this server. */
  connectedAgents(): number;
}

/** The scheduler's events worth a metric; every method is cheap and never throws. */
export interface SchedulerMetrics {
  /** A waiting task was assigned waitMs after it became dispatchable. */
  dispatched(waitMs: number): void;
  /** An attempt ended with result after durationMs. */
  attemptEnded(result: string, durationMs: number): void;
  /** A task reached done or stopped with result. */
  taskFinished(result: string): void;
  /** An attempt's lease expired (its agent stopped renewing it). */
  leaseExpired(): void;
  /** Bytes appended to task logs. */
  logAppended(bytes: number): void;
}

/** Byte counters of one blob store view (see meteredBlobStore). */
export interface ByteMetrics {
  put(bytes: number): void;
  get(bytes: number): void;
}

/** One finished RPC, as the interceptor reports it. */
export interface RpcMetrics {
  rpc(service: string, method: string, code: string, seconds: number): void;
}

/** Open EventService.Subscribe streams. */
export interface SubscriberMetrics {
  subscribed(): void;
  unsubscribed(): void;
}

/** Every metric of one server process, registered in its own registry. */
export interface ServerMetrics {
  /** The registry GET /metrics renders (default process metrics included). */
  readonly registry: Registry;
  readonly scheduler: SchedulerMetrics;
  /** Every blob put into or read from the blob store. */
  readonly blobs: ByteMetrics;
  /** Bytes clients uploaded (put) and downloaded (get) through the RPCs and file routes. */
  readonly transfers: ByteMetrics;
  readonly rpcs: RpcMetrics;
  readonly subscribers: SubscriberMetrics;
}

const UNFINISHED_RUNNING = new Set(["setup", "running", "stop"]);

/**
 * Creates the metrics of one server in a fresh registry (never prom-client's global one, so
 * several servers in one process, as in tests, keep apart). Counters count what happened on this
 * server since it started; the task gauges are read from the store at scrape time and so are
 * cluster-wide when servers share a MongoDB store. Metric names start with `mottainai_`.
 */
export function createServerMetrics(sources: MetricsSources): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  let counts: Promise<TaskCount[]> | undefined;
  // Both task gauges are collected in one scrape: one store read serves them.
  const unfinished = () => {
    counts ??= sources.countUnfinished().finally(() => setImmediate(() => (counts = undefined)));
    return counts;
  };
  new Gauge({
    name: "mottainai_tasks_waiting",
    help: "Tasks waiting for an agent, per queue; cluster-wide, from the store",
    labelNames: ["queue"],
    registers,
    async collect() {
      this.reset();
      for (const c of await unfinished()) if (c.status === "waiting") this.inc({ queue: c.queue }, c.count);
    },
  });
  new Gauge({
    name: "mottainai_tasks_running",
    help: "Tasks with an attempt in setup, running or stopping, per queue; cluster-wide, from the store",
    labelNames: ["queue"],
    registers,
    async collect() {
      this.reset();
      for (const c of await unfinished()) if (UNFINISHED_RUNNING.has(c.status)) this.inc({ queue: c.queue }, c.count);
    },
  });
  new Gauge({
    name: "mottainai_agents_connected",
    help: "Agents whose stream is open on this server",
    registers,
    collect() {
      this.set(sources.connectedAgents());
    },
  });
  const subscribers = new Gauge({
    name: "mottainai_event_subscribers",
    help: "Open EventService.Subscribe streams on this server",
    registers,
  });

  const finished = new Counter({
    name: "mottainai_tasks_finished_total",
    help: "Tasks that reached done or stopped on this server, by result",
    labelNames: ["result"],
    registers,
  });
  const dispatch = new Histogram({
    name: "mottainai_dispatch_latency_seconds",
    help: "Time from a task becoming dispatchable (created, requeued or its eta reached) to its assignment",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
    registers,
  });
  const attempts = new Histogram({
    name: "mottainai_attempt_duration_seconds",
    help: "Duration of task attempts from assignment to their end, by result",
    labelNames: ["result"],
    buckets: [0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 21600],
    registers,
  });
  const leases = new Counter({
    name: "mottainai_lease_expiries_total",
    help: "Attempts whose lease expired because their agent stopped renewing it",
    registers,
  });
  const logBytes = new Counter({
    name: "mottainai_log_bytes_appended_total",
    help: "Bytes appended to task logs",
    registers,
  });
  const byteCounter = (name: string, help: string) => new Counter({ name, help, registers });
  const blobStored = byteCounter(
    "mottainai_blob_bytes_stored_total",
    "Bytes put into the blob store (identical content counted again)",
  );
  const blobServed = byteCounter("mottainai_blob_bytes_served_total", "Bytes read from the blob store");
  const uploads = byteCounter("mottainai_upload_bytes_total", "Bytes clients uploaded (artefacts, storage and namespace files)");
  const downloads = byteCounter(
    "mottainai_download_bytes_total",
    "Bytes clients downloaded through the download RPCs and file routes",
  );
  const rpcTotal = new Counter({
    name: "mottainai_rpc_requests_total",
    help: "Connect, gRPC and gRPC-Web calls that ended, by service, method and code",
    labelNames: ["service", "method", "code"],
    registers,
  });
  const rpcSeconds = new Histogram({
    name: "mottainai_rpc_duration_seconds",
    help: "Duration of RPCs (streams: until their end), by service and method",
    labelNames: ["service", "method"],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60, 600],
    registers,
  });

  return {
    registry,
    scheduler: {
      dispatched: (waitMs) => dispatch.observe(Math.max(0, waitMs) / 1000),
      attemptEnded: (result, durationMs) => attempts.observe({ result }, Math.max(0, durationMs) / 1000),
      taskFinished: (result) => finished.inc({ result }),
      leaseExpired: () => leases.inc(),
      logAppended: (bytes) => logBytes.inc(bytes),
    },
    blobs: { put: (bytes) => blobStored.inc(bytes), get: (bytes) => blobServed.inc(bytes) },
    transfers: { put: (bytes) => uploads.inc(bytes), get: (bytes) => downloads.inc(bytes) },
    rpcs: {
      rpc(service, method, code, seconds) {
        rpcTotal.inc({ service, method, code });
        rpcSeconds.observe({ service, method }, seconds);
      },
    },
    subscribers: { subscribed: () => subscribers.inc(), unsubscribed: () => subscribers.dec() },
  };
}
