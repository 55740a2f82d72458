import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { BlobStore } from "../blob/blob-store.js";
import type { DeliveryRecord, PublisherRecord } from "../store/delivery-store.js";
import type { DeliveryJob, RevisionFile } from "./deliverer.js";
import { materializeRevision } from "./materialize-revision.js";

// Helpers of the delivery tests: revisions put into a real blob store, jobs for a deliverer, and
// what a target directory holds.

/** Puts each file's content into blobs and returns the revision's file list, by path. */
export async function putRevision(blobs: BlobStore, files: Record<string, string | Buffer>): Promise<RevisionFile[]> {
  const out: RevisionFile[] = [];
  for (const [path, content] of Object.entries(files).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const info = await blobs.put(Readable.from([Buffer.from(content)]));
    out.push({ path, size: info.size, sha256: info.sha256 });
  }
  return out;
}

/** A job delivering `files` as revision `revision` of namespace "repo" through publisher. */
export function testJob(
  blobs: BlobStore,
  publisher: Partial<PublisherRecord> & Pick<PublisherRecord, "kind" | "target">,
  files: RevisionFile[],
  revision: number,
): DeliveryJob {
  const fullPublisher: PublisherRecord = {
    id: "p1",
    namespace: "repo",
    branch: "",
    tag: "latest",
    creatorId: "u1",
    createTime: 1,
    ...publisher,
  };
  const delivery: DeliveryRecord = {
    id: `d${revision}`,
    publisherId: fullPublisher.id,
    namespace: fullPublisher.namespace,
    revision,
    tag: fullPublisher.tag,
    state: "running",
    attempts: 1,
    error: "",
    nextAttemptTime: 0,
    createTime: 1,
    updateTime: 1,
  };
  return {
    publisher: fullPublisher,
    delivery,
    files,
    materialize: (dir) => materializeRevision(blobs, files, dir),
    signal: new AbortController().signal,
  };
}

/** Every regular file under dir (".git" excluded) as path → content. */
export async function readTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (relative: string) => {
    for (const entry of await readdir(join(dir, relative), { withFileTypes: true })) {
      const path = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (path !== ".git") await walk(path);
      } else {
        out[path] = await readFile(join(dir, path), "utf8");
      }
    }
  };
  await walk("");
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}
