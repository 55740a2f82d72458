import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport } from "@connectrpc/connect-node";
import { DeliveryState, NamespaceService, PublisherKind, PublisherService, Visibility } from "@mottainai/proto";
import pino from "pino";
import { createAuthenticator } from "../auth/authenticator.js";
import { hashSecret, newId } from "../auth/secrets.js";
import { LocalBlobStore } from "../blob/local-blob-store.js";
import { readTree } from "../delivery/delivery-fixture.js";
import { DeliveryWorker } from "../delivery/delivery-worker.js";
import { createGitDeliverer } from "../delivery/git-deliverer.js";
import { requireRsyncDaemon, TEST_RSYNC_MODULE } from "../delivery/require-rsync-daemon.js";
import { namespaceRevisionFiles } from "../delivery/revision-files.js";
import { createRsyncDeliverer } from "../delivery/rsync-deliverer.js";
import { runCommand } from "../delivery/run-command.js";
import { TagMoveFeed } from "../delivery/tag-move-feed.js";
import { EventBus } from "../events/event-bus.js";
import { NamespacePublisher } from "../namespaces/namespace-publisher.js";
import { openSqliteStore } from "../sqlite/sqlite-store.js";
import type { Store } from "../store/store.js";
import type { UserRole } from "../store/user-store.js";
import { createNamespaceService } from "./namespace-service.js";
import { createPublisherService } from "./publisher-service.js";

const logger = pino({ level: "silent" });
const sha = (data: Buffer) => createHash("sha256").update(data).digest("hex");

async function code(promise: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await promise;
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

async function waitFor<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("PublisherService and namespace delivery (tag move → delivery → target)", function () {
  let store: Store;
  let server: http.Server;
  let url: string;
  let root: string;
  let worker: DeliveryWorker;
  let feed: TagMoveFeed;
  const tokens: Record<string, string> = {};

  const client = <T extends DescService>(who: string, service: T): Client<T> =>
    createClient(
      service,
      createConnectTransport({
        baseUrl: url,
        httpVersion: "1.1",
        interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${tokens[who]}`), next(req))],
      }),
    );
  const publishers = (who: string) => client(who, PublisherService);
  const namespaces = (who: string) => client(who, NamespaceService);

  async function addUser(name: string, role: UserRole) {
    tokens[name] = `mtk_${name}-secret`;
    await store.users.create({ id: `id-${name}`, name, email: "", role, passwordHash: "", createTime: 1 });
    await store.users.createToken({
      id: `tok-${name}`,
      name,
      userId: `id-${name}`,
      hash: hashSecret(tokens[name]),
      createTime: 1,
      lastUseTime: Date.now(),
      expireTime: 0,
    });
  }

  async function upload(name: string, path: string, content: string) {
    const data = Buffer.from(content);
    async function* messages() {
      yield {
        message: { case: "header" as const, value: { name, path, size: BigInt(data.length), sha256: sha(data), tag: "" } },
      };
      yield { message: { case: "chunk" as const, value: data } };
    }
    return (await namespaces("owner").uploadFile(messages())).revision!.number;
  }

  const deliveries = async (namespace: string, publisherId: string) =>
    (await publishers("owner").listDeliveries({ namespace, publisherId })).deliveries;

  /** Waits until the publisher's newest delivery is in `state`, and returns it. */
  const settled = (namespace: string, publisherId: string, state: DeliveryState, revision?: bigint) =>
    waitFor(async () => {
      const [newest] = await deliveries(namespace, publisherId);
      return newest?.state === state && (revision === undefined || newest.revision === revision) ? newest : undefined;
    }, `a delivery of ${publisherId} in state ${DeliveryState[state]}`);

  const eventsOf = async (deliveryId: string) =>
    (await store.events.listAfter(0, 10_000)).filter((e) => e.subjectId === deliveryId).map((e) => e.type);

  before(async () => {
    store = openSqliteStore(":memory:");
    root = mkdtempSync(join(tmpdir(), "mottainai-publisher-test-"));
    const blobs = new LocalBlobStore(join(root, "blobs"));
    const events = new EventBus(store.events);
    const publisher = new NamespacePublisher({ store: store.namespaces, events });
    const workDir = join(root, "delivery");
    worker = new DeliveryWorker({
      store: store.deliveries,
      revisionFiles: namespaceRevisionFiles(store.namespaces),
      blobs,
      deliverers: {
        rsync: createRsyncDeliverer({ workDir, timeoutMs: 60_000 }),
        git: createGitDeliverer({ workDir, timeoutMs: 60_000 }),
      },
      events,
      logger,
      workDir,
      maxAttempts: 3,
      backoff: { baseMs: 50, maxMs: 1000 },
    });
    await worker.start();
    feed = new TagMoveFeed({
      store: store.deliveries,
      eventLog: store.events,
      bus: events,
      onQueued: () => worker.notify(),
      logger,
      newId,
    });
    await feed.start();
    const handler = connectNodeAdapter({
      interceptors: [createAuthenticator(store)],
      routes: (router) => {
        router.service(NamespaceService, createNamespaceService({ store, blobs, publisher, events, maxUploadBytes: 1 << 20 }));
        router.service(PublisherService, createPublisherService({ store, events, onQueued: () => worker.notify(), logger }));
      },
    });
    server = http.createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await addUser("owner", "user");
    await addUser("other", "user");
    await addUser("admin", "admin");
    await namespaces("owner").createNamespace({ name: "repo", visibility: Visibility.INTERNAL });
    await namespaces("owner").createNamespace({ name: "secret", visibility: Visibility.PRIVATE });
  });

  after(async () => {
    await feed.close();
    await worker.close();
    await new Promise((resolve) => server.close(resolve));
    await store.close();
    rmSync(root, { recursive: true, force: true });
  });

  it("lets only those who may change the namespace manage its publishers, and only admins target the server's disk", async () => {
    const remote = { namespace: "repo", kind: PublisherKind.RSYNC, target: "rsync://mirror.example.org/repo" };
    assert.equal(await code(publishers("other").addPublisher(remote)), Code.PermissionDenied, "can read, cannot change");
    assert.equal(await code(publishers("other").addPublisher({ ...remote, namespace: "secret" })), Code.NotFound);
    assert.equal(await code(publishers("other").listPublishers({ namespace: "repo" })), Code.PermissionDenied);
    assert.equal(await code(publishers("other").listDeliveries({ namespace: "repo" })), Code.PermissionDenied);
    const local = { namespace: "repo", kind: PublisherKind.RSYNC, target: join(root, "mirror") };
    assert.equal(await code(publishers("owner").addPublisher(local)), Code.PermissionDenied);
    const gitLocal = { namespace: "repo", kind: PublisherKind.GIT, target: `file://${root}/x.git` };
    assert.equal(await code(publishers("owner").addPublisher(gitLocal)), Code.PermissionDenied);
    for (const bad of [
      { ...remote, kind: PublisherKind.UNSPECIFIED },
      { ...remote, target: "relative/path" },
      { ...remote, target: "-e ssh evil" },
      { ...remote, target: "rsync://host" },
      { ...remote, target: "rsync://user:pw@host/module" },
      { ...remote, branch: "main" },
      { ...remote, kind: PublisherKind.GIT, target: "ext::sh -c touch% /tmp/pwned" },
      { ...remote, kind: PublisherKind.GIT, target: "https://example.org/x.git", branch: "-f" },
      { ...remote, tag: "12" },
    ]) {
      assert.equal(await code(publishers("owner").addPublisher(bad)), Code.InvalidArgument, JSON.stringify(bad));
    }
    const { publisher } = await publishers("owner").addPublisher({
      ...remote,
      kind: PublisherKind.GIT,
      target: "git@example.org:x.git",
    });
    assert.equal(publisher!.branch, "main");
    assert.equal(publisher!.tag, "latest");
    assert.equal(publisher!.creatorId, "id-owner");
    assert.equal(await code(publishers("other").removePublisher({ id: publisher!.id })), Code.PermissionDenied);
    await publishers("owner").removePublisher({ id: publisher!.id });
    assert.deepEqual((await publishers("owner").listPublishers({ namespace: "repo" })).publishers, []);
    assert.equal(await code(publishers("owner").removePublisher({ id: publisher!.id })), Code.NotFound);
  });

  it("retries a delivery to an unwritable path with backoff, fails it, then delivers after the fix through RetryDelivery", async () => {
    const blocker = join(root, "blocker");
    writeFileSync(blocker, "a regular file where the mirror's parent directory should be");
    const target = join(blocker, "mirror");
    const { publisher } = await publishers("admin").addPublisher({ namespace: "repo", kind: PublisherKind.RSYNC, target });
    const revision = await upload("repo", "pool/a.deb", "package a");
    const failed = await settled("repo", publisher!.id, DeliveryState.FAILED);
    assert.equal(failed.revision, revision);
    assert.equal(failed.attempts, 3);
    assert.match(failed.error, /^rsync exited with code \d+: /);
    assert.deepEqual(await eventsOf(failed.id), [
      "delivery.queued",
      "delivery.started",
      "delivery.retrying",
      "delivery.started",
      "delivery.retrying",
      "delivery.started",
      "delivery.failed",
    ]);
    const retrying = (await store.events.listAfter(0, 10_000)).filter(
      (e) => e.subjectId === failed.id && e.type === "delivery.retrying",
    );
    assert.ok(
      retrying.every((e) => Date.parse(e.attributes.next_attempt_time!) >= e.time),
      "each retry names its time",
    );

    rmSync(blocker);
    const { delivery } = await publishers("owner").retryDelivery({ id: failed.id });
    assert.equal(delivery!.state, DeliveryState.PENDING);
    assert.equal(delivery!.attempts, 0);
    const done = await settled("repo", publisher!.id, DeliveryState.SUCCEEDED);
    assert.equal(done.id, failed.id);
    assert.deepEqual(await readTree(target), { "pool/a.deb": "package a" });
    assert.equal((await eventsOf(failed.id)).at(-1), "delivery.succeeded");
    assert.equal(await code(publishers("owner").retryDelivery({ id: failed.id })), Code.FailedPrecondition, "succeeded");

    // Each later tag move is delivered: removed paths disappear.
    await upload("repo", "pool/b.deb", "package b");
    const { revision: removal } = await namespaces("owner").removeFile({ name: "repo", paths: ["pool/a.deb"] });
    await settled("repo", publisher!.id, DeliveryState.SUCCEEDED, removal!.number);
    assert.deepEqual(await readTree(target), { "pool/b.deb": "package b" });
    await publishers("admin").removePublisher({ id: publisher!.id });
  });

  it("delivers the current revision when a publisher is added, and a rollback as a commit of the older tree", async () => {
    const bare = join(root, "published.git");
    await runCommand("git", ["init", "-q", "--bare", bare], { timeoutMs: 30_000 });
    const { revision: current } = await namespaces("owner").getRevision({ name: "repo", ref: "latest" });
    const { publisher } = await publishers("admin").addPublisher({ namespace: "repo", kind: PublisherKind.GIT, target: bare });
    const first = await settled("repo", publisher!.id, DeliveryState.SUCCEEDED);
    assert.equal(first.revision, current!.number);
    await namespaces("owner").setTag({ name: "repo", tag: "latest", ref: "1" });
    await settled("repo", publisher!.id, DeliveryState.SUCCEEDED, 1n);
    const clone = join(root, "clone");
    await runCommand("git", ["clone", "-q", "--branch", "main", bare, clone], { timeoutMs: 30_000 });
    assert.deepEqual(await readTree(clone), { "pool/a.deb": "package a" });
    const subjects = (await runCommand("git", ["log", "--format=%s"], { cwd: clone, timeoutMs: 30_000 })).trim().split("\n");
    assert.deepEqual(subjects, ["repo: revision 1", `repo: revision ${current!.number}`]);
  });

  it("refuses to retry a delivery that a newer tag move replaced", async () => {
    const blocker = join(root, "blocker-stable");
    writeFileSync(blocker, "");
    await namespaces("owner").setTag({ name: "repo", tag: "stable", ref: "1" });
    const { publisher } = await publishers("admin").addPublisher({
      namespace: "repo",
      kind: PublisherKind.RSYNC,
      target: join(blocker, "mirror"),
      tag: "stable",
    });
    const old = await settled("repo", publisher!.id, DeliveryState.FAILED);
    assert.equal(old.revision, 1n);
    await namespaces("owner").setTag({ name: "repo", tag: "stable", ref: "2" });
    const newer = await settled("repo", publisher!.id, DeliveryState.FAILED, 2n);
    const refused = await publishers("owner")
      .retryDelivery({ id: old.id })
      .then(
        () => undefined,
        (err: unknown) => ConnectError.from(err),
      );
    assert.equal(refused?.code, Code.FailedPrecondition);
    assert.match(refused!.rawMessage, new RegExp(`delivery ${newer.id} \\(revision 2\\) of the same publisher is newer`));
    assert.equal(await code(publishers("owner").retryDelivery({ id: "no-such-delivery" })), Code.NotFound);
    assert.equal(await code(publishers("other").retryDelivery({ id: newer.id })), Code.PermissionDenied);
    await publishers("admin").removePublisher({ id: publisher!.id });
    assert.deepEqual(await deliveries("repo", publisher!.id), [], "a removed publisher's deliveries go with it");
  });

  describe("to an rsync daemon", function () {
    before(async function () {
      if (!(await requireRsyncDaemon(Boolean(process.env.CI)))) this.skip();
    });

    it("lets a namespace owner deliver to a daemon module; a missing module is retried, then failed", async () => {
      await namespaces("owner").createNamespace({ name: "daemon-repo", visibility: Visibility.PRIVATE });
      const good = await publishers("owner").addPublisher({
        namespace: "daemon-repo",
        kind: PublisherKind.RSYNC,
        target: `${TEST_RSYNC_MODULE}/publisher-test-${process.pid}-${Date.now()}`,
      });
      const bad = await publishers("owner").addPublisher({
        namespace: "daemon-repo",
        kind: PublisherKind.RSYNC,
        target: TEST_RSYNC_MODULE.replace(/mottainai$/, "no-such-module"),
      });
      await upload("daemon-repo", "index.html", "<h1>hello</h1>");
      await settled("daemon-repo", good.publisher!.id, DeliveryState.SUCCEEDED);
      const fetched = join(root, "fetched");
      await runCommand("rsync", ["-a", `${good.publisher!.target}/`, `${fetched}/`], { timeoutMs: 30_000 });
      assert.deepEqual(await readTree(fetched), { "index.html": "<h1>hello</h1>" });
      const failed = await settled("daemon-repo", bad.publisher!.id, DeliveryState.FAILED);
      assert.match(failed.error, /Unknown module 'no-such-module'/);
      assert.equal(failed.attempts, 3);
    });
  });
});
