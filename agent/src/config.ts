import { readFileSync } from "node:fs";
import { hostname as osHostname } from "node:os";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";
import {
  checkHostPath,
  formatMemorySize,
  MIN_MEMORY,
  parseCpus,
  parseMemorySize,
  type DockerPolicy,
} from "./executor/docker-policy.js";
import type { DockerImageCacheOptions } from "./executor/docker-image-cache.js";
import { readDockerAuthFile, type DockerRegistryAuth } from "./executor/docker-registry-auth.js";
import { EXECUTOR_KINDS } from "./executor/executor-factory.js";
import { MIN_VM_MEMORY_MIB, parseMemoryMiB } from "./executor/libvirt-executor.js";
import {
  LXD_ENV,
  LXD_OPTIONS,
  LXD_USAGE,
  loadLxdConfig,
  type LxdBooleanKey,
  type LxdConfig,
  type LxdListKey,
} from "./executor/lxd/lxd-config.js";

/** A queue the agent serves and how many of its tasks may run at once. */
export interface QueueConfig {
  queue: string;
  slots: number;
}

/** Typed agent configuration, parsed once in main.ts and passed down. */
export interface AgentConfig {
  /**
   * Server base URLs (gRPC over h2c, or TLS with https), from a comma-separated list: the agent
   * connects to the first and moves to the next whenever its stream is lost (several servers
   * on one database). Default [http://127.0.0.1:9090].
   */
  servers: string[];
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
  /** What the docker executor's containers may do (`--docker-*` policy flags). */
  dockerPolicy: DockerPolicy;
  /** Registry of the docker executor's image cache (`cache_image` tasks). Absent: no cache. */
  dockerImageCache?: DockerImageCacheOptions;
  /** Registry credentials of the docker executor's pulls (`--docker-auth-file`), read once at start. Absent: anonymous. */
  dockerRegistryAuth?: DockerRegistryAuth;
  /** The libvirt executor's settings (`--libvirt-*`). */
  libvirt: LibvirtConfig;
  /** The lxd executor's settings (`--lxd-*`). */
  lxd: LxdConfig;
  /** pino level. Default info. */
  logLevel: string;
}

/** Settings of the libvirt executor (createLibvirtExecutor). */
export interface LibvirtConfig {
  /** libvirt connection URI. Default qemu:///system. */
  uri: string;
  /** Absolute directory of the VM images (docs/libvirt-guest.md). Required when the libvirt executor is offered. */
  imageDir?: string;
  /** vCPUs of a VM whose task asks for none (`CPU=`). Absent: 1. */
  defaultCpus?: number;
  /** Most vCPUs a task may ask for. Absent: the host's cpus. */
  maxCpus?: number;
  /** MiB of a VM whose task asks for none (`RAM=`). Absent: 512. */
  defaultMemoryMiB?: number;
  /** Most MiB a task may ask for. Absent: the host's memory. */
  maxMemoryMiB?: number;
}

/** A configuration value that cannot be used; the message names the flag, variable or key. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Usage text for `mottainai-agent --help`. */
export const AGENT_USAGE = `Usage: mottainai-agent [options]

Runs tasks for a Mottainai server over one persistent stream.

  --server URL[,URL…]        server base URLs; on a lost stream the agent       MOTTAINAI_AGENT_SERVER
                             moves to the next (default http://127.0.0.1:9090)
  --registration-token T     token exchanged for a node credential on first start MOTTAINAI_AGENT_REGISTRATION_TOKEN
  --name N                   node name (default: the host name)                    MOTTAINAI_AGENT_NAME
  --state-dir DIR            credential, workspaces, spill (default ./.mottainai/agent) MOTTAINAI_AGENT_STATE_DIR
  --capacity N               concurrent tasks (default 2)                          MOTTAINAI_AGENT_CAPACITY
  --queue NAME[:SLOTS]       queue served, repeatable (default general:<capacity>)
  --label K=V                label, repeatable
  --executor KIND            executor offered, repeatable: ${EXECUTOR_KINDS.join(", ")} (default host)
  --docker-host URL          docker executor's engine (default unix:///var/run/docker.sock) MOTTAINAI_AGENT_DOCKER_HOST
  --docker-privileged        run docker tasks' containers privileged (default false) MOTTAINAI_AGENT_DOCKER_PRIVILEGED
  --docker-cap-add CAP       capability added to containers, repeatable            MOTTAINAI_AGENT_DOCKER_CAP_ADD
  --docker-cap-drop CAP      capability dropped from containers, repeatable        MOTTAINAI_AGENT_DOCKER_CAP_DROP
  --docker-network MODE      containers' network mode: none, host, a network (default none) MOTTAINAI_AGENT_DOCKER_NETWORK
  --docker-bind-allow PATH   host path prefix task binds may mount, repeatable (default: no binds) MOTTAINAI_AGENT_DOCKER_BIND_ALLOW
  --docker-default-cpus N    cpus of a container whose task asks for none (CPU=) MOTTAINAI_AGENT_DOCKER_DEFAULT_CPUS
  --docker-max-cpus N        most cpus a task may ask for                          MOTTAINAI_AGENT_DOCKER_MAX_CPUS
  --docker-default-memory SIZE memory of a container whose task asks for none (RAM=), e.g. 512m MOTTAINAI_AGENT_DOCKER_DEFAULT_MEMORY
  --docker-max-memory SIZE   most memory a task may ask for, e.g. 2g               MOTTAINAI_AGENT_DOCKER_MAX_MEMORY
  --docker-cache-registry HOST:PORT[/PREFIX] registry of cache_image tasks' images MOTTAINAI_AGENT_DOCKER_CACHE_REGISTRY
  --docker-registry-username U  user for the cache registry                     MOTTAINAI_AGENT_DOCKER_REGISTRY_USERNAME
  --docker-registry-password P  its password (prefer the variable or the file)  MOTTAINAI_AGENT_DOCKER_REGISTRY_PASSWORD
  --docker-auth-file PATH    Docker config.json with "auths" for pulling task images MOTTAINAI_AGENT_DOCKER_AUTH_FILE
  --libvirt-uri URI          libvirt executor's connection (default qemu:///system) MOTTAINAI_AGENT_LIBVIRT_URI
  --libvirt-image-dir DIR    directory of VM images <DIR>/<image>/ (needed for --executor libvirt) MOTTAINAI_AGENT_LIBVIRT_IMAGE_DIR
  --libvirt-default-cpus N   vCPUs of a VM whose task asks for none (CPU=; default 1) MOTTAINAI_AGENT_LIBVIRT_DEFAULT_CPUS
  --libvirt-max-cpus N       most vCPUs a task may ask for (default: the host's cpus) MOTTAINAI_AGENT_LIBVIRT_MAX_CPUS
  --libvirt-default-memory SIZE memory of a VM whose task asks for none (RAM=; default 512m) MOTTAINAI_AGENT_LIBVIRT_DEFAULT_MEMORY
  --libvirt-max-memory SIZE  most memory a task may ask for, e.g. 4g (default: the host's) MOTTAINAI_AGENT_LIBVIRT_MAX_MEMORY
${LXD_USAGE}  --log-level LEVEL          fatal, error, warn, info, debug, trace, silent (default info) MOTTAINAI_AGENT_LOG_LEVEL
  --config FILE              YAML file with the same keys in snake_case            MOTTAINAI_AGENT_CONFIG
  --help                     show this text

Precedence: flags, then environment, then the file, then defaults. Repeatable docker
settings take a comma-separated list in their environment variable.
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
  "docker-privileged": { type: "boolean" },
  "docker-cap-add": { type: "string", multiple: true },
  "docker-cap-drop": { type: "string", multiple: true },
  "docker-network": { type: "string" },
  "docker-bind-allow": { type: "string", multiple: true },
  "docker-default-cpus": { type: "string" },
  "docker-max-cpus": { type: "string" },
  "docker-default-memory": { type: "string" },
  "docker-max-memory": { type: "string" },
  "docker-cache-registry": { type: "string" },
  "docker-registry-username": { type: "string" },
  "docker-registry-password": { type: "string" },
  "docker-auth-file": { type: "string" },
  "libvirt-uri": { type: "string" },
  "libvirt-image-dir": { type: "string" },
  "libvirt-default-cpus": { type: "string" },
  "libvirt-max-cpus": { type: "string" },
  "libvirt-default-memory": { type: "string" },
  "libvirt-max-memory": { type: "string" },
  ...LXD_OPTIONS,
  "log-level": { type: "string" },
} as const;

type Key = Exclude<keyof typeof OPTIONS, "config">;
type ListKey = "queue" | "label" | "executor" | "docker-cap-add" | "docker-cap-drop" | "docker-bind-allow" | LxdListKey;
type BooleanKey = "docker-privileged" | LxdBooleanKey;
type ScalarKey = Exclude<Key, ListKey | BooleanKey>;

const ENV: Partial<Record<Key, string>> = {
  server: "MOTTAINAI_AGENT_SERVER",
  "registration-token": "MOTTAINAI_AGENT_REGISTRATION_TOKEN",
  name: "MOTTAINAI_AGENT_NAME",
  "state-dir": "MOTTAINAI_AGENT_STATE_DIR",
  capacity: "MOTTAINAI_AGENT_CAPACITY",
  "log-level": "MOTTAINAI_AGENT_LOG_LEVEL",
  "docker-host": "MOTTAINAI_AGENT_DOCKER_HOST",
  "docker-privileged": "MOTTAINAI_AGENT_DOCKER_PRIVILEGED",
  "docker-cap-add": "MOTTAINAI_AGENT_DOCKER_CAP_ADD",
  "docker-cap-drop": "MOTTAINAI_AGENT_DOCKER_CAP_DROP",
  "docker-network": "MOTTAINAI_AGENT_DOCKER_NETWORK",
  "docker-bind-allow": "MOTTAINAI_AGENT_DOCKER_BIND_ALLOW",
  "docker-default-cpus": "MOTTAINAI_AGENT_DOCKER_DEFAULT_CPUS",
  "docker-max-cpus": "MOTTAINAI_AGENT_DOCKER_MAX_CPUS",
  "docker-default-memory": "MOTTAINAI_AGENT_DOCKER_DEFAULT_MEMORY",
  "docker-max-memory": "MOTTAINAI_AGENT_DOCKER_MAX_MEMORY",
  "docker-cache-registry": "MOTTAINAI_AGENT_DOCKER_CACHE_REGISTRY",
  "docker-registry-username": "MOTTAINAI_AGENT_DOCKER_REGISTRY_USERNAME",
  "docker-registry-password": "MOTTAINAI_AGENT_DOCKER_REGISTRY_PASSWORD",
  "docker-auth-file": "MOTTAINAI_AGENT_DOCKER_AUTH_FILE",
  "libvirt-uri": "MOTTAINAI_AGENT_LIBVIRT_URI",
  "libvirt-image-dir": "MOTTAINAI_AGENT_LIBVIRT_IMAGE_DIR",
  "libvirt-default-cpus": "MOTTAINAI_AGENT_LIBVIRT_DEFAULT_CPUS",
  "libvirt-max-cpus": "MOTTAINAI_AGENT_LIBVIRT_MAX_CPUS",
  "libvirt-default-memory": "MOTTAINAI_AGENT_LIBVIRT_DEFAULT_MEMORY",
  "libvirt-max-memory": "MOTTAINAI_AGENT_LIBVIRT_MAX_MEMORY",
  ...LXD_ENV,
};

const FILE_ALIASES: Partial<Record<ListKey, string>> = { queue: "queues", label: "labels", executor: "executors" };

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
  const flags = parsed.values as Partial<Record<ScalarKey | "config", string>> &
    Partial<Record<ListKey, string[]>> &
    Partial<Record<BooleanKey, boolean>>;
  const configFile = flags.config ?? (env.MOTTAINAI_AGENT_CONFIG || undefined);
  const configPath = configFile !== undefined ? resolve(cwd, configFile) : undefined;
  const file =
    configPath !== undefined
      ? readConfigFile(configPath, flags.config !== undefined ? "--config" : "MOTTAINAI_AGENT_CONFIG")
      : {};
  const fileBase = configPath !== undefined ? dirname(configPath) : cwd;

  const fileEntry = (key: Key): Raw<unknown> | undefined => {
    const alias = FILE_ALIASES[key as ListKey];
    const names = [...new Set([key.replaceAll("-", "_"), key, ...(alias !== undefined ? [alias] : [])])];
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
    const envName = ENV[key];
    const envValue = envName !== undefined ? env[envName] : undefined;
    if (envName !== undefined && envValue !== undefined && envValue.trim() !== "")
      return { value: envValue.split(",").map((item) => item.trim()), source: envName, base: cwd };
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
    if (typeof v === "object" && v !== null && (key === "queue" || key === "label")) {
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

  const boolean = (key: BooleanKey): Raw<boolean> | undefined => {
    if (flags[key] === true) return { value: true, source: `--${key}`, base: cwd };
    const parse = (source: string, v: unknown): Raw<boolean> => {
      if (v === true || v === false) return { value: v, source, base: cwd };
      const t = typeof v === "string" || typeof v === "number" ? String(v).trim().toLowerCase() : undefined;
      if (t !== undefined && ["true", "1", "yes", "on"].includes(t)) return { value: true, source, base: cwd };
      if (t !== undefined && ["false", "0", "no", "off"].includes(t)) return { value: false, source, base: cwd };
      throw new ConfigError(`${source}: expected true or false, got ${typeof v === "string" ? `"${v}"` : describe(v)}`);
    };
    const envName = ENV[key];
    const envValue = envName !== undefined ? env[envName] : undefined;
    if (envName !== undefined && envValue !== undefined && envValue !== "") return parse(envName, envValue);
    const f = fileEntry(key);
    return f === undefined ? undefined : parse(f.source, f.value);
  };

  const serverRaw = scalar("server");
  const servers = (serverRaw?.value ?? "http://127.0.0.1:9090")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (serverRaw) {
    if (servers.length === 0) throw new ConfigError(`${serverRaw.source}: expected at least one server URL`);
    for (const value of servers) {
      let url: URL | undefined;
      try {
        url = new URL(value);
      } catch {
        url = undefined;
      }
      if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || url.host === "") {
        throw new ConfigError(
          `${serverRaw.source}: expected an http:// or https:// URL such as "http://127.0.0.1:9090", got "${value}"`,
        );
      }
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

  const dockerPolicy = loadDockerPolicy(scalar, list, boolean);
  const dockerImageCache = loadDockerImageCache(scalar);
  const dockerRegistryAuth = loadDockerRegistryAuth(scalar);
  const libvirt = loadLibvirtConfig(scalar, executors.includes("libvirt"));
  const lxd = loadLxdConfig(scalar, list, boolean, (message) => new ConfigError(message));

  return {
    servers,
    registrationToken,
    name,
    stateDir,
    queues,
    capacity,
    labels,
    executors,
    logLevel,
    dockerPolicy,
    libvirt,
    lxd,
    ...(dockerHost !== undefined ? { dockerHost } : {}),
    ...(dockerImageCache !== undefined ? { dockerImageCache } : {}),
    ...(dockerRegistryAuth !== undefined ? { dockerRegistryAuth } : {}),
  };
}

/**
 * The registry credentials of `--docker-auth-file` (a Docker config.json; relative paths
 * resolve like the other paths), read and validated now; undefined when no file is given.
 */
function loadDockerRegistryAuth(scalar: (key: ScalarKey) => Raw<string> | undefined): DockerRegistryAuth | undefined {
  const raw = scalar("docker-auth-file");
  if (raw === undefined) return undefined;
  if (raw.value.trim() === "") throw new ConfigError(`${raw.source}: expected the path of a Docker config.json, got ""`);
  try {
    return readDockerAuthFile(resolve(raw.base, raw.value.trim()));
  } catch (err) {
    throw new ConfigError(`${raw.source}: ${(err as Error).message}`);
  }
}

/**
 * The docker executor's policy from the `--docker-*` settings (each value read through the
 * given accessors, which apply the precedence), validated: errors name the flag, variable or
 * key of the bad value.
 */
function loadDockerPolicy(
  scalar: (key: ScalarKey) => Raw<string> | undefined,
  list: (key: ListKey) => Raw<string[]> | undefined,
  boolean: (key: BooleanKey) => Raw<boolean> | undefined,
): DockerPolicy {
  const caps = (key: "docker-cap-add" | "docker-cap-drop"): string[] => {
    const raw = list(key);
    const result: string[] = [];
    for (const item of raw?.value ?? []) {
      const cap = item.trim().toUpperCase();
      if (!/^[A-Z][A-Z0-9_]*$/.test(cap))
        throw new ConfigError(`${raw?.source}: expected a capability name such as "NET_ADMIN" or "ALL", got "${item}"`);
      if (!result.includes(cap)) result.push(cap);
    }
    return result;
  };

  const networkRaw = scalar("docker-network");
  const networkMode = networkRaw?.value.trim() ?? "none";
  if (networkRaw && !/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/.test(networkMode))
    throw new ConfigError(`${networkRaw.source}: expected a network mode such as "none" or "host", got "${networkRaw.value}"`);

  const bindRaw = list("docker-bind-allow");
  const bindAllow: string[] = [];
  for (const item of bindRaw?.value ?? []) {
    const path = item.trim();
    try {
      checkHostPath(bindRaw?.source ?? "--docker-bind-allow", path);
    } catch (err) {
      throw new ConfigError((err as Error).message);
    }
    if (!bindAllow.includes(path)) bindAllow.push(path);
  }

  const number = <T>(key: ScalarKey, parse: (text: string) => T | undefined, expected: string): Raw<T> | undefined => {
    const raw = scalar(key);
    if (raw === undefined) return undefined;
    const value = parse(raw.value);
    if (value === undefined) throw new ConfigError(`${raw.source}: expected ${expected}, got "${raw.value}"`);
    return { ...raw, value };
  };
  const cpus = "a positive number of cpus such as 2 or 0.5";
  const size = 'a size such as "512m" or "2g"';
  const defaultCpus = number("docker-default-cpus", parseCpus, cpus);
  const maxCpus = number("docker-max-cpus", parseCpus, cpus);
  const defaultMemory = number("docker-default-memory", parseMemorySize, size);
  const maxMemory = number("docker-max-memory", parseMemorySize, size);
  for (const raw of [defaultMemory, maxMemory]) {
    if (raw && raw.value < MIN_MEMORY)
      throw new ConfigError(`${raw.source}: ${formatMemorySize(raw.value)} is below Docker's minimum of 6m`);
  }
  if (defaultCpus && maxCpus && defaultCpus.value > maxCpus.value)
    throw new ConfigError(
      `${defaultCpus.source}: ${defaultCpus.value} is above the maximum of ${maxCpus.value} (${maxCpus.source})`,
    );
  if (defaultMemory && maxMemory && defaultMemory.value > maxMemory.value) {
    throw new ConfigError(
      `${defaultMemory.source}: ${formatMemorySize(defaultMemory.value)} is above the maximum of ${formatMemorySize(maxMemory.value)} (${maxMemory.source})`,
    );
  }

  return {
    privileged: boolean("docker-privileged")?.value ?? false,
    capAdd: caps("docker-cap-add"),
    capDrop: caps("docker-cap-drop"),
    networkMode,
    bindAllow,
    ...(defaultCpus ? { defaultCpus: defaultCpus.value } : {}),
    ...(maxCpus ? { maxCpus: maxCpus.value } : {}),
    ...(defaultMemory ? { defaultMemory: defaultMemory.value } : {}),
    ...(maxMemory ? { maxMemory: maxMemory.value } : {}),
  };
}

/**
 * The image-cache registry (`--docker-cache-registry HOST:PORT[/PREFIX]`) and its optional
 * credentials; undefined when no registry is given. Credentials without a registry are an error.
 */
function loadDockerImageCache(scalar: (key: ScalarKey) => Raw<string> | undefined): DockerImageCacheOptions | undefined {
  const registryRaw = scalar("docker-cache-registry");
  const usernameRaw = scalar("docker-registry-username");
  const passwordRaw = scalar("docker-registry-password");
  const registry = registryRaw?.value.trim().replace(/\/+$/, "") ?? "";
  if (registry === "") {
    const orphan = usernameRaw ?? passwordRaw;
    if (orphan) throw new ConfigError(`${orphan.source}: registry credentials need --docker-cache-registry`);
    return undefined;
  }
  if (!/^[A-Za-z0-9.-]+(:\d{1,5})?(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/.test(registry)) {
    throw new ConfigError(
      `${registryRaw?.source}: expected HOST:PORT with an optional lower-case /prefix, such as "127.0.0.1:5000", got "${registryRaw?.value}"`,
    );
  }
  if (passwordRaw && !usernameRaw) throw new ConfigError(`${passwordRaw.source}: a registry password needs a username`);
  const username = usernameRaw?.value.trim();
  return {
    registry,
    ...(username ? { username, password: passwordRaw?.value ?? "" } : {}),
  };
}

/**
 * The libvirt executor's settings from the `--libvirt-*` values, validated: errors name the
 * flag, variable or key. The image directory is required when the executor is `offered`.
 */
function loadLibvirtConfig(scalar: (key: ScalarKey) => Raw<string> | undefined, offered: boolean): LibvirtConfig {
  const uriRaw = scalar("libvirt-uri");
  const uri = uriRaw?.value.trim() || "qemu:///system";
  if (uriRaw && !/^[a-z][a-z0-9+]*:\/\/[^\s]*$/.test(uri))
    throw new ConfigError(`${uriRaw.source}: expected a libvirt URI such as "qemu:///system", got "${uriRaw.value}"`);
  const dirRaw = scalar("libvirt-image-dir");
  if (dirRaw && dirRaw.value.trim() === "") throw new ConfigError(`${dirRaw.source}: expected a directory, got ""`);
  const imageDir = dirRaw ? resolve(dirRaw.base, dirRaw.value.trim()) : undefined;
  if (offered && imageDir === undefined)
    throw new ConfigError(
      "--libvirt-image-dir: the libvirt executor needs the directory of its VM images (MOTTAINAI_AGENT_LIBVIRT_IMAGE_DIR)",
    );
  const count = (key: ScalarKey): Raw<number> | undefined => {
    const raw = scalar(key);
    if (raw === undefined) return undefined;
    const t = raw.value.trim();
    if (!/^\d+$/.test(t) || Number(t) < 1 || Number(t) > 1024)
      throw new ConfigError(`${raw.source}: expected a whole number of vCPUs such as 2, got "${raw.value}"`);
    return { ...raw, value: Number(t) };
  };
  const memory = (key: ScalarKey): Raw<number> | undefined => {
    const raw = scalar(key);
    if (raw === undefined) return undefined;
    const mib = parseMemoryMiB(raw.value);
    if (mib === undefined)
      throw new ConfigError(`${raw.source}: expected MiB or a size such as "512m" or "4g", got "${raw.value}"`);
    if (mib < MIN_VM_MEMORY_MIB)
      throw new ConfigError(`${raw.source}: ${raw.value.trim()} is below the minimum of ${MIN_VM_MEMORY_MIB} MiB`);
    return { ...raw, value: mib };
  };
  const defaultCpus = count("libvirt-default-cpus");
  const maxCpus = count("libvirt-max-cpus");
  const defaultMemory = memory("libvirt-default-memory");
  const maxMemory = memory("libvirt-max-memory");
  if (defaultCpus && maxCpus && defaultCpus.value > maxCpus.value)
    throw new ConfigError(
      `${defaultCpus.source}: ${defaultCpus.value} is above the maximum of ${maxCpus.value} (${maxCpus.source})`,
    );
  if (defaultMemory && maxMemory && defaultMemory.value > maxMemory.value)
    throw new ConfigError(
      `${defaultMemory.source}: ${defaultMemory.value} MiB is above the maximum of ${maxMemory.value} MiB (${maxMemory.source})`,
    );
  return {
    uri,
    ...(imageDir !== undefined ? { imageDir } : {}),
    ...(defaultCpus ? { defaultCpus: defaultCpus.value } : {}),
    ...(maxCpus ? { maxCpus: maxCpus.value } : {}),
    ...(defaultMemory ? { defaultMemoryMiB: defaultMemory.value } : {}),
    ...(maxMemory ? { maxMemoryMiB: maxMemory.value } : {}),
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
    const alias = FILE_ALIASES[key as ListKey];
    if (alias !== undefined) known.add(alias);
  }
  for (const key of Object.keys(doc)) {
    if (!known.has(key)) throw new ConfigError(`${path}: unknown setting "${key}"`);
  }
  return doc as Record<string, unknown>;
}
