import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { blobStoreConformance } from "./blob-store-conformance.js";
import { openLocalBlobStore } from "./local-blob-store.js";

describe("LocalBlobStore conformance", () => {
  blobStoreConformance(async () => {
    const dir = mkdtempSync(join(tmpdir(), "mottainai-blobs-"));
    return {
      store: await openLocalBlobStore(dir),
      temporaries: async () => readdirSync(join(dir, "tmp")),
      dispose: async () => rmSync(dir, { recursive: true, force: true }),
    };
  });
});
