import assert from "node:assert/strict";
import { join } from "node:path";
import { createBridge, FileCursorStore, type Event } from "@mottainai/bridge";
import { TokenService } from "@mottainai/proto";
import { adminClient, cleanupAll, startServer, tempDir, waitFor, type ServerProc } from "./harness.js";

/** @mottainai/bridge against a real server process: resume, restarts, retries, backpressure. */
describe("@mottainai/bridge library (real server process)", function () {
  this.timeout(120_000);
  let server: ServerProc;
  let dataDir: string;

  before(async () => {
    dataDir = tempDir("bridge-lib-server");
    server = await startServer({ dataDir });
  });
  after(cleanupAll);

  /** Appends one token.created event per name (the names come back as attributes). */
  const emit = async (...names: string[]) => {
    const tokens = adminClient(server, TokenService);
    for (const name of names) await tokens.createToken({ name });
  };
  const names = (events: Event[]) => events.map((e) => e.attributes.name);
  const options = () => ({ servers: [server.url], token: server.adminToken, filter: { types: ["token."] } });

  it("iterates typed events in order and a new bridge on the same cursor file resumes after the last handled", async () => {
    const cursor = new FileCursorStore(join(tempDir("cursor"), "cursor.json"));
    await emit("a1", "a2", "a3");
    const first = createBridge({ ...options(), cursor });
    const seen: Event[] = [];
    for await (const e of first) {
      seen.push(e);
      if (seen.length === 2) break;
    }
    assert.deepEqual(names(seen), ["a1", "a2"]);
    assert.equal(await cursor.load(), seen[0]!.sequence, "a2 was not acknowledged by asking for the next one");

    await emit("a4");
    const second = createBridge({ ...options(), cursor });
    const again: string[] = [];
    second.on("token.created", (e) => void again.push(e.attributes.name!));
    void second.start();
    await waitFor(
      () => again.length === 3,
      10_000,
      () => `saw ${again.join(",")}`,
    );
    await second.close();
    assert.deepEqual(again, ["a2", "a3", "a4"], "a2 again (at-least-once), nothing missed");
    assert.equal(second.handled, await cursor.load());
  });

  it("reconnects after the server is killed with SIGKILL and restarted, and resumes without loss or repeats", async () => {
    const cursor = new FileCursorStore(join(tempDir("cursor"), "cursor.json"));
    await emit("b0");
    const start = (await adminClient(server, TokenService).listTokens({})).tokens.length;
    assert.ok(start > 0);
    const bridge = createBridge({ ...options(), cursor, reconnect: { initialMs: 50, maxMs: 200 } });
    const seen: string[] = [];
    bridge.on("*", (e) => void seen.push(e.attributes.name!));
    void bridge.start();
    await waitFor(
      () => seen.includes("b0"),
      10_000,
      () => seen.join(","),
    );
    await emit("b1");
    await waitFor(
      () => seen.includes("b1"),
      10_000,
      () => seen.join(","),
    );
    server.child.kill("SIGKILL");
    await server.exited;
    server = await startServer({ dataDir, port: server.port });
    await emit("b2", "b3");
    await waitFor(
      () => seen.includes("b3"),
      20_000,
      () => seen.join(","),
    );
    await bridge.close();
    const tail = seen.slice(seen.indexOf("b0"));
    assert.deepEqual(tail, ["b0", "b1", "b2", "b3"]);
  });

  it("retries a throwing handler with backoff and moves on; a slow handler with a tiny queue loses nothing", async () => {
    const cursor = new FileCursorStore(join(tempDir("cursor"), "cursor.json"));
    const base = (await adminClient(server, TokenService).listTokens({})).tokens.length;
    assert.ok(base > 0);
    // Start after everything so far.
    const head = createBridge({ ...options() });
    let last = 0n;
    for await (const e of head) {
      last = e.sequence;
      break;
    }
    await cursor.save(last);
    const many = Array.from({ length: 40 }, (_, i) => `c${i}`);
    await emit(...many);
    const calls: string[] = [];
    let failures = 0;
    const bridge = createBridge({
      ...options(),
      cursor,
      queueSize: 2,
      handlerRetry: { attempts: 3, initialMs: 5, maxMs: 20 },
    });
    bridge.on("token.*", async (e) => {
      calls.push(e.attributes.name!);
      if (e.attributes.name === "c3" && failures < 2) {
        failures++;
        throw new Error("notifier down");
      }
      await new Promise((r) => setTimeout(r, 5));
    });
    void bridge.start();
    await waitFor(
      () => calls.includes("c39"),
      30_000,
      () => calls.join(","),
    );
    await bridge.close();
    const got = calls.filter((n) => n.startsWith("c"));
    assert.deepEqual(got, [...many.slice(0, 4), "c3", "c3", ...many.slice(4)]);
  });
});
