import { Transform, type Readable } from "node:stream";
import type { BlobStore } from "../blob/blob-store.js";
import type { ByteMetrics } from "./server-metrics.js";

/**
 * The same blob store, counting the bytes of every put (once it succeeded) and of every get
 * (as the reader consumes them). Layered: the server counts blob bytes on the store itself and
 * client transfers on the view it hands to upload/download services and file routes.
 */
export function meteredBlobStore(blobs: BlobStore, metrics: ByteMetrics): BlobStore {
  return {
    async put(source, expectedSha256) {
      const info = await blobs.put(source, expectedSha256);
      metrics.put(info.size);
      return info;
    },
    stat: (sha256) => blobs.stat(sha256),
    async get(sha256, offset, length) {
      const source = await blobs.get(sha256, offset, length);
      return counting(source, metrics);
    },
    delete: (sha256) => blobs.delete(sha256),
    list: () => blobs.list(),
  };
}

function counting(source: Readable, metrics: ByteMetrics): Readable {
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      metrics.get(chunk.byteLength);
      done(null, chunk);
    },
  });
  source.on("error", (err) => counter.destroy(err));
  counter.on("close", () => source.destroy());
  return source.pipe(counter);
}
