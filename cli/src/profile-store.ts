import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { parse, stringify } from "yaml";

/** Server used when neither a flag, the environment nor a profile names one. */
export const DEFAULT_SERVER = "http://127.0.0.1:9090";

/** File name of the profile store inside the configuration directory. */
export const PROFILES_FILE_NAME = "profiles.yaml";

/** A named server and, optionally, the API token to use with it. */
export interface Profile {
  /** Base URL of the server, e.g. `https://ci.example.org`. */
  server: string;
  /** API token sent as `authorization: Bearer <token>`; absent for anonymous access. */
  token?: string;
}

/**
 * Contents of `profiles.yaml`: `{current: <name>, profiles: {<name>: {server, token}}}`.
 * `current` is absent when no profile is selected (none created yet, or the current one removed).
 */
export interface ProfilesFile {
  current?: string;
  profiles: Record<string, Profile>;
}

/** Profile names: a letter or digit, then letters, digits, `.`, `_` or `-`. */
const profileNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * The profiles of one user, in `<configDir>/profiles.yaml`. The file holds tokens, so it is
 * written with mode 0600 (its directory is created 0700) and atomically: a temporary file in
 * the same directory is written, flushed and renamed over the old one, so a crash or a
 * concurrent reader never sees half a file. Concurrent writers: the last rename wins.
 */
export class ProfileStore {
  /** Path of `profiles.yaml`. */
  readonly path: string;

  constructor(configDir: string) {
    this.path = join(configDir, PROFILES_FILE_NAME);
  }

  /** Reads the file; a missing file is an empty store. Throws, naming the file, when malformed. */
  async read(): Promise<ProfilesFile> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        return { profiles: {} };
      }
      throw error;
    }
    return parseProfilesFile(text, this.path);
  }

  /** Replaces the file atomically with `file`, mode 0600. */
  async write(file: ProfilesFile): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    const temporary = `${this.path}.${randomBytes(6).toString("hex")}.tmp`;
    try {
      const handle = await open(temporary, "wx", 0o600);
      try {
        await handle.chmod(0o600);
        await handle.writeFile(stringifyProfilesFile(file), "utf8");
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temporary, this.path);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
  }

  /**
   * Adds profile `name`. It becomes current when `use` is set or when no profile is current
   * (the first one created, or the first after the current one was removed).
   * Throws when the name is invalid or taken, or the server is not an http(s) URL.
   */
  async create(name: string, profile: Profile, options: { use?: boolean } = {}): Promise<ProfilesFile> {
    if (!profileNamePattern.test(name)) {
      throw new Error(`invalid profile name "${name}": use letters, digits, ".", "_" and "-"`);
    }
    checkServerUrl(profile.server);
    const file = await this.read();
    if (Object.hasOwn(file.profiles, name)) {
      throw new Error(`profile "${name}" already exists`);
    }
    file.profiles[name] = profile.token ? { server: profile.server, token: profile.token } : { server: profile.server };
    if (options.use || file.current === undefined) {
      file.current = name;
    }
    await this.write(file);
    return file;
  }

  /** Makes profile `name` current; throws when it does not exist. */
  async use(name: string): Promise<ProfilesFile> {
    const file = await this.read();
    requireProfile(file, name);
    file.current = name;
    await this.write(file);
    return file;
  }

  /**
   * Removes profile `name`; throws when it does not exist. Removing the current profile leaves
   * none current: commands then use the default server until `profile use` picks one.
   */
  async remove(name: string): Promise<ProfilesFile> {
    const file = await this.read();
    requireProfile(file, name);
    delete file.profiles[name];
    if (file.current === name) {
      delete file.current;
    }
    await this.write(file);
    return file;
  }
}

/** Creates the {@link ProfileStore} kept in `configDir` (see `CliSettings.configDir`). */
export function createProfileStore(configDir: string): ProfileStore {
  return new ProfileStore(configDir);
}

/** Connection settings given on the command line (`--server`, `--token`, `--profile`) or by the environment. */
export interface ConnectionOverrides {
  server?: string;
  token?: string;
  profile?: string;
}

/** Where a command connects to and with which token. */
export interface Connection {
  /** Base URL of the server. */
  server: string;
  /** API token; undefined for anonymous requests. */
  token?: string;
}

/**
 * Resolves server and token for a command, each on its own, by precedence: flags, then the
 * environment (MOTTAINAI_SERVER/MOTTAINAI_TOKEN), then the profile named by `--profile` or
 * MOTTAINAI_PROFILE, then the current profile, then {@link DEFAULT_SERVER} with no token.
 * A profile's token is only sent to that profile's own server: when the server comes from a
 * flag or the environment and differs, the profile's token is dropped rather than leaked.
 * Throws when an explicitly named profile does not exist.
 */
export function resolveConnection(flags: ConnectionOverrides, environment: ConnectionOverrides, file: ProfilesFile): Connection {
  const explicitProfile = nonEmpty(flags.profile) ?? nonEmpty(environment.profile);
  if (explicitProfile !== undefined) {
    requireProfile(file, explicitProfile);
  }
  const profileName = explicitProfile ?? file.current;
  const profile = profileName !== undefined && Object.hasOwn(file.profiles, profileName) ? file.profiles[profileName] : undefined;
  const server = nonEmpty(flags.server) ?? nonEmpty(environment.server) ?? profile?.server ?? DEFAULT_SERVER;
  const profileToken = profile && sameServer(profile.server, server) ? profile.token : undefined;
  const token = nonEmpty(flags.token) ?? nonEmpty(environment.token) ?? profileToken;
  return token === undefined ? { server } : { server, token };
}

/** Throws unless `server` is an absolute http or https URL. */
export function checkServerUrl(server: string): void {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new Error(`invalid server URL "${server}": expected http://host:port or https://host`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`invalid server URL "${server}": expected http:// or https://`);
  }
}

function requireProfile(file: ProfilesFile, name: string): Profile {
  const profile = Object.hasOwn(file.profiles, name) ? file.profiles[name] : undefined;
  if (profile === undefined) {
    throw new Error(`profile "${name}" not found`);
  }
  return profile;
}

function sameServer(a: string, b: string): boolean {
  const normalize = (server: string): string => {
    try {
      return new URL(server).href.replace(/\/+$/, "");
    } catch {
      return server;
    }
  };
  return normalize(a) === normalize(b);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

function parseProfilesFile(text: string, path: string): ProfilesFile {
  let document: unknown;
  try {
    document = parse(text);
  } catch (error) {
    throw new Error(`${path}: ${(error as Error).message.split("\n", 1)[0]}`);
  }
  if (document === null || document === undefined) {
    return { profiles: {} };
  }
  if (!isRecord(document)) {
    throw new Error(`${path}: expected a mapping with "current" and "profiles"`);
  }
  const file: ProfilesFile = { profiles: {} };
  if (document.current !== undefined && document.current !== null) {
    if (typeof document.current !== "string") {
      throw new Error(`${path}: "current" must be a profile name`);
    }
    file.current = document.current;
  }
  const profiles = document.profiles ?? {};
  if (!isRecord(profiles)) {
    throw new Error(`${path}: "profiles" must be a mapping of names to {server, token}`);
  }
  for (const [name, entry] of Object.entries(profiles)) {
    if (
      !isRecord(entry) ||
      typeof entry.server !== "string" ||
      (entry.token !== undefined && entry.token !== null && typeof entry.token !== "string")
    ) {
      throw new Error(`${path}: profile "${name}" must have a string "server" and an optional string "token"`);
    }
    file.profiles[name] =
      typeof entry.token === "string" && entry.token !== ""
        ? { server: entry.server, token: entry.token }
        : { server: entry.server };
  }
  if (file.current !== undefined && !Object.hasOwn(file.profiles, file.current)) {
    delete file.current;
  }
  return file;
}

function stringifyProfilesFile(file: ProfilesFile): string {
  return stringify(file.current === undefined ? { profiles: file.profiles } : { current: file.current, profiles: file.profiles });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
