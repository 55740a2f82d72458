import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Logger } from "pino";
import { openBlobStore } from "../blob/open-blob-store.js";
import { ConfigError, loadServerConfig, type ServerConfig } from "../config.js";
import { mongoDatabaseName } from "../mongo/mongo-store.js";
import { openMongoArchive } from "../mongo/mongo-archive.js";
import { openSqliteArchive } from "../sqlite/sqlite-archive.js";
import type { StoreArchive } from "../store/store-archive.js";
import { type ArchiveManifest, exportArchive } from "./export-archive.js";
import { importArchive } from "./import-archive.js";

/** The subcommands of mottainai-server that are not "run the server". */
export type ArchiveCommandName = "export" | "import";

/** A parsed `mottainai-server export --to DIR …` or `import --from DIR …`. */
export interface ArchiveCommand {
  command: ArchiveCommandName;
  /** The archive directory: written by export, read by import. */
  path: string;
  /** The store and blob store to read from (export) or write into (import). */
  config: ServerConfig;
}

/**
 * Parses the arguments after the subcommand: `--to DIR` (export) or `--from DIR` (import), and
 * the server's own options (--store, --blobs, --data-dir, --s3-*, --config, …) naming the store.
 * Throws ConfigError on a bad or missing option.
 */
export function parseArchiveCommand(
  command: ArchiveCommandName,
  argv: string[],
  env: Record<string, string | undefined>,
): ArchiveCommand {
  const flag = command === "export" ? "--to" : "--from";
  const rest: string[] = [];
  let path: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === flag) {
      path = argv[++i];
      if (path === undefined) throw new ConfigError(`${flag} needs a directory`);
    } else if (arg.startsWith(`${flag}=`)) path = arg.slice(flag.length + 1);
    else rest.push(arg);
  }
  if (!path) throw new ConfigError(`${flag} DIR is required`);
  return { command, path: resolve(path), config: loadServerConfig(rest, env) };
}

/** The metadata store of config as a StoreArchive, and how to name it in messages. */
export async function openConfiguredArchive(
  config: ServerConfig,
  mustExist: boolean,
): Promise<{ archive: StoreArchive; name: string }> {
  if (config.store.backend === "mongodb") {
    const name = `MongoDB database ${mongoDatabaseName(config.store.url) ?? "mottainai"}`;
    return { archive: await openMongoArchive(config.store.url), name };
  }
  const path = join(config.dataDir, "mottainai.db");
  if (!mustExist) mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  return { archive: openSqliteArchive(path, { mustExist }), name: `SQLite database ${path}` };
}

/**
 * Runs export or import against the configured stores and returns the manifest. Run it with the
 * servers on that store stopped; an import needs a store no server has started on.
 */
export async function runArchiveCommand(cmd: ArchiveCommand, logger: Logger): Promise<ArchiveManifest> {
  const blobStore = await openBlobStore(cmd.config, logger.child({ component: "blobs" }));
  try {
    const { archive, name } = await openConfiguredArchive(cmd.config, cmd.command === "export");
    try {
      if (cmd.command === "export") {
        return await exportArchive({
          archive,
          blobs: blobStore.blobs,
          to: cmd.path,
          source: `${name} + ${cmd.config.blobs} blobs`,
          liveLogDir: join(cmd.config.dataDir, "logs"),
          logger,
        });
      }
      return await importArchive({ archive, blobs: blobStore.blobs, from: cmd.path, destination: name, logger });
    } finally {
      await archive.close();
    }
  } finally {
    await blobStore.close();
  }
}
