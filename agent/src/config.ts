import { readFileSync } from "node:fs";
import { hostname as osHostname } from "node:os";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";
import { EXECUTOR_KINDS } from "./executor/executor-factory.js";

/** A queue the agent serves and how many of its tasks may run at once. */
export interface QueueConfig {
  queue: string;
  slots: number;
}

/** Typed agent configuration, parsed once in main.ts and passed down. */
export interface AgentConfig {
  /** Server base URL (gRPC over h2c, or TLS with https). Default http://127.0.0.1:9090. */
  server: string;
  /** Registration token, needed only while no credential is stored. */
  registrationToken: string | undefined;
  /** Node name used at registration. Default the host name. */
  name: string;
  /** Absolute directory for the credential, workspaces and log spill files. Default ./.mottainai/agent. */
  stateDir: string;
  /** Queues served with their slots. Default general:<capacity>. */
  queues: QueueConfig[];
  /** Total concurrent attempts. Default 2. */
  capacity: number;
  /** Labels tasks may require. Default none. */
  labels: Record<string, string>;
  /** Executor kinds advertised to the server. Default ["host"]. */
  executors: string[];
  /** Docker endpoint of the docker executor (`unix:///…` or `tcp://host:port`). Absent: /var/run/docker.sock. */
  dockerHost?: string;
  /** pino level. Default info. */
  logLevel: string;
}

/** A configuration value that cannot be used; the message names the flag, variable or key. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Usage text for `mottainai-agent --help`. */
export const AGENT_USAGE = `Usage: mottainai-agent [options]

Runs tasks for a Mottainai server over one persistent stream.

  --server URL               server base URL (default http://127.0.0.1:9090)     MOTTAINAI_AGENT_SERVER
  --registration-token T     token exchanged for a node credential on first start MOTTAINAI_AGENT_REGISTRATION_TOKEN
  --name N                   node name (default: the host name)                    MOTTAINAI_AGENT_NAME
  --state-dir DIR            credential, workspaces, spill (default ./.mottainai/agent) MOTTAINAI_AGENT_STATE_DIR
  --capacity N               concurrent tasks (default 2)                          MOTTAINAI_AGENT_CAPACITY
  --queue NAME[:SLOTS]       queue served, repeatable (default general:<capacity>)
  --label K=V                label, repeatable
  --executor KIND            executor offered, repeatable: ${EXECUTOR_KINDS.join(", ")} (default host)
  --docker-host URL          docker executor's engine (default unix:///var/run/docker.sock) MOTTAINAI_AGENT_DOCKER_HOST
  --log-level LEVEL          fatal, error, warn, info, debug, trace, silent (default info) MOTTAINAI_AGENT_LOG_LEVEL
  --config FILE              YAML file with the same keys in snake_case            MOTTAINAI_AGENT_CONFIG
  --help                     show this text

Precedence: flags, then environment, then the file, then defaults.
`;

const OPTIONS = {
  config: { type: "string" },
  server: { type: "string" },
  "registration-token": { type: "string" },
  name: { type: "string" },
  "state-dir": { type: "string" },
  queue: { type: "string", multiple: true },
  capacity: { type: "string" },
  label: { type: "string", multiple: true },
  executor: { type: "string", multiple: true },
  "docker-host": { type: "string" },
  "log-level": { type: "string" },
} as const;

type Key = Exclude<keyof typeof OPTIONS, "config">;
type ListKey = "queue" | "label" | "executor";
type ScalarKey = Exclude<Key, ListKey>;

const ENV: Partial<Record<Key, string>> = {
  server: "MOTTAINAI_AGENT_SERVER",
  "registration-token": "MOTTAINAI_AGENT_REGISTRATION_TOKEN",
  name: "MOTTAINAI_AGENT_NAME",
  "state-dir": "MOTTAINAI_AGENT_STATE_DIR",
  capacity: "MOTTAINAI_AGENT_CAPACITY",
  "log-level": "MOTTAINAI_AGENT_LOG_LEVEL",
  "docker-host": "MOTTAINAI_AGENT_DOCKER_HOST",
};

const FILE_ALIASES: Record<ListKey, string> = { queue: "queues", label: "labels", executor: "executors" };

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

interface Raw<T> {
  value: T;
  source: string;
  /** Directory relative paths are resolved against. */
  base: string;
}

/** Defaults that come from the machine; tests override them. */
export interface AgentConfigDefaults {
  /** Default node name. Default os.hostname(). */
  hostname?: string;
  /** Directory relative paths from flags and environment resolve against. Default process.cwd(). */
  cwd?: string;
}

/**
 * Builds the agent configuration from command-line flags, `MOTTAINAI_AGENT_*` environment
 * variables and an optional YAML file (`--config` or MOTTAINAI_AGENT_CONFIG; keys are the flag
 * names in snake_case, `queue`/`label`/`executor` also as `queues`/`labels`/`executors`, as a
 * list or a mapping). Precedence: flags, then environment, then file, then defaults; a list
 * given by a higher source replaces the lower one's. Relative paths in the file resolve
 * against the file's directory. Throws ConfigError naming the flag, variable or key of the
 * first bad value.
 */
export function loadAgentConfig(
  argv: string[],
  env: Record<string, string | undefined>,
  defaults: AgentConfigDefaults = {},
): AgentConfig {
  const cwd = defaults.cwd ?? process.cwd();
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false });
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const flags = parsed.values as Partial<Record<ScalarKey | "config", string>> & Partial<Record<ListKey, string[]>>;
  const configFile = flags.config ?? (env.MOTTAINAI_AGENT_CONFIG || undefined);
  const configPath = configFile !== undefined ? resolve(cwd, configFile) : undefined;
  const file =
    configPath !== undefined
      ? readConfigFile(configPath, flags.config !== undefined ? "--config" : "MOTTAINAI_AGENT_CONFIG")
      : {};
  const fileBase = configPath !== undefined ? dirname(configPath) : cwd;

  const fileEntry = (key: Key): Raw<unknown> | undefined => {
    const names = [...new Set([key.replaceAll("-", "_"), key, ...(key in FILE_ALIASES ? [FILE_ALIASES[key as ListKey]] : [])])];
    const found = names.filter((n) => n in file);
    if (found.length > 1) throw new ConfigError(`${configPath}: "${found[0]}" and "${found[1]}" are the same setting; keep one`);
    const name = found[0];
    if (name === undefined || file[name] === null || file[name] === undefined) return undefined;
    return { value: file[name], source: `${configPath}: ${name}`, base: fileBase };
  };

  const scalar = (key: ScalarKey): Raw<string> | undefined => {
    const flag = flags[key];
    if (flag !== undefined) return { value: flag, source: `--${key}`, base: cwd };
    const envName = ENV[key];
    const envValue = envName !== undefined ? env[envName] : undefined;
    if (envName !== undefined && envValue !== undefined && envValue !== "")
      return { value: envValue, source: envName, base: cwd };
    const f = fileEntry(key);
    if (f === undefined) return undefined;
    if (typeof f.value !== "string" && typeof f.value !== "number" && typeof f.value !== "boolean") {
      throw new ConfigError(`${f.source}: expected a single value, got ${describe(f.value)}`);
    }
    return { ...f, value: String(f.value) };
  };

  const list = (key: ListKey): Raw<string[]> | undefined => {
    const flag = flags[key];
    if (flag !== undefined && flag.length > 0) return { value: flag, source: `--${key}`, base: cwd };
    const f = fileEntry(key);
    if (f === undefined) return undefined;
    const separator = key === "queue" ? ":" : "=";
    const v = f.value;
    if (typeof v === "string" || typeof v === "number") return { ...f, value: [String(v)] };
    if (Array.isArray(v)) {
      return {
        ...f,
        value: v.map((item) => {
          if (typeof item !== "string" && typeof item !== "number")
            throw new ConfigError(`${f.source}: expected a list of strings, got ${describe(item)} in it`);
          return String(item);
        }),
      };
    }
    if (typeof v === "object" && v !== null && key !== "executor") {
      return {
        ...f,
        value: Object.entries(v as Record<string, unknown>).map(([k, item]) => {
          if (typeof item !== "string" && typeof item !== "number" && typeof item !== "boolean") {
            throw new ConfigError(`${f.source}: expected a plain value for "${k}", got ${describe(item)}`);
          }
          return `${k}${separator}${String(item)}`;
        }),
      };
    }
    throw new ConfigError(`${f.source}: expected a list, got ${describe(v)}`);
  };

  const serverRaw = scalar("server");
  const server = serverRaw?.value ?? "http://127.0.0.1:9090";
  if (serverRaw) {
    let url: URL | undefined;
    try {
      url = new URL(serverRaw.value);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || url.host === "") {
      throw new ConfigError(
        `${serverRaw.source}: expected an http:// or https:// URL such as "http://127.0.0.1:9090", got "${serverRaw.value}"`,
      );
    }
  }

  const capacityRaw = scalar("capacity");
  let capacity = 2;
  if (capacityRaw) {
    const v = capacityRaw.value.trim();
    if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 100_000) {
      throw new ConfigError(`${capacityRaw.source}: expected a positive integer, got "${capacityRaw.value}"`);
    }
    capacity = Number(v);
  }

  const queues: QueueConfig[] = [];
  const queueRaw = list("queue");
  for (const item of queueRaw?.value ?? []) {
    const source = (queueRaw as Raw<string[]>).source;
    const m = /^([^\s:]+)(?::(\d+))?$/.exec(item.trim());
    const slots = m?.[2] !== undefined ? Number(m[2]) : capacity;
    if (!m || slots < 1)
      throw new ConfigError(`${source}: expected NAME:SLOTS with a positive number of slots, such as "general:2", got "${item}"`);
    const queue = m[1] as string;
    if (queues.some((q) => q.queue === queue)) throw new ConfigError(`${source}: queue "${queue}" is given twice`);
    queues.push({ queue, slots });
  }
  if (queues.length === 0) queues.push({ queue: "general", slots: capacity });

  const labels: Record<string, string> = {};
  const labelRaw = list("label");
  for (const item of labelRaw?.value ?? []) {
    const i = item.indexOf("=");
    const key = i < 0 ? "" : item.slice(0, i).trim();
    if (key === "") throw new ConfigError(`${(labelRaw as Raw<string[]>).source}: expected KEY=VALUE, got "${item}"`);
    labels[key] = item.slice(i + 1);
  }

  const executorRaw = list("executor");
  const executors: string[] = [];
  for (const item of executorRaw?.value ?? ["host"]) {
    const kind = item.trim();
    if (!EXECUTOR_KINDS.includes(kind)) {
      throw new ConfigError(
        `${(executorRaw as Raw<string[]>).source}: unknown executor "${item}" (this agent has: ${EXECUTOR_KINDS.join(", ")})`,
      );
    }
    if (!executors.includes(kind)) executors.push(kind);
  }

  const nameRaw = scalar("name");
  const name = (nameRaw?.value ?? defaults.hostname ?? osHostname()).trim();
  if (name === "" || /\s/.test(name))
    throw new ConfigError(`${nameRaw?.source ?? "--name"}: expected a node name without spaces, got "${nameRaw?.value ?? name}"`);

  const stateDirRaw = scalar("state-dir");
  if (stateDirRaw && stateDirRaw.value.trim() === "")
    throw new ConfigError(`${stateDirRaw.source}: expected a directory, got ""`);
  const stateDir = resolve(stateDirRaw?.base ?? cwd, stateDirRaw?.value ?? ".mottainai/agent");

  const logLevelRaw = scalar("log-level");
  const logLevel = logLevelRaw?.value ?? "info";
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`${logLevelRaw?.source}: expected one of ${LOG_LEVELS.join(", ")}, got "${logLevel}"`);
  }

  const tokenRaw = scalar("registration-token");
  const registrationToken = tokenRaw?.value.trim() || undefined;

  const dockerHostRaw = scalar("docker-host");
  const dockerHost = dockerHostRaw?.value.trim() || undefined;
  if (dockerHostRaw && dockerHost !== undefined && !/^(unix:\/\/\/|tcp:\/\/|https?:\/\/|\/)/.test(dockerHost)) {
    throw new ConfigError(
      `${dockerHostRaw.source}: expected unix:///path/to/docker.sock or tcp://host:port, got "${dockerHostRaw.value}"`,
    );
  }

  return {
    server,
    registrationToken,
    name,
    stateDir,
    queues,
    capacity,
    labels,
    executors,
    logLevel,
    ...(dockerHost !== undefined ? { dockerHost } : {}),
  };
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return "a list";
  if (value === null) return "null";
  return typeof value === "object" ? "a mapping" : JSON.stringify(value);
}

function readConfigFile(path: string, source: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`${source}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${path}: ${(err as Error).message.split("\n")[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) throw new ConfigError(`${path}: expected a mapping of settings`);
  const known = new Set<string>();
  for (const key of Object.keys(OPTIONS)) {
    if (key === "config") continue;
    known.add(key);
    known.add(key.replaceAll("-", "_"));
    if (key in FILE_ALIASES) known.add(FILE_ALIASES[key as ListKey]);
  }
  for (const key of Object.keys(doc)) {
    if (!known.has(key)) throw new ConfigError(`${path}: unknown setting "${key}"`);
  }
  return doc as Record<string, unknown>;
}
