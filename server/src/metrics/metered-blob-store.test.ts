import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { text } from "node:stream/consumers";
import { openLocalBlobStore } from "../blob/local-blob-store.js";
import { meteredBlobStore } from "./metered-blob-store.js";
import { createServerMetrics } from "./server-metrics.js";

describe("meteredBlobStore", () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "metered-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("counts stored and served bytes on the store and transfers on the view over it", async () => {
    const metrics = createServerMetrics({ countUnfinished: async () => [], connectedAgents: () => 0 });
    const blobs = meteredBlobStore(await openLocalBlobStore(dir), metrics.blobs);
    const transfers = meteredBlobStore(blobs, metrics.transfers);
    const info = await transfers.put([Buffer.from("hello world")]);
    assert.equal(await text(await transfers.get(info.sha256, 6)), "world");
    assert.equal(await text(await blobs.get(info.sha256)), "hello world");
    const value = async (name: string) => (await metrics.registry.getSingleMetric(name)!.get()).values[0]?.value;
    assert.equal(await value("mottainai_blob_bytes_stored_total"), 11);
    assert.equal(await value("mottainai_blob_bytes_served_total"), 5 + 11);
    assert.equal(await value("mottainai_upload_bytes_total"), 11);
    assert.equal(await value("mottainai_download_bytes_total"), 5);
  });

  it("passes a read error through and never counts a failed put", async () => {
    const metrics = createServerMetrics({ countUnfinished: async () => [], connectedAgents: () => 0 });
    const blobs = meteredBlobStore(await openLocalBlobStore(dir), metrics.blobs);
    await assert.rejects(blobs.put([Buffer.from("x")], "0".repeat(64)));
    await assert.rejects(blobs.get("f".repeat(64)));
    const stored = await metrics.registry.getSingleMetric("mottainai_blob_bytes_stored_total")!.get();
    assert.equal(stored.values[0]?.value, 0);
  });
});
