import { createHash } from "node:crypto";
import type { Logger } from "pino";
import { LxdError, type LxdClient } from "./lxd-client.js";

/** Prefix of every cache alias on the LXD of an agent. */
export const LXD_CACHE_ALIAS_PREFIX = "mottainai-cache-";

/**
 * The alias of a task's cache image: `mottainai-cache-<key>`, where `<key>` is the first 24 hex
 * digits of the SHA-256 of `JSON.stringify([image, source, directory])`, as the docker cache's
 * key (cacheImageName). Every run of the same image, source and directory on one LXD shares it.
 */
export function lxdCacheAlias(image: string, source: string, directory: string): string {
  const key = createHash("sha256")
    .update(JSON.stringify([image, source, directory]))
    .digest("hex")
    .slice(0, 24);
  return `${LXD_CACHE_ALIAS_PREFIX}${key}`;
}

/** The task fields the cache depends on. */
export interface LxdImageCacheSpec {
  image: string;
  source: string;
  directory: string;
  cacheImage: boolean;
  cacheClean: boolean;
}

/** What the lxd executor calls around a run; every method is a no-op without `cache_image`. */
export interface LxdImageCache {
  /** The cache alias of the task (whether or not it exists). */
  readonly alias: string;
  /**
   * Before the container is created: unless `cache_clean`, the cache alias when LXD has it
   * (a line says so in the task log); undefined when the run starts from its own image. Never
   * throws: an unreadable cache is logged and ignored.
   */
  cached(): Promise<string | undefined>;
  /**
   * After a successful run, with the workspace already pulled out and removed from the
   * container: snapshots the running container, publishes the snapshot as an image and points
   * the cache alias at it (replacing and deleting the image it pointed at before). Never throws:
   * a failure is logged in the task log only.
   */
  save(container: string): Promise<void>;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Creates the cache of one run (`spec` as the task gives it; `log` writes a line into the task log). */
export function createLxdImageCache(input: {
  client: LxdClient;
  spec: LxdImageCacheSpec;
  log: (line: string) => void;
  logger: Logger;
}): LxdImageCache {
  const { client, spec, log } = input;
  const alias = lxdCacheAlias(spec.image, spec.source, spec.directory);
  const aliasPath = `/1.0/images/aliases/${encodeURIComponent(alias)}`;

  const target = async (): Promise<string | undefined> => {
    try {
      return (await client.request<{ target: string }>("GET", aliasPath)).target;
    } catch (err) {
      if (err instanceof LxdError && err.status === 404) return undefined;
      throw err;
    }
  };

  return {
    alias,

    async cached(): Promise<string | undefined> {
      if (!spec.cacheImage || spec.cacheClean) return undefined;
      try {
        const fingerprint = await target();
        if (fingerprint === undefined) {
          log(`No cached image ${alias} yet: starting from ${spec.image}\n`);
          return undefined;
        }
        log(`Using cached image ${alias} (${fingerprint.slice(0, 12)})\n`);
        return alias;
      } catch (err) {
        log(`Cannot read the cached image ${alias}: ${errorMessage(err)}; starting from ${spec.image}\n`);
        return undefined;
      }
    },

    async save(container: string): Promise<void> {
      if (!spec.cacheImage) return;
      const instance = `/1.0/instances/${encodeURIComponent(container)}`;
      const snapshot = "mottainai-cache";
      try {
        await client.operation("POST", `${instance}/snapshots`, { name: snapshot, stateful: false });
        const op = await client.operation("POST", "/1.0/images", {
          source: { type: "snapshot", name: `${container}/${snapshot}` },
          public: false,
          properties: { description: `mottainai cache of ${spec.image}`, "mottainai.cache": alias },
        });
        const fingerprint = (op.metadata as { fingerprint?: string } | null)?.fingerprint;
        if (fingerprint === undefined) throw new Error("LXD did not say which image it published");
        const previous = await target();
        if (previous === undefined) await client.request("POST", "/1.0/images/aliases", { name: alias, target: fingerprint });
        else await client.request("PUT", aliasPath, { target: fingerprint, description: "" });
        if (previous !== undefined && previous !== fingerprint)
          await client.operation("DELETE", `/1.0/images/${encodeURIComponent(previous)}`).catch(() => undefined);
        log(`Saved the cached image ${alias} (${fingerprint.slice(0, 12)})\n`);
      } catch (err) {
        log(`Cannot save the cached image ${alias}: ${errorMessage(err)}\n`);
        input.logger.warn({ err: errorMessage(err), alias }, "saving the lxd cache image failed");
      }
    },
  };
}
