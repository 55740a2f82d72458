import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { checkHostPath, formatMemorySize, parseCpus, parseMemorySize } from "../docker-policy.js";
import { DEFAULT_LXD_SOCKET, type LxdEndpoint } from "./lxd-client.js";
import type { LxdImageRemote } from "./lxd-executor.js";
import { MIN_LXD_MEMORY, type LxdPolicy } from "./lxd-policy.js";

/** The lxd executor's settings (`--lxd-*`), as the agent's configuration gives them. */
export interface LxdConfig {
  /** Where LXD is: its unix socket (default DEFAULT_LXD_SOCKET) or a remote https:// URL with a client certificate. */
  endpoint: LxdEndpoint;
  /** What tasks' containers may be and use. */
  policy: LxdPolicy;
  /** Image servers tasks may name as `<remote>:<alias>` (`--lxd-remote NAME=URL`). Default none. */
  remotes: Record<string, LxdImageRemote>;
}

/** One setting as the agent's configuration loader found it: its value, where it came from, the base of relative paths. */
export interface LxdRawSetting<T> {
  value: T;
  source: string;
  base: string;
}

/** The `--lxd-*` flags of the agent, as its usage text lists them. */
export const LXD_USAGE = `  --lxd-socket PATH          lxd executor's LXD socket (default ${DEFAULT_LXD_SOCKET}) MOTTAINAI_AGENT_LXD_SOCKET
  --lxd-url URL              a remote LXD (https://host:8443) instead of the socket MOTTAINAI_AGENT_LXD_URL
  --lxd-cert FILE            PEM client certificate for --lxd-url (trusted by it)  MOTTAINAI_AGENT_LXD_CERT
  --lxd-key FILE             PEM key of --lxd-cert                                 MOTTAINAI_AGENT_LXD_KEY
  --lxd-ca FILE              PEM CA or server certificate --lxd-url is checked against MOTTAINAI_AGENT_LXD_CA
  --lxd-remote NAME=URL      image server tasks may name as NAME:ALIAS, repeatable MOTTAINAI_AGENT_LXD_REMOTE
  --lxd-profile NAME         profile of every container, repeatable (default default) MOTTAINAI_AGENT_LXD_PROFILE
  --lxd-allow-privileged     tasks may ask for a privileged container (LXD_PRIVILEGED=true) MOTTAINAI_AGENT_LXD_ALLOW_PRIVILEGED
  --lxd-allow-nesting        tasks may ask for nesting (LXD_NESTING=true)         MOTTAINAI_AGENT_LXD_ALLOW_NESTING
  --lxd-bind-allow PATH      host path prefix task binds may attach, repeatable (default: none) MOTTAINAI_AGENT_LXD_BIND_ALLOW
  --lxd-default-cpus N       cpus of a container whose task asks for none (CPU=)   MOTTAINAI_AGENT_LXD_DEFAULT_CPUS
  --lxd-max-cpus N           most cpus a task may ask for                          MOTTAINAI_AGENT_LXD_MAX_CPUS
  --lxd-default-memory SIZE  memory of a container whose task asks for none (RAM=) MOTTAINAI_AGENT_LXD_DEFAULT_MEMORY
  --lxd-max-memory SIZE      most memory a task may ask for, e.g. 2g               MOTTAINAI_AGENT_LXD_MAX_MEMORY
`;

/** Scalar `--lxd-*` settings. */
export type LxdScalarKey =
  | "lxd-socket"
  | "lxd-url"
  | "lxd-cert"
  | "lxd-key"
  | "lxd-ca"
  | "lxd-default-cpus"
  | "lxd-max-cpus"
  | "lxd-default-memory"
  | "lxd-max-memory";
/** Repeatable `--lxd-*` settings. */
export type LxdListKey = "lxd-remote" | "lxd-profile" | "lxd-bind-allow";
/** Boolean `--lxd-*` settings. */
export type LxdBooleanKey = "lxd-allow-privileged" | "lxd-allow-nesting";

/** The parseArgs options of the `--lxd-*` flags. */
export const LXD_OPTIONS = {
  "lxd-socket": { type: "string" },
  "lxd-url": { type: "string" },
  "lxd-cert": { type: "string" },
  "lxd-key": { type: "string" },
  "lxd-ca": { type: "string" },
  "lxd-remote": { type: "string", multiple: true },
  "lxd-profile": { type: "string", multiple: true },
  "lxd-allow-privileged": { type: "boolean" },
  "lxd-allow-nesting": { type: "boolean" },
  "lxd-bind-allow": { type: "string", multiple: true },
  "lxd-default-cpus": { type: "string" },
  "lxd-max-cpus": { type: "string" },
  "lxd-default-memory": { type: "string" },
  "lxd-max-memory": { type: "string" },
} as const;

/** `MOTTAINAI_AGENT_LXD_*` variable of each `--lxd-*` flag. */
export const LXD_ENV: Readonly<Record<keyof typeof LXD_OPTIONS, string>> = Object.fromEntries(
  Object.keys(LXD_OPTIONS).map((key) => [key, `MOTTAINAI_AGENT_${key.toUpperCase().replaceAll("-", "_")}`]),
) as Record<keyof typeof LXD_OPTIONS, string>;

/**
 * The lxd executor's settings from the `--lxd-*` values (each read through the loader's
 * accessors, which apply its precedence), validated; `fail(message)` makes the loader's error,
 * and every message names the flag, variable or key of the bad value. Certificate files are
 * read now.
 */
export function loadLxdConfig(
  scalar: (key: LxdScalarKey) => LxdRawSetting<string> | undefined,
  list: (key: LxdListKey) => LxdRawSetting<string[]> | undefined,
  boolean: (key: LxdBooleanKey) => LxdRawSetting<boolean> | undefined,
  fail: (message: string) => Error,
): LxdConfig {
  const socketRaw = scalar("lxd-socket");
  if (socketRaw && socketRaw.value.trim() === "") throw fail(`${socketRaw.source}: expected a socket path, got ""`);
  const urlRaw = scalar("lxd-url");
  const url = urlRaw?.value.trim() || undefined;
  if (urlRaw && url !== undefined && !/^https:\/\/[^\s/]+(\/)?$/.test(url))
    throw fail(`${urlRaw.source}: expected https://host:port of a remote LXD, got "${urlRaw.value}"`);
  const pem = (key: "lxd-cert" | "lxd-key" | "lxd-ca"): string | undefined => {
    const raw = scalar(key);
    if (raw === undefined) return undefined;
    if (url === undefined) throw fail(`${raw.source}: only used with --lxd-url`);
    const path = resolve(raw.base, raw.value.trim());
    try {
      return readFileSync(path, "utf8");
    } catch (err) {
      throw fail(`${raw.source}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const cert = pem("lxd-cert");
  const key = pem("lxd-key");
  const ca = pem("lxd-ca");
  if (url !== undefined && (cert === undefined || key === undefined))
    throw fail(`${urlRaw?.source}: a remote LXD needs a trusted client certificate: give --lxd-cert and --lxd-key`);
  const endpoint: LxdEndpoint =
    url !== undefined
      ? { url, ...(cert ? { cert } : {}), ...(key ? { key } : {}), ...(ca ? { ca } : {}) }
      : { socketPath: socketRaw ? resolve(socketRaw.base, socketRaw.value.trim()) : DEFAULT_LXD_SOCKET };

  const remotes: Record<string, LxdImageRemote> = {};
  const remoteRaw = list("lxd-remote");
  for (const item of remoteRaw?.value ?? []) {
    const m = /^([a-z0-9][a-z0-9_-]*)=(https:\/\/\S+)$/i.exec(item.trim());
    if (!m) throw fail(`${remoteRaw?.source}: expected NAME=https://URL of an image server, got "${item}"`);
    remotes[m[1] as string] = { server: m[2] as string };
  }

  const profileRaw = list("lxd-profile");
  const profiles: string[] = [];
  for (const item of profileRaw?.value ?? ["default"]) {
    const name = item.trim();
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) throw fail(`${profileRaw?.source}: expected a profile name, got "${item}"`);
    if (!profiles.includes(name)) profiles.push(name);
  }

  const bindRaw = list("lxd-bind-allow");
  const bindAllow: string[] = [];
  for (const item of bindRaw?.value ?? []) {
    const path = item.trim();
    try {
      checkHostPath(bindRaw?.source ?? "--lxd-bind-allow", path);
    } catch (err) {
      throw fail((err as Error).message);
    }
    if (!bindAllow.includes(path)) bindAllow.push(path);
  }

  const number = (
    key: LxdScalarKey,
    parse: (text: string) => number | undefined,
    expected: string,
  ): LxdRawSetting<number> | undefined => {
    const raw = scalar(key);
    if (raw === undefined) return undefined;
    const value = parse(raw.value);
    if (value === undefined) throw fail(`${raw.source}: expected ${expected}, got "${raw.value}"`);
    return { ...raw, value };
  };
  const cpus = "a positive number of cpus such as 2 or 0.5";
  const size = 'a size such as "512m" or "2g"';
  const defaultCpus = number("lxd-default-cpus", parseCpus, cpus);
  const maxCpus = number("lxd-max-cpus", parseCpus, cpus);
  const defaultMemory = number("lxd-default-memory", parseMemorySize, size);
  const maxMemory = number("lxd-max-memory", parseMemorySize, size);
  for (const raw of [defaultMemory, maxMemory])
    if (raw && raw.value < MIN_LXD_MEMORY)
      throw fail(`${raw.source}: ${formatMemorySize(raw.value)} is below the minimum of 16m`);
  if (defaultCpus && maxCpus && defaultCpus.value > maxCpus.value)
    throw fail(`${defaultCpus.source}: ${defaultCpus.value} is above the maximum of ${maxCpus.value} (${maxCpus.source})`);
  if (defaultMemory && maxMemory && defaultMemory.value > maxMemory.value)
    throw fail(
      `${defaultMemory.source}: ${formatMemorySize(defaultMemory.value)} is above the maximum of ${formatMemorySize(maxMemory.value)} (${maxMemory.source})`,
    );

  return {
    endpoint,
    remotes,
    policy: {
      allowPrivileged: boolean("lxd-allow-privileged")?.value ?? false,
      allowNesting: boolean("lxd-allow-nesting")?.value ?? false,
      bindAllow,
      profiles,
      ...(defaultCpus ? { defaultCpus: defaultCpus.value } : {}),
      ...(maxCpus ? { maxCpus: maxCpus.value } : {}),
      ...(defaultMemory ? { defaultMemory: defaultMemory.value } : {}),
      ...(maxMemory ? { maxMemory: maxMemory.value } : {}),
    },
  };
}
