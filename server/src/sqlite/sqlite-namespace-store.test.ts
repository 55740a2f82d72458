import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { namespaceStoreConformance } from "../store/namespace-store-conformance.js";
import { organizationStoreConformance } from "../store/organization-store-conformance.js";
import { openSqliteStore } from "./sqlite-store.js";

// The namespace and organization conformance suites on SQLite. They join storeConformance (and
// so run on every backend) once the MongoDB store has namespaces and organizations.
describe("SQLite namespace and organization stores", () => {
  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  const factory = {
    open: async () => openSqliteStore(":memory:"),
    openShared: async () => {
      const dir = mkdtempSync(join(tmpdir(), "mottainai-sqlite-namespaces-"));
      dirs.push(dir);
      const path = join(dir, "store.db");
      return [openSqliteStore(path), openSqliteStore(path)] as [
        ReturnType<typeof openSqliteStore>,
        ReturnType<typeof openSqliteStore>,
      ];
    },
  };
  namespaceStoreConformance(factory);
  organizationStoreConformance(factory);
});
