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
  /** Largest file accepted by any upload (artefacts, namespace and storage files). Default 10 GiB. */
  maxUploadBytes: number;
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
  "max-upload-size": { type: "string" },
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
  "max-upload-size": "MOTTAINAI_MAX_UPLOAD_SIZE",
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
    maxUploadBytes: size("max-upload-size", 10 * 1024 ** 3),
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
