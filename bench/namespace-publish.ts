// Publishing a revision that changes 1 file of a namespace of 1,000 and of 10,000 files, in
// process on a file-backed SQLite store as the server opens it (WAL). Each publish writes only
// its delta (DESIGN §4), so the time must not grow with the namespace: the 10,000 / 1,000 ratio
// should stay near 1, far below the 10 a copy of the manifest per revision would give. The
// baseline of each size is a publish that rewrites every file of the namespace, measured in the
// same run.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { EventBus } from "../server/src/events/event-bus.js";
import { NamespacePublisher, type BlobRef } from "../server/src/namespaces/namespace-publisher.js";
import { openSqliteStore } from "../server/src/sqlite/sqlite-store.js";
import type { BenchOptions } from "./bench-options.js";
import { benchRow, type BenchResult } from "./report.js";

const SIZES = [1_000, 10_000] as const;

const blob = (n: number, version: number): BlobRef => ({
  sha256: `${n.toString(16).padStart(8, "0")}${version.toString(16).padStart(8, "0")}`.padEnd(64, "a"),
  size: 1000 + n,
});

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

/** Median ms of one 1-file publish and of one whole-namespace rewrite, for a namespace of `files` files. */
async function measure(files: number, rounds: number): Promise<{ oneFile: number; everyFile: number }> {
  const dir = mkdtempSync(join(tmpdir(), "mottainai-bench-ns-"));
  const store = openSqliteStore(join(dir, "bench.db"));
  try {
    const events = new EventBus(store.events);
    const publisher = new NamespacePublisher({ store: store.namespaces, events });
    const name = `ns${files}`;
    await store.namespaces.create({
      name,
      ownerId: "bench",
      organizationId: "",
      visibility: "private",
      headRevision: 0,
      createTime: 0,
    });
    const paths = Array.from({ length: files }, (_, i) => `pool/main/p${String(i).padStart(6, "0")}.deb`);
    const all = (version: number) => new Map(paths.map((p, i) => [p, blob(i, version)]));
    await publisher.publish({ namespace: name, changes: { put: all(0) }, creatorId: "bench" });

    const one: number[] = [];
    for (let round = 1; round <= rounds; round++) {
      const i = (round * 7919) % files;
      const t0 = performance.now();
      await publisher.publish({ namespace: name, changes: { put: new Map([[paths[i]!, blob(i, round)]]) }, creatorId: "bench" });
      one.push(performance.now() - t0);
    }
    const every: number[] = [];
    for (let round = 1; round <= 5; round++) {
      const changes = { put: all(1000 + round), replaceAll: true };
      const t0 = performance.now();
      await publisher.publish({ namespace: name, changes, creatorId: "bench" });
      every.push(performance.now() - t0);
    }
    return { oneFile: median(one), everyFile: median(every) };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The namespace publish benchmark: both sizes and their ratio. */
export async function runNamespacePublish(_options: BenchOptions): Promise<BenchResult> {
  const rounds = 200;
  const [small, large] = [await measure(SIZES[0], rounds), await measure(SIZES[1], rounds)];
  const growth = large.oneFile / small.oneFile;
  return {
    rows: [
      benchRow("namespace publish 1 of 1,000 files", small.oneFile, "ms", { op: "<=", target: 20 }, small.everyFile),
      benchRow("namespace publish 1 of 10,000 files", large.oneFile, "ms", { op: "<=", target: 20 }, large.everyFile),
      benchRow("namespace publish time 10,000 / 1,000 files", growth, "x", { op: "<=", target: 2 }, SIZES[1] / SIZES[0]),
    ],
    notes: [
      `namespace publish: median of ${rounds} publishes changing 1 file; baselines are publishes rewriting every file (${small.everyFile.toFixed(1)} ms for 1,000, ${large.everyFile.toFixed(1)} ms for 10,000); the growth row's baseline is the file-count ratio a copy per revision would show`,
    ],
  };
}
