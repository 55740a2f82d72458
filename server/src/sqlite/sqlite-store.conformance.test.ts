import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { storeConformance } from "../store/store-conformance.js";
import { openSqliteStore } from "./sqlite-store.js";

describe("SQLite store conformance", () => {
  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  storeConformance({
    open: async () => openSqliteStore(":memory:"),
    openShared: async () => {
      const dir = mkdtempSync(join(tmpdir(), "mottainai-sqlite-conformance-"));
      dirs.push(dir);
      const path = join(dir, "store.db");
      const one = openSqliteStore(path);
      return [one, openSqliteStore(path)];
    },
  });
});
