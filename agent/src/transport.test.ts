import assert from "node:assert/strict";
import { createServerTransport } from "./transport.js";

describe("createServerTransport", () => {
  it("moves through the server list in order, wrapping around", () => {
    const t = createServerTransport({ servers: ["http://a:1", "http://b:2", "http://c:3"], credential: "x" });
    try {
      assert.equal(t.current(), "http://a:1");
      assert.deepEqual([t.next(), t.next(), t.next()], ["http://b:2", "http://c:3", "http://a:1"]);
    } finally {
      t.close();
    }
  });

  it("stays on its only server", () => {
    const t = createServerTransport({ server: "http://a:1" });
    assert.equal(t.next(), "http://a:1");
    t.close();
  });
});
