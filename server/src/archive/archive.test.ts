import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { TaskService, TaskSpecSchema } from "@mottainai/proto";
import { MongoClient } from "mongodb";
import { pino } from "pino";
import { generateSecret, hashSecret } from "../auth/secrets.js";
import type { BlobStore } from "../blob/blob-store.js";
import { openGridFsBlobStore } from "../blob/gridfs-blob-store.js";
import { openLocalBlobStore } from "../blob/local-blob-store.js";
import { loadServerConfig } from "../config.js";
import { definitionFromSpec } from "../convert/task-convert.js";
import { TaskLogStore } from "../logs/task-log-store.js";
import { type JongodbServer, requireJongodb } from "../mongo/jongodb-server.js";
import { openMongoArchive } from "../mongo/mongo-archive.js";
import { createMongoStore } from "../mongo/mongo-store.js";
import { startServer } from "../server.js";
import { openSqliteArchive } from "../sqlite/sqlite-archive.js";
import { openSqliteStore } from "../sqlite/sqlite-store.js";
import { newWaitingTask } from "../store/new-task.js";
import { ARCHIVE_KINDS, type StoreArchive } from "../store/store-archive.js";
import type { Store } from "../store/store.js";
import { parseArchiveCommand, runArchiveCommand } from "./archive-command.js";
import { exportArchive } from "./export-archive.js";
import { importArchive, readJsonLines } from "./import-archive.js";

const ci = Boolean(process.env.CI);
const logger = pino({ level: "silent" });
const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

/** Every record of an archive directory, by kind. */
async function recordsOf(dir: string): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const kind of ARCHIVE_KINDS) {
    out[kind] = [];
    for await (const r of readJsonLines(join(dir, "records", `${kind}.jsonl`))) out[kind].push(r);
  }
  return out;
}

/** sha256 → bytes of every blob file of an archive directory. */
function blobsOf(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const prefix of readdirSync(join(dir, "blobs"))) {
    for (const name of readdirSync(join(dir, "blobs", prefix))) out.set(name, readFileSync(join(dir, "blobs", prefix, name)));
  }
  return out;
}

/** What a store answers through its own interfaces about the state fill() made. */
async function observe(store: Store) {
  const revisions = await store.namespaces.listRevisions("repo");
  return {
    users: await store.users.list(),
    tokens: await store.users.listTokens(),
    tokenByHash: await store.users.getTokenByHash("h2"),
    organizations: await store.organizations.list(),
    aliceRole: await store.organizations.memberRole("o1", "u-alice"),
    nodes: await store.nodes.list(),
    registrationTokens: await store.nodes.listRegistrationTokens(),
    tasks: await store.tasks.list({ limit: 10 }),
    waiting: await store.tasks.hasWaiting(),
    active: await store.tasks.listActive(),
    attempts: await store.tasks.attempts("task-1"),
    byToken: await store.tasks.attemptByTokenHash("th2"),
    segments: await store.logSegments.list("task-1"),
    artefacts: await store.artefacts.list("task-1", ""),
    events: await store.events.listAfter(0, 100),
    lastEvent: await store.events.lastSequence(),
    storages: await store.storages.list(),
    storageFiles: await store.storages.listFiles("s1", ""),
    namespaces: await store.namespaces.list(),
    revisions,
    files: await Promise.all(revisions.map((r) => store.namespaces.listFiles("repo", r.number))),
    diff: await store.namespaces.diff("repo", 1, 3),
    tags: await store.namespaces.listTags("repo"),
    publishers: await store.deliveries.listPublishers("repo"),
    deliveries: await store.deliveries.list({ namespace: "repo", limit: 10 }),
    cursor: await store.deliveries.eventCursor(),
    plans: await store.plans.list({ limit: 10 }),
    planRuns: await store.plans.listRuns("plan-1", 10),
    unlaunched: await store.plans.listUnlaunched(Number.MAX_SAFE_INTEGER, 10),
    due: (await store.deliveries.listDue(Number.MAX_SAFE_INTEGER, 10)).map((d) => d.id),
    referenced: [
      ...(await store.blobReferences.referenced((await store.logSegments.list("task-1")).map((x) => x.sha256))),
    ].sort(),
  };
}

/**
 * Fills a SQLite store and a local blob store with every kind of state through the stores and the
 * task log store; returns what the test reads back through a server afterwards.
 */
async function fill(store: Store, blobs: BlobStore, dataDir: string) {
  const now = 1_700_000_000_000;
  const put = async (text: string | Buffer) => {
    const data = Buffer.isBuffer(text) ? text : Buffer.from(text);
    return { ...(await blobs.put([data])), data };
  };
  await store.users.create({
    id: "u-admin",
    name: "admin",
    email: "a@x",
    role: "admin",
    passwordHash: "scrypt$x",
    createTime: now,
  });
  await store.users.create({ id: "u-alice", name: "alice", email: "", role: "user", passwordHash: "", createTime: now + 1 });
  const secret = generateSecret("mtk");
  await store.users.createToken({
    id: "t1",
    name: "ci",
    userId: "u-admin",
    hash: hashSecret(secret),
    createTime: now,
    lastUseTime: now + 5,
    expireTime: 0,
  });
  await store.users.createToken({
    id: "t2",
    name: "x",
    userId: "u-alice",
    hash: "h2",
    createTime: now + 2,
    lastUseTime: 0,
    expireTime: now + 99,
  });
  await store.organizations.create({
    id: "o1",
    name: "sabayon",
    createTime: now,
    members: [
      { userId: "u-admin", role: "owner" },
      { userId: "u-alice", role: "member" },
    ],
  });
  await store.nodes.upsertByName({
    id: "n1",
    name: "builder-1",
    hostname: "b1",
    credentialHash: "ch1",
    draining: true,
    labels: { "kubernetes.io/arch": "amd64", $odd: "v" },
    queues: [{ queue: "general", slots: 2 }],
    executors: ["host", "docker"],
    capacity: 2,
    agentVersion: "1.0.0",
    createTime: now,
    connectTime: now + 1,
    lastHeartbeatTime: now + 2,
  });
  await store.nodes.createRegistrationToken({
    id: "r1",
    description: "fleet",
    hash: "rh1",
    createTime: now,
    expireTime: 0,
    revoked: true,
  });

  // Tasks: one with two attempts (the first lost to infrastructure) and a log, one waiting, one deleted.
  const definition = definitionFromSpec(
    create(TaskSpecSchema, { name: "build", type: "host", script: ["make"], environment: ["A=b=c"], labels: { "a.b": "c" } }),
  );
  await store.tasks.create(newWaitingTask({ id: "gone", definition, ownerId: "u-alice", now }));
  await store.tasks.delete("gone");
  await store.tasks.create(newWaitingTask({ id: "task-1", definition, ownerId: "u-admin", now }));
  await store.tasks.create(newWaitingTask({ id: "task-2", definition, ownerId: "u-alice", now: now + 1 }));
  const logs = new TaskLogStore({ dir: join(dataDir, "logs"), segments: store.logSegments, blobs, logger, segmentBytes: 64 });
  await store.tasks.assign({
    taskId: "task-1",
    fromAttempt: 0,
    nodeId: "n1",
    leaseId: "L1",
    leaseExpireTime: now + 30,
    logBase: 0,
    tokenHash: "th1",
    now,
  });
  await store.tasks.markRunning("task-1", 1, "L1", now + 1);
  const first = "first attempt output\n".repeat(5);
  await logs.append("task-1", 0, Buffer.from(first));
  await store.tasks.endAttempt({
    taskId: "task-1",
    attempt: 1,
    leaseId: "L1",
    result: "error",
    exitCode: null,
    error: "lease expired",
    taskStatus: "waiting",
    infraFailures: 1,
    scriptRetries: 0,
    logSize: first.length,
    now: now + 2,
  });
  await store.tasks.assign({
    taskId: "task-1",
    fromAttempt: 1,
    nodeId: "n1",
    leaseId: "L2",
    leaseExpireTime: now + 60,
    logBase: first.length,
    tokenHash: "th2",
    now: now + 3,
  });
  await store.tasks.markRunning("task-1", 2, "L2", now + 4);
  const second = "second attempt: done\n";
  await logs.append("task-1", first.length, Buffer.from(second));
  await logs.seal("task-1");
  await store.tasks.endAttempt({
    taskId: "task-1",
    attempt: 2,
    leaseId: "L2",
    result: "success",
    exitCode: 0,
    error: "",
    taskStatus: "done",
    infraFailures: 1,
    scriptRetries: 0,
    logSize: first.length + second.length,
    now: now + 5,
  });
  for (let i = 0; i < 5; i++) {
    await store.events.append({
      time: now + i,
      type: i % 2 ? "task.updated" : "node.updated",
      subjectId: "task-1",
      payloadKind: "task",
      payload: { id: "task-1", labels: { "a.b": "c" }, n: i },
      attributes: { "x.y": String(i) },
    });
  }

  // Artefacts and storages.
  const artefact = await put(randomBytes(3000));
  await store.artefacts.put({
    taskId: "task-1",
    path: "out/pkg.tar",
    size: artefact.size,
    sha256: artefact.sha256,
    createTime: now,
  });
  await store.storages.create({ id: "s1", name: "distfiles", ownerId: "u-alice", createTime: now });
  const distfile = await put("distfile bytes");
  await store.storages.putFile({
    storageId: "s1",
    path: "a/b.txt",
    size: distfile.size,
    sha256: distfile.sha256,
    createTime: now,
  });
  await store.storages.putFile({
    storageId: "s1",
    path: "same.txt",
    size: distfile.size,
    sha256: distfile.sha256,
    createTime: now,
  });

  // A namespace with three revisions, a rollback tag, a file removed and changed.
  await store.namespaces.create({
    name: "repo",
    ownerId: "u-admin",
    organizationId: "o1",
    visibility: "organization",
    headRevision: 0,
    createTime: now,
  });
  const v1 = await put("index v1");
  const v2 = await put("index v2");
  const pkg = await put("package");
  const commit = (head: number, put: { path: string; size: number; sha256: string }[], remove: string[], tag: string) =>
    store.namespaces.commitRevision({
      namespace: "repo",
      head,
      parent: head,
      put,
      remove,
      taskId: "task-1",
      message: `r${head + 1}`,
      creatorId: "u-admin",
      tag,
      now: now + head,
    });
  assert.ok(
    await commit(
      0,
      [
        { path: "index", size: v1.size, sha256: v1.sha256 },
        { path: "pkg/a", size: pkg.size, sha256: pkg.sha256 },
      ],
      [],
      "latest",
    ),
  );
  assert.ok(await commit(1, [{ path: "index", size: v2.size, sha256: v2.sha256 }], [], "latest"));
  assert.ok(await commit(2, [], ["pkg/a"], "latest"));
  assert.ok(await store.namespaces.setTag("repo", "stable", 2, now + 10));
  await store.namespaces.create({
    name: "empty",
    ownerId: "u-alice",
    organizationId: "",
    visibility: "public",
    headRevision: 0,
    createTime: now,
  });

  // A publisher with a finished and a pending delivery, and the event cursor.
  await store.deliveries.addPublisher({
    id: "p1",
    namespace: "repo",
    kind: "rsync",
    target: join(dataDir, "..", "mirror"),
    branch: "",
    tag: "stable",
    creatorId: "u-admin",
    createTime: now,
  });
  let ids = 0;
  const { created } = await store.deliveries.enqueueTagMove(
    { namespace: "repo", tag: "stable", revision: 2, eventSequence: 4 },
    now,
    () => `d${++ids}`,
  );
  const claimed = await store.deliveries.claim(created[0]!.id, now + 1);
  assert.ok(claimed);
  await store.deliveries.finish(claimed.id, { state: "succeeded", error: "", nextAttemptTime: 0 }, now + 2);
  await store.deliveries.enqueueTagMove(
    { namespace: "repo", tag: "stable", revision: 3, eventSequence: 5 },
    now + 3,
    () => `d${++ids}`,
  );

  // A plan of a task (labels with dots) with a launched firing and a claim not launched yet.
  await store.plans.create({
    id: "plan-1",
    ownerId: "u-alice",
    definition: {
      planned: "0 0 2 * * *",
      timezone: "Europe/Rome",
      catchUp: "once",
      target: { kind: "task", task: { ...definition, labels: { "a.b": "c" } } },
    },
    paused: false,
    nextRunTime: now + 86_400_000,
    createTime: now,
    updateTime: now + 1,
  });
  for (const [i, launched] of [true, false].entries()) {
    assert.ok(
      await store.plans.claimRun({
        key: `plan-1@${now + i}`,
        planId: "plan-1",
        scheduledTime: now + i,
        fireTime: now + i + 1,
        kind: "task",
        targetId: `plan-task-${i}`,
        manual: false,
        launched,
      }),
    );
  }

  // A running task whose log is still a live file (never sealed): export seals it into the archive.
  await store.tasks.create(newWaitingTask({ id: "task-3", definition, ownerId: "u-admin", now: now + 2 }));
  await store.tasks.assign({
    taskId: "task-3",
    fromAttempt: 0,
    nodeId: "n1",
    leaseId: "L3",
    leaseExpireTime: now + 30,
    logBase: 0,
    now,
  });
  const live = "still running\n";
  await logs.append("task-3", 0, Buffer.from(live));
  return { secret, log: first + second, live, indexV2: v2.data };
}

describe("export and import (SQLite + directory → MongoDB → SQLite + directory)", function () {
  this.timeout(120_000);
  let jongodb: JongodbServer | undefined;
  let root: string;

  before(async function () {
    jongodb = await requireJongodb(ci, process.env);
    if (!jongodb) return this.skip();
    root = mkdtempSync(join(tmpdir(), "mottainai-archive-"));
  });
  after(async () => {
    await jongodb?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it("moves every record and blob both ways, and a server reads the result", async () => {
    const dir = (name: string) => join(root, name);
    mkdirSync(dir("source"));
    mkdirSync(dir("final"));
    // 1. The source: SQLite + a local blob directory.
    const sourceStore = openSqliteStore(join(dir("source"), "mottainai.db"));
    const sourceBlobs = await openLocalBlobStore(join(dir("source"), "blobs"));
    const expected = await fill(sourceStore, sourceBlobs, dir("source"));
    const seen = await observe(sourceStore);
    await sourceStore.close();

    const exportFrom = async (archive: StoreArchive, blobs: BlobStore, to: string) => {
      try {
        return await exportArchive({ archive, blobs, to, source: "test", logger });
      } finally {
        await archive.close();
      }
    };
    const importInto = async (archive: StoreArchive, blobs: BlobStore, from: string) => {
      try {
        return await importArchive({ archive, blobs, from, destination: "test destination", logger });
      } finally {
        await archive.close();
      }
    };

    // The first export goes through the command line's parser and runner.
    const first = await runArchiveCommand(
      parseArchiveCommand("export", ["--data-dir", dir("source"), "--to", dir("a1")], {}),
      logger,
    );
    assert.equal(first.parts["records/tasks.jsonl"]?.count, 3);
    assert.equal(first.parts["records/attempts.jsonl"]?.count, 3);
    assert.equal(first.parts["records/namespaceRevisions.jsonl"]?.count, 3);
    assert.ok((first.parts["records/logSegments.jsonl"]?.count ?? 0) >= 2, "the log was sealed in several segments");

    // 2. Into MongoDB (jongodb) + GridFS, and out again.
    const mongoUrl = jongodb!.url.replace(/\/[^/?]*(\?|$)/, "/archive_test$1");
    const mongoBlobs = await openGridFsBlobStore(jongodb!.url, "archive_test");
    await importInto(await openMongoArchive(mongoUrl), mongoBlobs, dir("a1"));
    await assert.rejects(
      importInto(await openMongoArchive(mongoUrl), mongoBlobs, dir("a1")),
      /is not empty \(it holds users, tokens/,
    );
    const mongoClient = new MongoClient(jongodb!.url, { maxPoolSize: 1 });
    await mongoClient.connect();
    try {
      const mongoStore = await createMongoStore(mongoClient.db("archive_test"));
      assert.deepEqual(await observe(mongoStore), seen, "the MongoDB stores read what the SQLite stores held");
    } finally {
      await mongoClient.close();
    }
    await exportFrom(await openMongoArchive(mongoUrl), mongoBlobs, dir("a2"));
    await mongoBlobs.close();

    // 3. Into a fresh SQLite + directory, and out a third time.
    const finalBlobs = await openLocalBlobStore(join(dir("final"), "blobs"));
    await importInto(openSqliteArchive(join(dir("final"), "mottainai.db")), finalBlobs, dir("a2"));
    await exportFrom(openSqliteArchive(join(dir("final"), "mottainai.db")), finalBlobs, dir("a3"));

    const [r1, r2, r3] = await Promise.all([recordsOf(dir("a1")), recordsOf(dir("a2")), recordsOf(dir("a3"))]);
    for (const kind of ARCHIVE_KINDS) {
      assert.deepEqual(r2[kind], r1[kind], `${kind}: MongoDB holds what SQLite held`);
      assert.deepEqual(r3[kind], r1[kind], `${kind}: back on SQLite`);
    }
    assert.deepEqual(r1.sequences, [
      { name: "deliveries", value: 2 },
      { name: "events", value: 5 },
      { name: "tasks", value: 4 },
    ]);
    const [b1, b2, b3] = [blobsOf(dir("a1")), blobsOf(dir("a2")), blobsOf(dir("a3"))];
    assert.equal(b1.size, first.blobs.count);
    for (const [digest, bytes] of b1) {
      assert.equal(sha256(bytes), digest);
      assert.ok(bytes.equals(b2.get(digest)!), `blob ${digest} via MongoDB`);
      assert.ok(bytes.equals(b3.get(digest)!), `blob ${digest} back on SQLite`);
    }

    const back = openSqliteStore(join(dir("final"), "mottainai.db"));
    try {
      assert.deepEqual(await observe(back), seen, "the final SQLite stores read what the first held");
    } finally {
      await back.close();
    }
    // 4. A server on the result serves the task log and a namespace file; counters continue.
    const config = loadServerConfig(["--listen", "127.0.0.1:0", "--data-dir", dir("final"), "--gc-interval", "0"], {});
    const server = await startServer(config, logger);
    try {
      assert.equal(server.adminToken, undefined, "the imported admin is kept");
      const auth = { headers: { authorization: `Bearer ${expected.secret}` } };
      const baseUrl = `http://127.0.0.1:${server.port}`;
      const tasks = createClient(TaskService, createGrpcTransport({ baseUrl }));
      const chunks: Uint8Array[] = [];
      for await (const m of tasks.followTaskLog({ id: "task-1", offset: 0n, follow: false }, auth)) chunks.push(m.data);
      assert.equal(Buffer.concat(chunks).toString(), expected.log);
      const live: Uint8Array[] = [];
      for await (const m of tasks.followTaskLog({ id: "task-3", offset: 0n, follow: false }, auth)) live.push(m.data);
      assert.equal(Buffer.concat(live).toString(), expected.live, "the live log file came along as a segment");
      const res = await fetch(`${baseUrl}/namespaces/repo/index`, auth);
      assert.equal(res.status, 200);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(expected.indexV2));
      const created = await tasks.createTask(
        { spec: create(TaskSpecSchema, { name: "next", type: "host", script: ["true"] }) },
        auth,
      );
      assert.ok(created.task);
    } finally {
      await server.close();
    }
    const check = openSqliteStore(join(dir("final"), "mottainai.db"));
    try {
      const newest = (await check.tasks.list({ limit: 1 }))[0];
      assert.ok(newest && newest.seq > 4, "new tasks are numbered after the imported ones");
      assert.ok((await check.events.lastSequence()) > 5, "new events follow the imported ones");
    } finally {
      await check.close();
    }
  });

  it("refuses a damaged archive and leaves the destination empty", async () => {
    const src = join(root, "a1");
    const broken = join(root, "broken");
    rmSync(broken, { recursive: true, force: true });
    cpSync(src, broken, { recursive: true });
    appendFileSync(join(broken, "records", "tasks.jsonl"), "{}\n");
    const blobs = await openLocalBlobStore(join(root, "broken-dest", "blobs"));
    mkdirSync(join(root, "broken-dest"), { recursive: true });
    const archive = openSqliteArchive(join(root, "broken-dest", "mottainai.db"));
    try {
      await assert.rejects(
        importArchive({ archive, blobs, from: broken, destination: "d", logger }),
        /records\/tasks.jsonl does not match the manifest/,
      );
      assert.deepEqual(await archive.nonEmpty(), []);
    } finally {
      await archive.close();
    }
  });

  /** A copy of archive a1 whose namespaceTags part gains a tag of a namespace it lacks (manifest fixed up). */
  function archiveWithDanglingTag(): string {
    const broken = join(root, `dangling-${Date.now()}`);
    cpSync(join(root, "a1"), broken, { recursive: true });
    const part = join(broken, "records", "namespaceTags.jsonl");
    appendFileSync(part, `${JSON.stringify({ namespace: "nowhere", name: "latest", revision: 1, updateTime: 1 })}\n`);
    const manifest = JSON.parse(readFileSync(join(broken, "manifest.json"), "utf8"));
    const bytes = readFileSync(part);
    manifest.parts["records/namespaceTags.jsonl"] = {
      count: manifest.parts["records/namespaceTags.jsonl"].count + 1,
      bytes: bytes.length,
      sha256: sha256(bytes),
    };
    writeFileSync(join(broken, "manifest.json"), JSON.stringify(manifest));
    return broken;
  }

  it("writes nothing when an import fails half-way (SQLite: one transaction)", async () => {
    const from = archiveWithDanglingTag();
    const dest = join(root, "half-sqlite");
    mkdirSync(dest);
    const blobs = await openLocalBlobStore(join(dest, "blobs"));
    const archive = openSqliteArchive(join(dest, "mottainai.db"));
    try {
      await assert.rejects(importArchive({ archive, blobs, from, destination: "d", logger }), /refer to missing records/);
      assert.deepEqual(await archive.nonEmpty(), []);
      for await (const blob of blobs.list()) assert.fail(`blob ${blob.sha256} was left behind`);
    } finally {
      await archive.close();
    }
  });

  it("writes nothing when an import fails half-way (MongoDB: written documents deleted)", async () => {
    const from = archiveWithDanglingTag();
    const url = jongodb!.url.replace(/\/[^/?]*(\?|$)/, "/half_mongo$1");
    const blobs = await openGridFsBlobStore(jongodb!.url, "half_mongo");
    const archive = await openMongoArchive(url);
    try {
      await assert.rejects(importArchive({ archive, blobs, from, destination: "d", logger }), /namespaceTags.*missing parent/);
      assert.deepEqual(await archive.nonEmpty(), []);
      for await (const blob of blobs.list()) assert.fail(`blob ${blob.sha256} was left behind`);
    } finally {
      await archive.close();
      await blobs.close();
    }
  });
});
