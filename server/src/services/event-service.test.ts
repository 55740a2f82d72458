import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport } from "@connectrpc/connect-node";
import { EVENT_TYPE_NAMES, EventService, type SubscribeRequest, type SubscribeResponse } from "@mottainai/proto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { SubscribeRequestSchema } from "@mottainai/proto";
import { createAuthenticator } from "../auth/authenticator.js";
import { hashSecret } from "../auth/secrets.js";
import { EventBus } from "../events/event-bus.js";
import { openSqliteStore } from "../sqlite/sqlite-store.js";
import { newWaitingTask } from "../store/new-task.js";
import type { Store } from "../store/store.js";
import type { TaskRecord } from "../store/task-store.js";
import type { UserRole } from "../store/user-store.js";
import { testDefinition as definition } from "../store/task-store-conformance.js";
import { createEventService } from "./event-service.js";

describe("EventService filters, read rights and gaps", function () {
  let store: Store;
  let bus: EventBus;
  let server: http.Server;
  let url: string;

  const client = (who: string) =>
    createClient(
      EventService,
      createConnectTransport({
        baseUrl: url,
        httpVersion: "1.1",
        interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer mtk_${who}`), next(req))],
      }),
    );

  /** Reads a subscription until `count` responses arrived, as "seq type subject" or "gap a-b". */
  async function take(who: string, count: number, req: MessageInitShape<typeof SubscribeRequestSchema> = {}) {
    const abort = new AbortController();
    const seen: string[] = [];
    const show = (r: SubscribeResponse) =>
      r.gap ? `gap ${r.gap.fromSequence}-${r.gap.toSequence}` : `${r.event!.sequence} ${r.event!.type} ${r.event!.subjectId}`;
    const done = (async () => {
      for await (const r of client(who).subscribe(req as SubscribeRequest, { signal: abort.signal })) {
        seen.push(show(r));
        if (seen.length === count) break;
      }
    })();
    await Promise.race([done, new Promise((r) => setTimeout(r, 300))]);
    abort.abort();
    await done.catch(() => undefined);
    return seen;
  }

  async function addUser(name: string, role: UserRole) {
    await store.users.create({ id: `id-${name}`, name, email: "", role, passwordHash: "", createTime: 1 });
    await store.users.createToken({
      id: `tok-${name}`,
      name,
      userId: `id-${name}`,
      hash: hashSecret(`mtk_${name}`),
      createTime: 1,
      lastUseTime: Date.now(),
      expireTime: 0,
    });
  }

  const task = (id: string, owner: string, pipelineId = ""): TaskRecord =>
    ({
      ...newWaitingTask({ id, definition: { ...definition, tagNamespace: "pub" }, ownerId: `id-${owner}`, now: 1 }),
      pipelineId,
      seq: 0,
    }) as TaskRecord;

  before(async () => {
    store = openSqliteStore(":memory:");
    bus = new EventBus(store.events);
    await addUser("admin", "admin");
    await addUser("alice", "user");
    await addUser("bob", "user");
    for (const [name, visibility, owner] of [
      ["pub", "public", "alice"],
      ["secret", "private", "alice"],
    ] as const) {
      await store.namespaces.create({
        name,
        ownerId: `id-${owner}`,
        organizationId: "",
        visibility,
        headRevision: 0,
        createTime: 1,
      });
    }
    const handler = connectNodeAdapter({
      interceptors: [createAuthenticator(store)],
      routes: (router) => router.service(EventService, createEventService(store, bus)),
    });
    server = http.createServer(handler);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    await bus.publish("task.created", "ta", { kind: "task", value: task("ta", "alice", "p1") }); // 1
    await bus.publish("task.created", "tb", { kind: "task", value: task("tb", "bob") }); // 2
    await bus.publish("namespace.tag_moved", "pub", undefined, { namespace: "pub", tag: "latest", revision: "1" }); // 3
    await bus.publish("namespace.tag_moved", "secret", undefined, { namespace: "secret", tag: "latest", revision: "1" }); // 4
    await bus.publish("node.connected", "n1"); // 5
    await bus.publish("token.created", "tok-x", undefined, { owner_id: "id-bob", name: "ci" }); // 6
    await bus.publish("task.deleted", "ta", undefined, { owner_id: "id-alice", pipeline_id: "p1", reason: "retention" }); // 7
    await bus.publish("namespace.deleted", "gone", undefined, { namespace: "gone", owner_id: "id-alice" }); // 8
  });

  after(async () => {
    server.close();
    await store.close();
  });

  it("lets admins see everything and users only what they may read", async () => {
    assert.equal((await take("admin", 8)).length, 8);
    assert.deepEqual(await take("bob", 8), ["2 task.created tb", "3 namespace.tag_moved pub", "6 token.created tok-x"]);
    assert.deepEqual(await take("alice", 8), [
      "1 task.created ta",
      "3 namespace.tag_moved pub",
      "4 namespace.tag_moved secret",
      "7 task.deleted ta",
      "8 namespace.deleted gone",
    ]);
  });

  it("filters by subject, owner, namespace and pipeline on the server, and goes on live", async () => {
    assert.deepEqual(await take("admin", 8, { filter: { subjectIds: ["ta", "n1"] } }), [
      "1 task.created ta",
      "5 node.connected n1",
      "7 task.deleted ta",
    ]);
    assert.deepEqual(await take("admin", 8, { filter: { ownerId: "id-bob" } }), ["2 task.created tb", "6 token.created tok-x"]);
    assert.deepEqual(await take("admin", 8, { filter: { namespace: "pub" } }), [
      "1 task.created ta",
      "2 task.created tb",
      "3 namespace.tag_moved pub",
    ]);
    assert.deepEqual(await take("admin", 8, { filter: { pipelineId: "p1" }, types: ["task."] }), [
      "1 task.created ta",
      "7 task.deleted ta",
    ]);
    const live = take("bob", 2, { fromSequence: 8n });
    await new Promise((r) => setTimeout(r, 50));
    await bus.publish("task.finished", "ta", { kind: "task", value: task("ta", "alice") }); // 9, not bob's
    await bus.publish("task.finished", "tb", { kind: "task", value: task("tb", "bob") }); // 10
    assert.deepEqual(await live, ["10 task.finished tb"]);
  });

  it("starts with a gap marker when resuming from a sequence retention removed", async () => {
    assert.equal(await store.events.prune(0, 3), 7);
    assert.deepEqual(await take("admin", 4, { fromSequence: 2n }), [
      "gap 3-7",
      "8 namespace.deleted gone",
      "9 task.finished ta",
      "10 task.finished tb",
    ]);
    assert.deepEqual(await take("admin", 3, { fromSequence: 7n }), [
      "8 namespace.deleted gone",
      "9 task.finished ta",
      "10 task.finished tb",
    ]);
    const page = await client("admin").listEvents({ fromSequence: 1n });
    assert.deepEqual([page.gap?.fromSequence, page.gap?.toSequence, page.events.length], [2n, 7n, 3]);
    assert.equal((await client("admin").listEvents({ fromSequence: 0n })).gap, undefined, "0 asks for all that is kept");
  });

  it("lists every event type the server publishes in EVENT_TYPES", () => {
    const root = join(import.meta.dirname, "..");
    const published = new Set<string>();
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") && !entry.name.includes("conformance")) {
          const text = readFileSync(path, "utf8");
          for (const m of text.matchAll(
            /"((?:task|node|namespace|delivery|storage|artefact|token|user|pipeline|plan)\.[a-z_]+)"/g,
          )) {
            published.add(m[1]!);
          }
        }
      }
    };
    walk(root);
    const missing = [...published].filter((t) => !EVENT_TYPE_NAMES.has(t) && !t.endsWith("_id"));
    assert.deepEqual(missing, []);
    assert.ok(published.size >= 30, `found ${published.size}`);
  });
});
