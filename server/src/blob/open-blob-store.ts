import { join } from "node:path";
import type { Logger } from "pino";
import type { ServerConfig } from "../config.js";
import type { BlobStore } from "./blob-store.js";
import { DEFAULT_MONGO_DATABASE, mongoDatabaseName } from "../mongo/mongo-store.js";
import { openGridFsBlobStore } from "./gridfs-blob-store.js";
import { openLocalBlobStore } from "./local-blob-store.js";
import { openS3BlobStore } from "./s3-blob-store.js";

/** A blob store the server opened, and how to release it at shutdown. */
export interface OpenedBlobStore {
  blobs: BlobStore;
  /** Releases connections (S3); idempotent. */
  close(): Promise<void>;
}

/**
 * Opens the backend config.blobs names: "local" is `<dataDir>/blobs`, "s3" the bucket config.s3
 * describes (created when missing), "gridfs" the bucket "blobs" in the database of the MongoDB
 * store (its own client on the same connection string). Each sweeps the temporary uploads a
 * crash left behind.
 */
export async function openBlobStore(
  config: Pick<ServerConfig, "blobs" | "s3" | "dataDir" | "store">,
  logger: Logger,
): Promise<OpenedBlobStore> {
  if (config.blobs === "gridfs") {
    if (config.store.backend !== "mongodb") throw new Error("--blobs gridfs needs --store mongodb://…");
    const database = mongoDatabaseName(config.store.url) ?? DEFAULT_MONGO_DATABASE;
    const store = await openGridFsBlobStore(config.store.url, database);
    logger.info({ database, bucket: "blobs" }, "blobs on MongoDB GridFS");
    let closed = false;
    return {
      blobs: store,
      close: async () => {
        if (!closed) await store.close();
        closed = true;
      },
    };
  }
  if (config.blobs === "s3" && config.s3) {
    const store = await openS3BlobStore({ ...config.s3, logger });
    logger.info({ endpoint: config.s3.endpoint, bucket: config.s3.bucket }, "blobs on S3");
    let closed = false;
    return {
      blobs: store,
      close: async () => {
        if (!closed) await store.close();
        closed = true;
      },
    };
  }
  const dir = join(config.dataDir, "blobs");
  return { blobs: await openLocalBlobStore(dir), close: async () => {} };
}
