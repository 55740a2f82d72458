import type { Collection } from "mongodb";
import type { BlobReferences } from "../store/blob-references.js";

/** Digests per query: keeps each `$in` small. */
const BATCH = 500;

/**
 * BlobReferences on MongoDB: the union over every collection that names a blob (artefacts,
 * storage files, namespace entries of every revision, log segments), each a `distinct` over its
 * sha256 index.
 */
export class MongoBlobReferences implements BlobReferences {
  constructor(private readonly collections: readonly Collection<{ sha256: string }>[]) {}

  async referenced(digests: readonly string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (let i = 0; i < digests.length; i += BATCH) {
      const batch = [...new Set(digests.slice(i, i + BATCH))];
      for (const collection of this.collections) {
        const missing = batch.filter((d) => !found.has(d));
        if (missing.length === 0) break;
        for (const sha256 of await collection.distinct("sha256", { sha256: { $in: missing } })) found.add(sha256 as string);
      }
    }
    return found;
  }
}
