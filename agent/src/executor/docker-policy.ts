import { lstat, realpath } from "node:fs/promises";
import { isAbsolute, posix } from "node:path";
import { resourceRequest } from "./task-environment.js";

/**
 * What the agent allows the containers of its docker tasks (issue 4, "policy belongs to the
 * agent, never to a task"). Set from the agent's configuration; a task can only ask for cpu
 * and memory limits within the maximums (`CPU=`/`RAM=` in its environment) and for bind mounts
 * under `bindAllow`.
 */
export interface DockerPolicy {
  /** Run containers privileged. Default false. */
  privileged: boolean;
  /** Capabilities added to every container, e.g. ["NET_ADMIN"]. Default none. */
  capAdd: string[];
  /** Capabilities dropped from every container, e.g. ["CHOWN"]. Default none. */
  capDrop: string[];
  /** Container network mode ("none", "host", a network name). Default "none" (loopback only). */
  networkMode: string;
  /**
   * Absolute, normalized host path prefixes a task's `binds` may mount from. Default empty:
   * no task bind is allowed.
   */
  bindAllow: string[];
  /** CPUs a container gets when the task asks for none (`CPU=`). Absent: no limit. */
  defaultCpus?: number;
  /** Most CPUs a task may ask for. Absent: no maximum. */
  maxCpus?: number;
  /** Memory in bytes a container gets when the task asks for none (`RAM=`). Absent: no limit. */
  defaultMemory?: number;
  /** Most memory in bytes a task may ask for. Absent: no maximum. */
  maxMemory?: number;
}

/** The policy of an agent configured with nothing: unprivileged, network none, no binds, no limits. */
export const DEFAULT_DOCKER_POLICY: Readonly<DockerPolicy> = Object.freeze({
  privileged: false,
  capAdd: [],
  capDrop: [],
  networkMode: "none",
  bindAllow: [],
});

const SIZE_UNITS: Record<string, number> = { "": 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/**
 * Parses a memory size as Docker writes them: a number of bytes, or with a unit `b`, `k`,
 * `m`, `g`, `t` (powers of 1024, case-insensitive, optionally followed by `b`: "512m",
 * "2g", "1.5GB"). Returns the whole number of bytes, or undefined when `text` is not a size.
 */
export function parseMemorySize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)b?$/i.exec(text.trim());
  if (!m) return undefined;
  const bytes = Math.floor(Number(m[1]) * (SIZE_UNITS[(m[2] ?? "").toLowerCase()] ?? 1));
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : undefined;
}

/** A byte count in the largest unit that divides it exactly: 1073741824 → "1g", 1000 → "1000". */
export function formatMemorySize(bytes: number): string {
  for (const unit of ["t", "g", "m", "k"]) {
    const size = SIZE_UNITS[unit] as number;
    if (bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}

/**
 * Parses a number of CPUs ("2", "0.5"): a positive number with at most 9 decimals (Docker's
 * NanoCpus granularity). Returns undefined when `text` is not one.
 */
export function parseCpus(text: string): number | undefined {
  const t = text.trim();
  if (!/^(\d+(?:\.\d{1,9})?|\.\d{1,9})$/.test(t)) return undefined;
  const n = Number(t);
  return n > 0 && Number.isFinite(n) ? n : undefined;
}

/** Docker's smallest memory limit (6 MiB); smaller values are refused by the engine. */
export const MIN_MEMORY = 6 * 1024 * 1024;

/** Resource limits of one container, as the Engine API takes them. */
export interface ContainerLimits {
  /** CPU quota in units of 1e-9 CPUs (HostConfig.NanoCpus). Absent: no limit. */
  nanoCpus?: number;
  /** Memory limit in bytes (HostConfig.Memory). Absent: no limit. */
  memory?: number;
}

/**
 * The cpu and memory limits of a task's container: what the task asks for with `CPU=` and
 * `RAM=` in its `environment` entries (the last entry of a name wins), else the policy's
 * defaults. Throws an Error naming the variable when a value is not a number/size or is above
 * the policy's maximum, e.g. `RAM: 2g is above this agent's maximum of 1g`.
 */
export function containerLimits(policy: DockerPolicy, environment: readonly string[]): ContainerLimits {
  const { cpu: cpuText, ram: ramText } = resourceRequest(environment);
  const limits: ContainerLimits = {};

  let cpus = policy.defaultCpus;
  if (cpuText !== undefined && cpuText.trim() !== "") {
    const asked = parseCpus(cpuText);
    if (asked === undefined) throw new Error(`CPU: expected a positive number of CPUs such as "2" or "0.5", got "${cpuText}"`);
    if (policy.maxCpus !== undefined && asked > policy.maxCpus)
      throw new Error(`CPU: ${cpuText.trim()} is above this agent's maximum of ${policy.maxCpus}`);
    cpus = asked;
  }
  if (cpus !== undefined) limits.nanoCpus = Math.round(cpus * 1e9);

  let memory = policy.defaultMemory;
  if (ramText !== undefined && ramText.trim() !== "") {
    const asked = parseMemorySize(ramText);
    if (asked === undefined) throw new Error(`RAM: expected a size such as "512m" or "2g", got "${ramText}"`);
    if (policy.maxMemory !== undefined && asked > policy.maxMemory)
      throw new Error(`RAM: ${ramText.trim()} is above this agent's maximum of ${formatMemorySize(policy.maxMemory)}`);
    if (asked < MIN_MEMORY) throw new Error(`RAM: ${ramText.trim()} is below Docker's minimum of 6m`);
    memory = asked;
  }
  if (memory !== undefined) limits.memory = memory;
  return limits;
}

/**
 * Checks that `path` is absolute and normalized (no `.`/`..` segments, no repeated or trailing
 * slash, no NUL) and returns it; throws an Error starting with `field: ` otherwise. Used for
 * the policy's allowed prefixes and for the host side of task binds.
 */
export function checkHostPath(field: string, path: string): string {
  if (path.includes("\0")) throw new Error(`${field}: a path must not contain NUL`);
  if (!isAbsolute(path)) throw new Error(`${field}: ${path} is not an absolute path`);
  if (posix.normalize(path) !== path || (path.length > 1 && path.endsWith("/")))
    throw new Error(`${field}: ${path} is not a normalized path (no "..", "." or repeated slashes)`);
  return path;
}

function under(path: string, prefix: string): boolean {
  return prefix === "/" || path === prefix || path.startsWith(`${prefix}/`);
}

/** `path` with symbolic links resolved, for the part of it that exists (Docker creates the rest). */
async function resolveExisting(path: string): Promise<string> {
  let existing = path;
  const rest: string[] = [];
  for (;;) {
    try {
      await lstat(existing);
      break;
    } catch {
      if (existing === "/") break;
      rest.unshift(posix.basename(existing));
      existing = posix.dirname(existing);
    }
  }
  return posix.join(await realpath(existing), ...rest);
}

/**
 * Checks a task's `binds` (`host:container[:ro|rw]`) against the policy and returns them as
 * HostConfig.Binds entries (with the host path's symbolic links resolved). The host path must be absolute, normalized and under one of
 * `policy.bindAllow`, also once its symbolic links are resolved; the container path absolute.
 * Throws an Error naming the entry and the path, e.g.
 * `binds[1]: /etc is not under an allowed bind path (allowed: /srv/cache)`.
 */
export async function checkBinds(policy: DockerPolicy, binds: readonly string[]): Promise<string[]> {
  const result: string[] = [];
  const allowed = policy.bindAllow.length > 0 ? policy.bindAllow.join(", ") : "none";
  for (const [i, bind] of binds.entries()) {
    const field = `binds[${i}]`;
    const parts = bind.split(":");
    const [host = "", container = "", mode] = parts;
    if (
      parts.length < 2 ||
      parts.length > 3 ||
      host === "" ||
      container === "" ||
      (mode !== undefined && !/^(ro|rw)$/.test(mode))
    )
      throw new Error(`${field}: expected host:container[:ro|rw], got "${bind}"`);
    checkHostPath(field, host);
    if (!posix.isAbsolute(container)) throw new Error(`${field}: the container path ${container} is not absolute`);
    if (!policy.bindAllow.some((prefix) => under(host, prefix)))
      throw new Error(`${field}: ${host} is not under an allowed bind path (allowed: ${allowed})`);
    const real = await resolveExisting(host);
    const realPrefixes = await Promise.all(policy.bindAllow.map((prefix) => resolveExisting(prefix)));
    if (!realPrefixes.some((prefix) => under(real, prefix)))
      throw new Error(`${field}: ${host} resolves to ${real}, which is not under an allowed bind path (allowed: ${allowed})`);
    result.push(mode !== undefined ? `${real}:${container}:${mode}` : `${real}:${container}`);
  }
  return result;
}
