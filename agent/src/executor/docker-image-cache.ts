import { createHash } from "node:crypto";
import type Docker from "dockerode";
import type { Logger } from "pino";
import { authConfigFor, type DockerRegistryAuth } from "./docker-registry-auth.js";

/**
 * The agent's image-cache registry (DESIGN §6, issue 4): set by the agent
 * (`--docker-cache-registry`), never by a task.
 */
export interface DockerImageCacheOptions {
  /** `HOST:PORT` with an optional path prefix, e.g. `127.0.0.1:5000` or `registry.example:5000/ci`. */
  registry: string;
  /** Registry user for pull and push; absent: those of the registry in the agent's `--docker-auth-file`, else anonymous. */
  username?: string;
  /** Password of `username`. */
  password?: string;
}

/** Repository (under the registry and its prefix) holding every cached image. */
export const CACHE_REPOSITORY = "mottainai-cache";

/** The task fields the cache depends on. */
export interface ImageCacheSpec {
  image: string;
  source: string;
  directory: string;
  cacheImage: boolean;
  cacheClean: boolean;
  prune: boolean;
}

/**
 * The cache image of a task: `<registry>/mottainai-cache/<key>:latest`, where `<key>` is the
 * first 24 hex digits of the SHA-256 of `JSON.stringify([image, source, directory])` (`image`
 * as given to the engine, with its tag). Stable across agents: every run of the same image,
 * source and directory shares one cache image, whichever agent runs it.
 */
export function cacheImageName(registry: string, image: string, source: string, directory: string): string {
  const key = createHash("sha256")
    .update(JSON.stringify([image, source, directory]))
    .digest("hex")
    .slice(0, 24);
  return `${registry.replace(/\/+$/, "")}/${CACHE_REPOSITORY}/${key}:latest`;
}

/** What the docker executor calls around a run; every method is a no-op without `cache_image`. */
export interface DockerImageCache {
  /**
   * Before the container is created: unless `cache_clean`, pulls the cache image (progress
   * into the task log) and returns it when present; undefined when the run starts from its
   * own image. Never throws: a missing or unreachable cache is logged and ignored.
   */
  pullCached(): Promise<string | undefined>;
  /**
   * After a successful run, before the container is removed: commits the container to the
   * cache image (the image's entrypoint, command, working directory, environment and labels
   * reset to those of the image the run started from, so nothing of the task's environment is
   * kept) and pushes it. Never throws: a failure is logged in the task log only.
   */
  save(container: Docker.Container): Promise<void>;
  /**
   * After the container was removed, with `prune`: removes the local cache image and the
   * images the run created or pulled, keeping the task's base image. Never throws.
   */
  prune(): Promise<void>;
}

/** What createDockerImageCache needs from the executor. */
export interface DockerImageCacheInput {
  docker: Docker;
  /** The agent's cache registry; absent: `cache_image` only logs that no cache is configured. */
  options?: DockerImageCacheOptions;
  /** The agent's registry credentials (`--docker-auth-file`), used when `options` has no username. Default none. */
  registryAuth?: DockerRegistryAuth;
  /** The task, with `image` already normalised (a tag added). */
  spec: ImageCacheSpec;
  /** Writes a line (ending with "\n") into the task log. */
  log: (line: string) => void;
  logger: Logger;
}

interface ProgressEvent {
  status?: string;
  id?: string;
  progress?: string;
  error?: string;
  errorDetail?: { message?: string };
}

function errorMessage(err: unknown): string {
  if (typeof err === "object" && err !== null && "json" in err) {
    const json = (err as { json?: { message?: string } }).json;
    if (json?.message) return json.message;
  }
  return err instanceof Error ? err.message : String(err);
}

function statusCode(err: unknown): number | undefined {
  return typeof err === "object" && err !== null && "statusCode" in err ? (err as { statusCode?: number }).statusCode : undefined;
}

/** Quotes a Dockerfile instruction argument: double quotes, with `\`, `"` and `$` escaped. */
function quote(value: string): string {
  return `"${value.replace(/[\\"$]/g, (c) => `\\${c}`)}"`;
}

function envMap(env: string[] | null | undefined): Map<string, string> {
  const map = new Map<string, string>();
  for (const item of env ?? []) {
    const i = item.indexOf("=");
    map.set(i < 0 ? item : item.slice(0, i), i < 0 ? "" : item.slice(i + 1));
  }
  return map;
}

/**
 * The `changes` of a commit that give the committed image the configuration of `base` again:
 * variables the container added are emptied (the engine cannot drop them), changed ones reset.
 */
function resetChanges(base: Docker.ImageInspectInfo["Config"], container: Docker.ContainerInspectInfo["Config"]): string[] {
  const changes: string[] = [];
  const baseEnv = envMap(base.Env);
  for (const [key, value] of envMap(container.Env)) {
    const wanted = baseEnv.get(key) ?? "";
    if (value !== wanted && !/[\r\n]/.test(wanted) && /^[A-Za-z_][A-Za-z0-9_.-]*$/.test(key))
      changes.push(`ENV ${key}=${quote(wanted)}`);
  }
  const baseLabels = base.Labels ?? {};
  for (const [key, value] of Object.entries(container.Labels ?? {})) {
    const wanted = baseLabels[key] ?? "";
    if (value !== wanted && !/[\r\n]/.test(key + wanted)) changes.push(`LABEL ${quote(key)}=${quote(wanted)}`);
  }
  const entrypoint = base.Entrypoint;
  changes.push(`ENTRYPOINT ${JSON.stringify(Array.isArray(entrypoint) ? entrypoint : entrypoint ? [entrypoint] : [])}`);
  changes.push(`CMD ${JSON.stringify(base.Cmd ?? [])}`);
  changes.push(`WORKDIR ${base.WorkingDir || "/"}`);
  return changes;
}

/**
 * The persistent image cache of one docker task attempt (`cache_image`, `cache_clean`,
 * `prune`; issue 4). The cache image is named by cacheImageName; before the run it replaces
 * the task's image when the registry has it (unless `cache_clean`), after a successful run
 * the container is committed and pushed to it (so `cache_clean` replaces it), and with
 * `prune` the images the run left on the engine are removed afterwards.
 */
export function createDockerImageCache(input: DockerImageCacheInput): DockerImageCache {
  const { docker, options, spec, log, logger } = input;
  const enabled = spec.cacheImage && options !== undefined;
  const name = options ? cacheImageName(options.registry, spec.image, spec.source, spec.directory) : "";
  const repository = name.slice(0, name.lastIndexOf(":"));
  const authconfig =
    options?.username !== undefined
      ? { username: options.username, password: options.password ?? "", serveraddress: options.registry.split("/")[0] }
      : authConfigFor(input.registryAuth, name);
  /** Image ids this attempt put on the engine (pulled or committed cache images). */
  const created = new Set<string>();
  let warned = false;

  const follow = (stream: NodeJS.ReadableStream): Promise<void> =>
    new Promise((resolveFollow, rejectFollow) => {
      let failure: string | undefined;
      docker.modem.followProgress(
        stream,
        (err: Error | null) => {
          if (err) rejectFollow(err);
          else if (failure !== undefined) rejectFollow(new Error(failure));
          else resolveFollow();
        },
        (event: ProgressEvent) => {
          if (event.error) {
            failure ??= event.errorDetail?.message ?? event.error;
            return;
          }
          const line = [event.id, event.status, event.progress].filter((s) => s !== undefined && s !== "").join(" ");
          if (line !== "") log(`${line}\n`);
        },
      );
    });

  const remember = async (image: string): Promise<void> => {
    try {
      created.add((await docker.getImage(image).inspect()).Id);
    } catch {
      // Gone already: nothing to prune.
    }
  };

  const warnUnconfigured = (): void => {
    if (spec.cacheImage && options === undefined && !warned) {
      warned = true;
      log("Image cache: cache_image is set but this agent has no cache registry (--docker-cache-registry); not caching\n");
    }
  };

  return {
    async pullCached(): Promise<string | undefined> {
      warnUnconfigured();
      if (!enabled) return undefined;
      if (spec.cacheClean) {
        log(`Image cache: cache_clean is set; starting from ${spec.image} and replacing ${name}\n`);
        return undefined;
      }
      log(`Image cache: pulling ${name}\n`);
      try {
        await follow((await docker.pull(name, authconfig ? { authconfig } : {})) as NodeJS.ReadableStream);
      } catch (err) {
        log(`Image cache: no cached image (${errorMessage(err)}); starting from ${spec.image}\n`);
        return undefined;
      }
      await remember(name);
      log(`Image cache: using cached image ${name}\n`);
      return name;
    },

    async save(container: Docker.Container): Promise<void> {
      if (!enabled) return;
      try {
        log(`Image cache: committing the container to ${name}\n`);
        const info = await container.inspect();
        const base = await docker.getImage(info.Image).inspect();
        const committed = (await container.commit({
          repo: repository,
          tag: "latest",
          changes: resetChanges(base.Config, info.Config),
        })) as { Id: string };
        created.add(committed.Id);
        log(`Image cache: pushing ${name}\n`);
        const push = await docker.getImage(repository).push({ tag: "latest", ...(authconfig ? { authconfig } : {}) });
        await follow(push);
        log(`Image cache: pushed ${name}\n`);
      } catch (err) {
        logger.warn({ err: errorMessage(err), image: name }, "image cache: saving failed");
        log(`Image cache: saving ${name} failed (the task result is unaffected): ${errorMessage(err)}\n`);
      }
    },

    async prune(): Promise<void> {
      if (!enabled || !spec.prune) return;
      const targets = [name, ...created];
      let base: string | undefined;
      try {
        base = (await docker.getImage(spec.image).inspect()).Id;
      } catch {
        base = undefined;
      }
      for (const target of targets) {
        if (target === base) continue;
        try {
          await docker.getImage(target).remove();
        } catch (err) {
          const code = statusCode(err);
          if (code === 409) logger.debug({ err: errorMessage(err), image: target }, "image cache: image still in use; kept");
          else if (code !== 404) logger.warn({ err: errorMessage(err), image: target }, "image cache: cannot prune an image");
        }
      }
    },
  };
}
