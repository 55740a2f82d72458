import { deliveryStoreConformance } from "../store/delivery-store-conformance.js";
import { openSqliteStore } from "./sqlite-store.js";

describe("SQLite delivery store and blob references", () => {
  deliveryStoreConformance({ open: async () => openSqliteStore(":memory:") });
});
