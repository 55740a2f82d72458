import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";
import { parseDuration } from "./duration.js";

/** Typed server configuration, parsed once in main.ts and passed down. */
export interface ServerConfig {
  /** Host the single gRPC/gRPC-Web/Connect port binds to. Default 127.0.0.1. */
  host: string;
  /** Port; 0 picks a free one. Default 9090. */
  port: number;
  /** Directory holding the SQLite database, blobs and logs. Default ./.mottainai/server. */
  dataDir: string;
  /** File the bootstrap admin token is written to (mode 0600). Default <dataDir>/admin-token. */
  adminTokenFile: string;
  /** pino level. Default info. */
  logLevel: string;
  /** Interval at which agents send heartbeats. Default 10 s. */
  heartbeatIntervalMs: number;
  /** Lifetime of an attempt's lease without a heartbeat. Default 30 s. */
  leaseTtlMs: number;
  /** How long agents wait before flushing buffered log bytes. Default 100 ms. */
  logFlushIntervalMs: number;
  /** Largest log chunk an agent may send. Default 256 KiB. */
  maxChunkBytes: number;
  /** How many times an attempt lost to infrastructure is requeued automatically. Default 2. */
  maxInfraRetries: number;
  /** Grace an agent gives a cancelled executor before killing it. Default 1 s. */
  cancelGraceMs: number;
  /**
   * After a restart, how long agents have to reconnect and re-claim their running attempts
   * before those leases can expire. Default lease TTL + 10 s (the agent's longest backoff).
   */
  restartGraceMs: number;
  /**
   * With a MongoDB store (which several servers may share), how often the event log is read for
   * the events other servers appended (EventFeed). Default 200 ms; unused with SQLite.
   */
  eventPollIntervalMs: number;
  /** Metadata store: embedded SQLite under dataDir (the default) or a MongoDB database. */
  store: StoreConfig;
  /**
   * Blob store backend: "local" (a directory under dataDir, the default), "s3", or "gridfs"
   * (GridFS in the MongoDB database of --store, which must then be MongoDB).
   */
  blobs: "local" | "s3" | "gridfs";
  /** Where the "s3" backend stores blobs (set exactly when blobs is "s3"). */
  s3?: S3Config;
  /** Largest file accepted by any upload (artefacts, namespace and storage files). Default 10 GiB. */
  maxUploadBytes: number;
  /**
   * Unreferenced blobs younger than this are not garbage collected: the window in which a blob
   * that was put gets referenced. Default 24 h.
   */
  blobRetentionMs: number;
  /** Time between two blob garbage collections (the first runs a minute after start); 0 disables them. Default 1 h. */
  gcIntervalMs: number;
  /**
   * Finished tasks that ended longer ago than this are removed with their logs and artefacts,
   * right before each blob garbage collection (so every gcIntervalMs). 0 keeps every task. Default 0.
   */
  taskRetentionMs: number;
  /**
   * Events older than this are removed from the log (checked every 10 min); 0 keeps them by age.
   * A subscriber resuming from a removed sequence receives a gap marker first. Default 7 days.
   */
  eventRetentionMs: number;
  /** At most this many events are kept (the newest); 0 for no cap. Default 1,000,000. */
  eventRetentionCount: number;
  /** Attempts of a namespace delivery before it fails. Default 8. */
  deliveryMaxAttempts: number;
  /** Delay after a delivery's first failed attempt; doubles after each, at most 1 h. Default 10 s. */
  deliveryBackoffMs: number;
  /** Longest run of one delivery command (rsync, a git command). Default 30 min. */
  deliveryTimeoutMs: number;
  /**
   * How often the plan firing loop re-reads every plan (to see plans other servers created or
   * changed) and completes firings a dead server claimed but did not launch. Default 2 s.
   */
  planSweepIntervalMs: number;
  /**
   * How late an occurrence may be fired and still count as on time; older ones are missed and
   * follow the plan's catch_up. Default 60 s, at least 1 s (a timer always fires a little late).
   */
  planLateGraceMs: number;
  /**
   * Bearer token a Prometheus scraper must send to read GET /metrics; empty (the default) lets
   * anyone who reaches the port read them.
   */
  metricsToken: string;
  /** The dashboard's built files, served under `/`. Default the repository's web/dist. */
  webDir?: string;
}

/**
 * Where metadata lives. "mongodb" takes a mongodb:// or mongodb+srv:// connection string; its
 * path names the database (default "mottainai"). Several servers may share one MongoDB database.
 */
export type StoreConfig = { backend: "sqlite" } | { backend: "mongodb"; url: string };

/** The S3 blob store's connection (Ceph's RADOS Gateway or any S3 API, path-style). */
export interface S3Config {
  /** Endpoint URL, e.g. http://127.0.0.1:7480. Required. */
  endpoint: string;
  /** Bucket; created at start when missing. Required. */
  bucket: string;
  /** Signing region. Default us-east-1 (RGW accepts any). */
  region: string;
  /** Access and secret key; both or neither (then the AWS SDK's own credential chain). */
  accessKeyId?: string;
  secretAccessKey?: string;
}

/** A configuration value that cannot be used; the message names the flag or key. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

const OPTIONS = {
  config: { type: "string" },
  listen: { type: "string" },
  "data-dir": { type: "string" },
  "admin-token-file": { type: "string" },
  "log-level": { type: "string" },
  "heartbeat-interval": { type: "string" },
  "lease-ttl": { type: "string" },
  "log-flush-interval": { type: "string" },
  "max-chunk-bytes": { type: "string" },
  "max-infra-retries": { type: "string" },
  "cancel-grace": { type: "string" },
  "restart-grace": { type: "string" },
  "event-poll-interval": { type: "string" },
  "plan-sweep-interval": { type: "string" },
  "plan-late-grace": { type: "string" },
  store: { type: "string" },
  blobs: { type: "string" },
  "s3-endpoint": { type: "string" },
  "s3-bucket": { type: "string" },
  "s3-region": { type: "string" },
  "s3-access-key": { type: "string" },
  "s3-secret-key": { type: "string" },
  "max-upload-size": { type: "string" },
  "blob-retention": { type: "string" },
  "gc-interval": { type: "string" },
  "task-retention": { type: "string" },
  "event-retention": { type: "string" },
  "event-retention-count": { type: "string" },
  "delivery-attempts": { type: "string" },
  "delivery-backoff": { type: "string" },
  "delivery-timeout": { type: "string" },
  "metrics-token": { type: "string" },
} as const;

type Key = keyof typeof OPTIONS;

const ENV: Record<Exclude<Key, "config">, string> = {
  listen: "MOTTAINAI_LISTEN",
  "data-dir": "MOTTAINAI_DATA_DIR",
  "admin-token-file": "MOTTAINAI_ADMIN_TOKEN_FILE",
  "log-level": "MOTTAINAI_LOG_LEVEL",
  "heartbeat-interval": "MOTTAINAI_HEARTBEAT_INTERVAL",
  "lease-ttl": "MOTTAINAI_LEASE_TTL",
  "log-flush-interval": "MOTTAINAI_LOG_FLUSH_INTERVAL",
  "max-chunk-bytes": "MOTTAINAI_MAX_CHUNK_BYTES",
  "max-infra-retries": "MOTTAINAI_MAX_INFRA_RETRIES",
  "cancel-grace": "MOTTAINAI_CANCEL_GRACE",
  "restart-grace": "MOTTAINAI_RESTART_GRACE",
  "event-poll-interval": "MOTTAINAI_EVENT_POLL_INTERVAL",
  "plan-sweep-interval": "MOTTAINAI_PLAN_SWEEP_INTERVAL",
  "plan-late-grace": "MOTTAINAI_PLAN_LATE_GRACE",
  store: "MOTTAINAI_STORE",
  blobs: "MOTTAINAI_BLOBS",
  "s3-endpoint": "MOTTAINAI_S3_ENDPOINT",
  "s3-bucket": "MOTTAINAI_S3_BUCKET",
  "s3-region": "MOTTAINAI_S3_REGION",
  "s3-access-key": "MOTTAINAI_S3_ACCESS_KEY",
  "s3-secret-key": "MOTTAINAI_S3_SECRET_KEY",
  "max-upload-size": "MOTTAINAI_MAX_UPLOAD_SIZE",
  "blob-retention": "MOTTAINAI_BLOB_RETENTION",
  "gc-interval": "MOTTAINAI_GC_INTERVAL",
  "task-retention": "MOTTAINAI_TASK_RETENTION",
  "event-retention": "MOTTAINAI_EVENT_RETENTION",
  "event-retention-count": "MOTTAINAI_EVENT_RETENTION_COUNT",
  "delivery-attempts": "MOTTAINAI_DELIVERY_ATTEMPTS",
  "delivery-backoff": "MOTTAINAI_DELIVERY_BACKOFF",
  "delivery-timeout": "MOTTAINAI_DELIVERY_TIMEOUT",
  "metrics-token": "MOTTAINAI_METRICS_TOKEN",
};

/**
 * Builds the server configuration from command-line flags, `MOTTAINAI_*` environment variables
 * and an optional YAML file (`--config` or MOTTAINAI_CONFIG; keys are the flag names with `_` or
 * `-`). Precedence: flags, then environment, then file, then defaults. Throws ConfigError naming
 * the flag, variable or key of the first bad value.
 */
export function loadServerConfig(argv: string[], env: Record<string, string | undefined>): ServerConfig {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false });
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const flags = parsed.values as Partial<Record<Key, string>>;
  const configFile = flags.config ?? env.MOTTAINAI_CONFIG;
  const file = configFile ? readConfigFile(configFile) : {};

  const raw = (key: Exclude<Key, "config">): { value: string; source: string } | undefined => {
    if (flags[key] !== undefined) return { value: flags[key], source: `--${key}` };
    const envValue = env[ENV[key]];
    if (envValue !== undefined && envValue !== "") return { value: envValue, source: ENV[key] };
    const fileKey = [key, key.replaceAll("-", "_")].find((k) => k in file);
    if (fileKey !== undefined) return { value: String(file[fileKey]), source: `${configFile}: ${fileKey}` };
    return undefined;
  };
  const duration = (key: Exclude<Key, "config">, fallback: number, min: number): number => {
    const r = raw(key);
    if (!r) return fallback;
    const ms = parseDuration(r.value);
    if (ms === undefined || ms < min) {
      throw new ConfigError(`${r.source}: expected a duration of at least ${min} ms such as "10s" or "500ms", got "${r.value}"`);
    }
    return ms;
  };
  const integer = (key: Exclude<Key, "config">, fallback: number, min: number): number => {
    const r = raw(key);
    if (!r) return fallback;
    if (!/^\d+$/.test(r.value) || Number(r.value) < min) {
      throw new ConfigError(`${r.source}: expected an integer of at least ${min}, got "${r.value}"`);
    }
    return Number(r.value);
  };
  const size = (key: Exclude<Key, "config">, fallback: number): number => {
    const r = raw(key);
    if (!r) return fallback;
    const bytes = parseSize(r.value);
    if (bytes === undefined || bytes < 1) {
      throw new ConfigError(`${r.source}: expected a size such as "10GiB", "512MiB" or a number of bytes, got "${r.value}"`);
    }
    return bytes;
  };

  const listen = raw("listen");
  let host = "127.0.0.1";
  let port = 9090;
  if (listen) {
    const m = listen.value.match(/^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/);
    if (!m || Number(m[3]) > 65535) {
      throw new ConfigError(`${listen.source}: expected HOST:PORT such as "127.0.0.1:9090", got "${listen.value}"`);
    }
    host = m[1] ?? (m[2] || "0.0.0.0");
    port = Number(m[3]);
  }
  const dataDir = resolve(raw("data-dir")?.value ?? ".mottainai/server");
  const logLevel = raw("log-level")?.value ?? "info";
  if (!["fatal", "error", "warn", "info", "debug", "trace", "silent"].includes(logLevel)) {
    throw new ConfigError(
      `${raw("log-level")?.source}: expected one of fatal, error, warn, info, debug, trace, silent, got "${logLevel}"`,
    );
  }
  const heartbeatIntervalMs = duration("heartbeat-interval", 10_000, 100);
  const leaseTtlMs = duration("lease-ttl", 30_000, 200);
  if (leaseTtlMs <= heartbeatIntervalMs) {
    throw new ConfigError(`lease-ttl (${leaseTtlMs} ms) must be longer than heartbeat-interval (${heartbeatIntervalMs} ms)`);
  }
  return {
    host,
    port,
    dataDir,
    adminTokenFile: resolve(raw("admin-token-file")?.value ?? `${dataDir}/admin-token`),
    logLevel,
    heartbeatIntervalMs,
    leaseTtlMs,
    logFlushIntervalMs: duration("log-flush-interval", 100, 1),
    maxChunkBytes: integer("max-chunk-bytes", 256 * 1024, 1024),
    maxInfraRetries: integer("max-infra-retries", 2, 0),
    cancelGraceMs: duration("cancel-grace", 1000, 0),
    restartGraceMs: duration("restart-grace", leaseTtlMs + 10_000, 0),
    eventPollIntervalMs: duration("event-poll-interval", 200, 10),
    ...storeAndBlobConfig(raw),
    maxUploadBytes: size("max-upload-size", 10 * 1024 ** 3),
    blobRetentionMs: duration("blob-retention", 24 * 3_600_000, 0),
    gcIntervalMs: duration("gc-interval", 3_600_000, 0),
    taskRetentionMs: duration("task-retention", 0, 0),
    eventRetentionMs: duration("event-retention", 7 * 86_400_000, 0),
    eventRetentionCount: integer("event-retention-count", 1_000_000, 0),
    deliveryMaxAttempts: integer("delivery-attempts", 8, 1),
    deliveryBackoffMs: duration("delivery-backoff", 10_000, 1),
    deliveryTimeoutMs: duration("delivery-timeout", 30 * 60_000, 1000),
    planSweepIntervalMs: duration("plan-sweep-interval", 2000, 10),
    planLateGraceMs: duration("plan-late-grace", 60_000, 1000),
    metricsToken: raw("metrics-token")?.value ?? "",
  };
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  kib: 1024,
  m: 1e6,
  mb: 1e6,
  mib: 1024 ** 2,
  g: 1e9,
  gb: 1e9,
  gib: 1024 ** 3,
  t: 1e12,
  tb: 1e12,
  tib: 1024 ** 4,
};

/** Bytes in "10GiB", "512 MB", "1048576"; undefined when the text is not a size. */
export function parseSize(text: string): number | undefined {
  const m = text.trim().match(/^(\d+(?:\.\d+)?)\s*([a-z]*)$/i);
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) return undefined;
  return Math.floor(Number(m[1]) * unit);
}

type Raw = (key: Exclude<Key, "config">) => { value: string; source: string } | undefined;

/** --blobs and, for "s3", the --s3-* options; a missing or bad one is named in the error. */
function blobConfig(raw: Raw): Pick<ServerConfig, "blobs" | "s3"> {
  const backend = raw("blobs");
  const s3Keys = ["s3-endpoint", "s3-bucket", "s3-region", "s3-access-key", "s3-secret-key"] as const;
  if (backend === undefined || backend.value === "local") {
    const stray = s3Keys.map(raw).find((r) => r !== undefined);
    if (stray) throw new ConfigError(`${stray.source}: only used with --blobs s3 (the blob store is local)`);
    return { blobs: "local" };
  }
  if (backend.value === "gridfs") {
    const stray = s3Keys.map(raw).find((r) => r !== undefined);
    if (stray) throw new ConfigError(`${stray.source}: only used with --blobs s3 (the blob store is gridfs)`);
    return { blobs: "gridfs" };
  }
  if (backend.value !== "s3") throw new ConfigError(`${backend.source}: expected local, s3 or gridfs, got "${backend.value}"`);
  const endpoint = raw("s3-endpoint");
  if (!endpoint) throw new ConfigError("--s3-endpoint (MOTTAINAI_S3_ENDPOINT) is required with --blobs s3");
  let url: URL | undefined;
  try {
    url = new URL(endpoint.value);
  } catch {
    url = undefined;
  }
  if (!url || !["http:", "https:"].includes(url.protocol)) {
    throw new ConfigError(`${endpoint.source}: expected an http(s) URL such as "http://127.0.0.1:7480", got "${endpoint.value}"`);
  }
  const bucket = raw("s3-bucket");
  if (!bucket) throw new ConfigError("--s3-bucket (MOTTAINAI_S3_BUCKET) is required with --blobs s3");
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket.value)) {
    throw new ConfigError(
      `${bucket.source}: expected a bucket name of 3 to 63 lower-case letters, digits, dots and hyphens, got "${bucket.value}"`,
    );
  }
  const accessKey = raw("s3-access-key");
  const secretKey = raw("s3-secret-key");
  if ((accessKey === undefined) !== (secretKey === undefined)) {
    throw new ConfigError(`${(accessKey ?? secretKey)?.source}: --s3-access-key and --s3-secret-key go together`);
  }
  return {
    blobs: "s3",
    s3: {
      endpoint: endpoint.value,
      bucket: bucket.value,
      region: raw("s3-region")?.value || "us-east-1",
      accessKeyId: accessKey?.value,
      secretAccessKey: secretKey?.value,
    },
  };
}

/** --store and --blobs together: GridFS lives in the store's MongoDB database. */
function storeAndBlobConfig(raw: Raw): Pick<ServerConfig, "store" | "blobs" | "s3"> {
  const store = storeConfig(raw("store"));
  const blobs = blobConfig(raw);
  if (blobs.blobs === "gridfs" && store.backend !== "mongodb") {
    throw new ConfigError(
      `${raw("blobs")?.source}: gridfs keeps blobs in the MongoDB database of --store, but the store is ${store.backend}; set --store mongodb://…`,
    );
  }
  return { store, ...blobs };
}

/** --store: "sqlite" or a MongoDB connection string with a host. */
function storeConfig(r: { value: string; source: string } | undefined): StoreConfig {
  if (r === undefined || r.value === "sqlite") return { backend: "sqlite" };
  if (/^mongodb(\+srv)?:\/\/[^/?]+/.test(r.value)) return { backend: "mongodb", url: r.value };
  throw new ConfigError(
    `${r.source}: expected "sqlite" or a MongoDB connection string such as "mongodb://127.0.0.1:27017/mottainai", got "${r.value.replace(/\/\/[^@/]*@/, "//…@")}"`,
  );
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`--config: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${path}: ${(err as Error).message.split("\n")[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) throw new ConfigError(`${path}: expected a mapping of settings`);
  const known = new Set(Object.keys(ENV).flatMap((k) => [k, k.replaceAll("-", "_")]));
  for (const key of Object.keys(doc)) {
    if (!known.has(key)) throw new ConfigError(`${path}: unknown setting "${key}"`);
  }
  return doc as Record<string, unknown>;
}
