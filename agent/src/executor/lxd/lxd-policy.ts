import { splitEnvironmentEntry } from "@mottainai/proto";
import { checkBinds, DEFAULT_DOCKER_POLICY, formatMemorySize, parseCpus, parseMemorySize } from "../docker-policy.js";
import { resourceRequest } from "../task-environment.js";

/**
 * What the agent allows the containers of its lxd tasks (issue 19: policy belongs to the agent,
 * never to a task). A task asks, in its `environment`, for `CPU=`/`RAM=` limits within the
 * maximums, for a privileged container with `LXD_PRIVILEGED=true` and for nesting with
 * `LXD_NESTING=true`; its `binds` become disk devices. Each is refused, naming the key, unless
 * this policy allows it.
 */
export interface LxdPolicy {
  /** Tasks may ask for `security.privileged` (`--lxd-allow-privileged`). Default false. */
  allowPrivileged: boolean;
  /** Tasks may ask for `security.nesting` (`--lxd-allow-nesting`). Default false. */
  allowNesting: boolean;
  /**
   * Absolute, normalized host path prefixes a task's `binds` may attach as disk devices
   * (`--lxd-bind-allow`). Default empty: no device is allowed.
   */
  bindAllow: string[];
  /** LXD profiles every container gets (`--lxd-profile`). Default ["default"] (its root disk). */
  profiles: string[];
  /** CPUs a container gets when the task asks for none (`CPU=`). Absent: no limit. */
  defaultCpus?: number;
  /** Most CPUs a task may ask for (`--lxd-max-cpus`). Absent: no maximum. */
  maxCpus?: number;
  /** Memory in bytes a container gets when the task asks for none (`RAM=`). Absent: no limit. */
  defaultMemory?: number;
  /** Most memory in bytes a task may ask for (`--lxd-max-memory`). Absent: no maximum. */
  maxMemory?: number;
}

/** The policy of an agent configured with nothing: unprivileged, no nesting, no devices, no limits, profile default. */
export const DEFAULT_LXD_POLICY: Readonly<LxdPolicy> = Object.freeze({
  allowPrivileged: false,
  allowNesting: false,
  bindAllow: [],
  profiles: ["default"],
});

/** Smallest memory limit accepted: below it even a busybox shell is killed on start. */
export const MIN_LXD_MEMORY = 16 * 1024 * 1024;

/** The instance configuration and devices a task's container is created with. */
export interface LxdInstanceSettings {
  /** `config` keys: security.privileged, security.nesting, limits.cpu(.allowance), limits.memory. */
  config: Record<string, string>;
  /** `devices`: one disk device `bind<N>` per task bind. */
  devices: Record<string, Record<string, string>>;
}

/** The last value of `name` among `K=V` entries, undefined when absent. */
function lastEntry(environment: readonly string[], name: string): string | undefined {
  let value: string | undefined;
  for (const entry of environment) {
    const [key, v] = splitEnvironmentEntry(entry);
    if (key === name) value = v;
  }
  return value;
}

/** Parses a yes/no request: true/1/yes/on, false/0/no/off or empty; throws naming `key` otherwise. */
function flag(key: string, value: string | undefined): boolean {
  if (value === undefined) return false;
  const v = value.trim().toLowerCase();
  if (["true", "1", "yes", "on"].includes(v)) return true;
  if (["false", "0", "no", "off", ""].includes(v)) return false;
  throw new Error(`${key}: expected true or false, got "${value}"`);
}

/**
 * The settings of a task's container under `policy`: `CPU=` (a whole number pins that many
 * CPUs with `limits.cpu`, a fraction becomes `limits.cpu.allowance`, e.g. "0.5" → "50ms/100ms")
 * and `RAM=` (a size such as "512m", as for docker) within the maximums, else the defaults;
 * `LXD_PRIVILEGED` and `LXD_NESTING` only when allowed; `binds` (`host:container[:ro|rw]`)
 * under `bindAllow`, as disk devices. Throws before anything is created, naming the key, e.g.
 * `LXD_PRIVILEGED: this agent does not allow privileged containers (--lxd-allow-privileged)`.
 */
export async function lxdInstanceSettings(
  policy: LxdPolicy,
  spec: { environment: readonly string[]; binds: readonly string[] },
): Promise<LxdInstanceSettings> {
  const config: Record<string, string> = {};
  const { cpu: cpuText, ram: ramText } = resourceRequest(spec.environment);

  let cpus = policy.defaultCpus;
  if (cpuText !== undefined && cpuText.trim() !== "") {
    const asked = parseCpus(cpuText);
    if (asked === undefined) throw new Error(`CPU: expected a positive number of CPUs such as "2" or "0.5", got "${cpuText}"`);
    if (policy.maxCpus !== undefined && asked > policy.maxCpus)
      throw new Error(`CPU: ${cpuText.trim()} is above this agent's maximum of ${policy.maxCpus}`);
    cpus = asked;
  }
  if (cpus !== undefined) {
    if (Number.isInteger(cpus)) config["limits.cpu"] = String(cpus);
    else config["limits.cpu.allowance"] = `${Math.max(1, Math.round(cpus * 100))}ms/100ms`;
  }

  let memory = policy.defaultMemory;
  if (ramText !== undefined && ramText.trim() !== "") {
    const asked = parseMemorySize(ramText);
    if (asked === undefined) throw new Error(`RAM: expected a size such as "512m" or "2g", got "${ramText}"`);
    if (policy.maxMemory !== undefined && asked > policy.maxMemory)
      throw new Error(`RAM: ${ramText.trim()} is above this agent's maximum of ${formatMemorySize(policy.maxMemory)}`);
    if (asked < MIN_LXD_MEMORY) throw new Error(`RAM: ${ramText.trim()} is below the minimum of 16m`);
    memory = asked;
  }
  if (memory !== undefined) config["limits.memory"] = `${memory}B`;

  if (flag("LXD_PRIVILEGED", lastEntry(spec.environment, "LXD_PRIVILEGED"))) {
    if (!policy.allowPrivileged)
      throw new Error("LXD_PRIVILEGED: this agent does not allow privileged containers (--lxd-allow-privileged)");
    config["security.privileged"] = "true";
  }
  if (flag("LXD_NESTING", lastEntry(spec.environment, "LXD_NESTING"))) {
    if (!policy.allowNesting) throw new Error("LXD_NESTING: this agent does not allow nested containers (--lxd-allow-nesting)");
    config["security.nesting"] = "true";
  }

  const devices: Record<string, Record<string, string>> = {};
  let binds: string[];
  try {
    binds = await checkBinds({ ...DEFAULT_DOCKER_POLICY, bindAllow: policy.bindAllow }, spec.binds);
  } catch (err) {
    const message = (err as Error).message;
    throw /not under an allowed bind path/.test(message) ? new Error(`${message} (--lxd-bind-allow)`) : err;
  }
  for (const [i, bind] of binds.entries()) {
    const [source = "", path = "", mode] = bind.split(":");
    devices[`bind${i}`] = { type: "disk", source, path, ...(mode === "ro" ? { readonly: "true" } : {}) };
  }
  return { config, devices };
}
