import { readFileSync } from "node:fs";

/** The registry of an image reference whose first path component names none (Docker's rule). */
export const DOCKER_HUB = "docker.io";

/** The `serveraddress` Docker uses for Docker Hub credentials (the key `docker login` writes). */
export const DOCKER_HUB_SERVER = "https://index.docker.io/v1/";

/** Credentials of one registry, in the shape of the Engine API's `X-Registry-Auth` (dockerode's `authconfig`). */
export interface DockerRegistryCredential {
  username?: string;
  password?: string;
  /** An OAuth refresh token written by `docker login` for registries that issue one. */
  identitytoken?: string;
  /** `https://index.docker.io/v1/` for Docker Hub, else `HOST[:PORT]`. */
  serveraddress: string;
}

/**
 * The registry credentials of the agent (`--docker-auth-file`), read and validated once at
 * start by readDockerAuthFile; looked up per image by authConfigFor. Immutable.
 */
export interface DockerRegistryAuth {
  /** The file the credentials came from (for messages; never the credentials themselves). */
  readonly file: string;
  /** Credentials by registry host as registryOfImage returns it (`docker.io` for Docker Hub). */
  readonly registries: ReadonlyMap<string, DockerRegistryCredential>;
}

const HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:\d{1,5})?$/;
const DOCKER_HUB_ALIASES = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);

/**
 * The registry host an `auths` key stands for, as Docker reads config.json: a scheme and a path
 * are dropped (`https://index.docker.io/v1/` → `index.docker.io`), Docker Hub's names become
 * `docker.io`, the host is lower-cased. Undefined when the key names no host.
 */
export function registryOfAuthKey(key: string): string | undefined {
  const host = key
    .trim()
    .replace(/^[a-z][a-z0-9+.-]*:\/\//i, "")
    .split("/")[0]
    ?.toLowerCase();
  if (host === undefined || !HOST.test(host)) return undefined;
  return DOCKER_HUB_ALIASES.has(host) ? DOCKER_HUB : host;
}

/**
 * The registry an image is pulled from, by Docker's rule: the first `/`-separated component
 * is a registry when it contains "." or ":", is "localhost" or has an upper-case letter;
 * otherwise (and for `index.docker.io`) the image is on Docker Hub, `docker.io`. Lower-cased.
 */
export function registryOfImage(image: string): string {
  const i = image.indexOf("/");
  if (i < 0) return DOCKER_HUB;
  const first = image.slice(0, i);
  if (!/[.:]/.test(first) && first !== "localhost" && first.toLowerCase() === first) return DOCKER_HUB;
  const host = first.toLowerCase();
  return DOCKER_HUB_ALIASES.has(host) ? DOCKER_HUB : host;
}

/** The `authconfig` to pull or push `image` with; undefined (anonymous) when `auth` has none for its registry. */
export function authConfigFor(auth: DockerRegistryAuth | undefined, image: string): DockerRegistryCredential | undefined {
  const credential = auth?.registries.get(registryOfImage(image));
  return credential === undefined ? undefined : { ...credential };
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return "a list";
  if (value === null) return "null";
  return typeof value === "object" ? "a mapping" : JSON.stringify(value);
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function decodeAuth(field: string, value: unknown): { username: string; password: string } {
  const text = typeof value === "string" ? value.trim() : "";
  const bad = new Error(`${field}: not base64 "user:password"`);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.length % 4 !== 0) throw bad;
  const decoded = Buffer.from(text, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon <= 0) throw bad;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function parseEntry(field: string, registry: string, entry: unknown): DockerRegistryCredential {
  if (!isMapping(entry))
    throw new Error(`${field}: expected a mapping with "auth" or "username" and "password", got ${describe(entry)}`);
  const serveraddress = registry === DOCKER_HUB ? DOCKER_HUB_SERVER : registry;
  const string = (name: string): string | undefined => {
    const v = entry[name];
    if (v === undefined || v === null || v === "") return undefined;
    if (typeof v !== "string") throw new Error(`${field}.${name}: expected a string, got ${describe(v)}`);
    return v;
  };
  const identitytoken = string("identitytoken");
  const token = identitytoken !== undefined ? { identitytoken } : {};
  if (string("auth") !== undefined) return { ...decodeAuth(`${field}.auth`, entry.auth), ...token, serveraddress };
  const username = string("username");
  const password = string("password");
  if (username !== undefined) {
    if (password === undefined && identitytoken === undefined) throw new Error(`${field}.password: missing for "username"`);
    return { username, ...(password !== undefined ? { password } : {}), ...token, serveraddress };
  }
  if (password !== undefined) throw new Error(`${field}.username: missing for "password"`);
  if (identitytoken !== undefined) return { ...token, serveraddress };
  throw new Error(`${field}: no credentials; expected "auth" (base64 "user:password") or "username" and "password"`);
}

/**
 * Parses a Docker `config.json` (`{"auths": {"HOST[:PORT]": {"auth": base64("user:password")}
 * or {"username", "password"}}}`; other top-level keys such as `HttpHeaders` are ignored).
 * Credential helpers (`credsStore`, `credHelpers`) are not supported and rejected, as are
 * entries without credentials and two keys naming the same registry. Throws an Error
 * `<file>: <key>: <problem>`, e.g. `/etc/a.json: auths["127.0.0.1:5001"].auth: not base64 "user:password"`.
 */
export function parseDockerAuthConfig(text: string, file: string): DockerRegistryAuth {
  function fail(message: string): never {
    throw new Error(`${file}: ${message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    fail(`not JSON: ${(err as Error).message}`);
  }
  if (!isMapping(doc)) fail(`expected a mapping with "auths", got ${describe(doc)}`);
  for (const helper of ["credsStore", "credHelpers"]) {
    const v = doc[helper];
    if (v !== undefined && v !== "" && !(isMapping(v) && Object.keys(v).length === 0))
      fail(`${helper}: credential helpers are not supported; put the credentials in "auths"`);
  }
  if (doc.auths === undefined) fail(`auths: missing; expected {"auths": {"HOST[:PORT]": {"auth": "<base64 user:password>"}}}`);
  if (!isMapping(doc.auths)) fail(`auths: expected a mapping of registries, got ${describe(doc.auths)}`);
  const registries = new Map<string, DockerRegistryCredential>();
  const keyOf = new Map<string, string>();
  for (const [key, entry] of Object.entries(doc.auths)) {
    const field = `auths[${JSON.stringify(key)}]`;
    const registry = registryOfAuthKey(key);
    if (registry === undefined) fail(`${field}: expected a registry such as "registry.example:5000" or "${DOCKER_HUB_SERVER}"`);
    const other = keyOf.get(registry);
    if (other !== undefined) fail(`${field}: the same registry as auths[${JSON.stringify(other)}]; keep one`);
    try {
      registries.set(registry, parseEntry(field, registry, entry));
    } catch (err) {
      fail((err as Error).message);
    }
    keyOf.set(registry, key);
  }
  return { file, registries };
}

/** Reads and parses (parseDockerAuthConfig) the file at `path`, synchronously: the agent reads it once at start. */
export function readDockerAuthFile(path: string): DockerRegistryAuth {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  return parseDockerAuthConfig(text, path);
}
