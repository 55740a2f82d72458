import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { chmod, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { normalizeFilePath } from "@mottainai/proto";
import type { BlobStore } from "../blob/blob-store.js";
import type { RevisionFile } from "./deliverer.js";

/** Files written at once. */
const PARALLEL = 4;

/**
 * Writes the files of a revision under dir as fresh regular files (copies, never links into the
 * blob store), directories 0755 and files 0644 whatever the umask. Each file's bytes are hashed
 * on the way: a size or sha256 that differs from the revision's rejects, naming the path.
 * Paths are re-checked with normalizeFilePath, so nothing is written outside dir.
 */
export async function materializeRevision(blobs: BlobStore, files: readonly RevisionFile[], dir: string): Promise<void> {
  const made = new Set<string>();
  const ensureDir = async (path: string) => {
    if (made.has(path)) return;
    await mkdir(path, { recursive: true, mode: 0o755 });
    made.add(path);
  };
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const file = files[next++]!;
      const relative = normalizeFilePath(file.path, "path");
      const destination = join(dir, relative);
      await ensureDir(dirname(destination));
      const hash = createHash("sha256");
      let size = 0;
      const source = await blobs.get(file.sha256);
      await pipeline(
        source,
        new Transform({
          transform(chunk: Buffer, _encoding, done) {
            hash.update(chunk);
            size += chunk.byteLength;
            done(null, chunk);
          },
        }),
        createWriteStream(destination, { flags: "wx", mode: 0o644 }),
      );
      await chmod(destination, 0o644);
      const digest = hash.digest("hex");
      if (size !== file.size || digest !== file.sha256) {
        throw new Error(
          `${file.path}: the blob store returned ${size} bytes with sha256 ${digest}, expected ${file.size} bytes with sha256 ${file.sha256}`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, files.length) }, worker));
  for (const path of made) await chmod(path, 0o755);
}
