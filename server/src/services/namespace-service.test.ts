import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport } from "@connectrpc/connect-node";
import { MemberRole, NamespaceService, OrganizationService, Visibility } from "@mottainai/proto";
import pino from "pino";
import { createAuthenticator } from "../auth/authenticator.js";
import { hashSecret } from "../auth/secrets.js";
import { LocalBlobStore } from "../blob/local-blob-store.js";
import { EventBus } from "../events/event-bus.js";
import { artefactRoute, createFileRoutes } from "../http/file-routes.js";
import { namespaceRoute } from "../http/namespace-route.js";
import { NAMESPACE_PUBLISH_FAILED, NAMESPACE_TAG_MOVED } from "../namespaces/namespace-events.js";
import { NamespacePublisher } from "../namespaces/namespace-publisher.js";
import { createPublishOnSuccess } from "../namespaces/task-artefact-publishing.js";
import { openSqliteStore } from "../sqlite/sqlite-store.js";
import { newWaitingTask } from "../store/new-task.js";
import type { Store } from "../store/store.js";
import type { TaskDefinition, TaskRecord } from "../store/task-store.js";
import type { UserRole } from "../store/user-store.js";
import { createNamespaceService } from "./namespace-service.js";
import { createOrganizationService } from "./organization-service.js";
import { testDefinition as definition } from "../store/task-store-conformance.js";

const sha = (data: Buffer) => createHash("sha256").update(data).digest("hex");
const VISIBILITIES = { pub: Visibility.PUBLIC, int: Visibility.INTERNAL, org: Visibility.ORGANIZATION, priv: Visibility.PRIVATE };
type NsName = keyof typeof VISIBILITIES;
const CONTENT = (ns: string) => Buffer.from(`content of ${ns}: 0123456789`);

async function code(promise: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await promise;
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

describe("NamespaceService, OrganizationService and the namespace HTTP route", function () {
  let store: Store;
  let server: http.Server;
  let url: string;
  let blobDir: string;
  let events: EventBus;
  let publisher: NamespacePublisher;
  const tokens: Record<string, string> = {};
  const ids: Record<string, string> = {};

  const client = <T extends DescService>(who: string, service: T): Client<T> =>
    createClient(
      service,
      createConnectTransport({
        baseUrl: url,
        httpVersion: "1.1",
        interceptors: tokens[who]
          ? [(next) => (req) => (req.header.set("authorization", `Bearer ${tokens[who]}`), next(req))]
          : [],
      }),
    );
  const ns = (who: string) => client(who, NamespaceService);

  async function* uploadMessages(name: string, path: string, data: Buffer, tag = "") {
    yield { message: { case: "header" as const, value: { name, path, size: BigInt(data.length), sha256: sha(data), tag } } };
    yield { message: { case: "chunk" as const, value: data } };
  }

  async function download(who: string, name: string, path: string, ref = "", offset = 0n): Promise<Buffer> {
    const parts: Uint8Array[] = [];
    for await (const m of ns(who).downloadFile({ name, path, ref, offset })) parts.push(m.chunk);
    return Buffer.concat(parts);
  }

  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${url}${path}`, { headers }).then(async (r) => ({
      status: r.status,
      headers: r.headers,
      body: Buffer.from(await r.arrayBuffer()),
    }));

  async function addUser(name: string, role: UserRole) {
    ids[name] = `id-${name}`;
    tokens[name] = `mtk_${name}-secret`;
    await store.users.create({ id: ids[name], name, email: "", role, passwordHash: "", createTime: 1 });
    await store.users.createToken({
      id: `tok-${name}`,
      name,
      userId: ids[name],
      hash: hashSecret(tokens[name]),
      createTime: 1,
      lastUseTime: Date.now(),
      expireTime: 0,
    });
  }

  /** A running task of owner declaring namespaces, and its task token under tokens[who]. */
  async function addTask(
    who: string,
    owner: string,
    namespaces: string[],
    extra: Partial<TaskDefinition> = {},
  ): Promise<TaskRecord> {
    const task = await store.tasks.create(
      newWaitingTask({
        id: `task-${who}`,
        definition: { ...definition, namespace: namespaces, ...extra },
        ownerId: ids[owner]!,
        now: 1,
      }),
    );
    tokens[who] = `mtt_${who}-secret`;
    const assigned = await store.tasks.assign({
      taskId: task.id,
      fromAttempt: 0,
      nodeId: "n1",
      leaseId: "L1",
      leaseExpireTime: Date.now() + 3_600_000,
      logBase: 0,
      tokenHash: hashSecret(tokens[who]),
      now: Date.now(),
    });
    return assigned!;
  }

  before(async () => {
    store = openSqliteStore(":memory:");
    blobDir = mkdtempSync(join(tmpdir(), "mottainai-ns-test-"));
    const blobs = new LocalBlobStore(blobDir);
    events = new EventBus(store.events);
    publisher = new NamespacePublisher({ store: store.namespaces, events });
    const handler = connectNodeAdapter({
      interceptors: [createAuthenticator(store)],
      routes: (router) => {
        router.service(NamespaceService, createNamespaceService({ store, blobs, publisher, events, maxUploadBytes: 1 << 20 }));
        router.service(OrganizationService, createOrganizationService({ store }));
      },
    });
    const files = createFileRoutes({
      store,
      blobs,
      routes: [artefactRoute(store), namespaceRoute(store, publisher)],
      logger: pino({ level: "silent" }),
    });
    server = http.createServer((req, res) => {
      if (!files(req, res)) handler(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    await addUser("owner", "user");
    await addUser("other", "user");
    await addUser("member", "user");
    await addUser("orgowner", "user");
    await addUser("admin", "admin");
    const orgs = client("admin", OrganizationService);
    const { organization } = await orgs.createOrganization({ name: "team" });
    ids.org = organization!.id;
    for (const [who, role] of [
      ["owner", MemberRole.MEMBER],
      ["member", MemberRole.MEMBER],
      ["orgowner", MemberRole.OWNER],
    ] as const) {
      await orgs.addOrganizationMember({ organizationId: "team", userId: who, role });
    }
    for (const [name, visibility] of Object.entries(VISIBILITIES)) {
      await ns("owner").createNamespace({ name, visibility, organizationId: name === "org" ? "team" : "" });
      await ns("owner").uploadFile(uploadMessages(name, "dir/file.txt", CONTENT(name)));
    }
    await addTask("task", "owner", ["pub", "int", "org", "priv"]);
    await addTask("othertask", "other", ["pub", "int", "org", "priv"]);
  });

  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    await store.close();
    rmSync(blobDir, { recursive: true, force: true });
  });

  // Who reads which visibility: everyone else gets NotFound, never the data.
  const READERS: Record<string, NsName[]> = {
    anonymous: ["pub"],
    other: ["pub", "int"],
    member: ["pub", "int", "org"],
    orgowner: ["pub", "int", "org"],
    owner: ["pub", "int", "org", "priv"],
    admin: ["pub", "int", "org", "priv"],
    task: ["pub", "int", "org", "priv"],
    othertask: ["pub", "int"],
  };

  for (const [who, readable] of Object.entries(READERS)) {
    for (const name of Object.keys(VISIBILITIES) as NsName[]) {
      const allowed = readable.includes(name);
      it(`${who} ${allowed ? "reads" : "gets NotFound for"} the ${name} namespace on every read RPC`, async () => {
        const c = ns(who);
        const calls: [string, () => Promise<unknown>][] = [
          ["getNamespace", () => c.getNamespace({ name })],
          ["listFiles", () => c.listFiles({ name })],
          ["listRevisions", () => c.listRevisions({ name })],
          ["getRevision", () => c.getRevision({ name, ref: "1" })],
          ["diffRevisions", () => c.diffRevisions({ name, fromRef: "0", toRef: "latest" })],
          ["downloadFile", () => download(who, name, "dir/file.txt")],
        ];
        for (const [method, call] of calls) {
          assert.equal(await code(call()), allowed ? "ok" : Code.NotFound, `${method} by ${who} on ${name}`);
        }
        if (allowed) {
          assert.deepEqual(await download(who, name, "dir/file.txt"), CONTENT(name));
          const { files } = await c.listFiles({ name });
          assert.deepEqual(
            files.map((f) => f.path),
            ["dir/file.txt"],
          );
        }
        const { namespaces } = await c.listNamespaces({});
        assert.equal(
          namespaces.some((n) => n.name === name),
          allowed,
          `listNamespaces by ${who}`,
        );
      });
    }
  }

  it("a missing namespace answers NotFound exactly like an unreadable one", async () => {
    assert.equal(await code(ns("other").getNamespace({ name: "nope" })), Code.NotFound);
    const [missing, hidden] = await Promise.all([
      ns("other")
        .getNamespace({ name: "nope" })
        .catch((e: unknown) => ConnectError.from(e).rawMessage),
      ns("other")
        .getNamespace({ name: "priv" })
        .catch((e: unknown) => ConnectError.from(e).rawMessage),
    ]);
    assert.equal(hidden, String(missing).replace("nope", "priv"));
  });

  it("write rights: owner, organization owners and admins; PermissionDenied for readers; NotFound for others", async () => {
    const up = (who: string, name: string) => ns(who).uploadFile(uploadMessages(name, `w-${who}.txt`, Buffer.from(who)));
    assert.equal(await code(up("anonymous", "pub")), Code.Unauthenticated);
    assert.equal(await code(up("other", "pub")), Code.PermissionDenied);
    assert.equal(await code(up("other", "priv")), Code.NotFound);
    assert.equal(await code(up("member", "org")), Code.PermissionDenied);
    assert.equal(await code(up("task", "priv")), Code.PermissionDenied);
    assert.equal(await code(up("orgowner", "org")), "ok");
    assert.equal(await code(up("admin", "priv")), "ok");
    assert.equal(await code(ns("other").setTag({ name: "pub", tag: "latest", ref: "1" })), Code.PermissionDenied);
    assert.equal(await code(ns("other").deleteNamespace({ name: "int" })), Code.PermissionDenied);
    assert.equal(await code(ns("member").updateNamespace({ name: "org", visibility: Visibility.PUBLIC })), Code.PermissionDenied);
    assert.equal(await code(ns("other").removeFile({ name: "priv", paths: ["dir/file.txt"] })), Code.NotFound);
  });

  it("creates with validated names, AlreadyExists on a taken one, and updates visibility", async () => {
    assert.equal(await code(ns("owner").createNamespace({ name: "../x" })), Code.InvalidArgument);
    assert.equal(await code(ns("owner").createNamespace({ name: "pub" })), Code.AlreadyExists);
    assert.equal(await code(ns("anonymous").createNamespace({ name: "anon" })), Code.Unauthenticated);
    assert.equal(await code(ns("other").createNamespace({ name: "x", organizationId: "team" })), Code.PermissionDenied);
    const { namespace } = await ns("other").createNamespace({ name: "mine" });
    assert.equal(namespace?.visibility, Visibility.PRIVATE);
    assert.equal(await code(ns("anonymous").getNamespace({ name: "mine" })), Code.NotFound);
    await ns("other").updateNamespace({ name: "mine", visibility: Visibility.PUBLIC });
    assert.equal((await ns("anonymous").getNamespace({ name: "mine" })).namespace?.name, "mine");
    await ns("other").deleteNamespace({ name: "mine" });
    assert.equal(await code(ns("other").getNamespace({ name: "mine" })), Code.NotFound);
  });

  it("upload, remove, tag, rollback, diff, clone and download with offsets", async () => {
    const c = ns("owner");
    await c.createNamespace({ name: "work", visibility: Visibility.PUBLIC });
    const a1 = Buffer.from("a one");
    const r1 = await c.uploadFile(uploadMessages("work", "./a//x.txt", a1));
    assert.equal(r1.file?.path, "a/x.txt");
    assert.equal(r1.revision?.number, 1n);
    await c.uploadFile(uploadMessages("work", "b.txt", Buffer.from("b")));
    await c.uploadFile(uploadMessages("work", "a/x.txt", Buffer.from("a two")));
    assert.equal(await code(c.uploadFile(uploadMessages("work", "../evil", Buffer.from("x")))), Code.InvalidArgument);
    assert.equal(await code(c.removeFile({ name: "work", paths: ["missing"] })), Code.NotFound);
    const r4 = await c.removeFile({ name: "work", paths: ["b.txt"] });
    assert.equal(r4.revision?.number, 4n);
    const diff = await c.diffRevisions({ name: "work", fromRef: "1", toRef: "4" });
    assert.deepEqual(
      [diff.added.map((f) => f.path), diff.removed.map((f) => f.path), diff.changed.map((f) => f.path)],
      [[], [], ["a/x.txt"]],
    );
    const parentDiff = await c.diffRevisions({ name: "work", toRef: "4" });
    assert.deepEqual(
      parentDiff.removed.map((f) => f.path),
      ["b.txt"],
    );

    const moved: string[] = [];
    const stop = events.listen((e) => {
      if (e.type === NAMESPACE_TAG_MOVED) moved.push(`${e.subjectId}:${e.attributes.tag}=${e.attributes.revision}`);
    });
    await c.setTag({ name: "work", tag: "latest", ref: "2" });
    assert.equal(await code(c.setTag({ name: "work", tag: "123", ref: "2" })), Code.InvalidArgument);
    assert.equal(await code(c.setTag({ name: "work", tag: "x", ref: "99" })), Code.NotFound);
    const old = await get("/namespaces/work/a/x.txt");
    assert.equal(old.status, 200);
    assert.deepEqual(old.body, a1, "after the rollback, HTTP serves revision 2's bytes");
    assert.equal(old.headers.get("etag"), `"${sha(a1)}"`);
    assert.deepEqual((await get("/namespaces/work/@3/a/x.txt")).body, Buffer.from("a two"));

    const r5 = await c.uploadFile(uploadMessages("work", "c.txt", Buffer.from("c")));
    assert.equal(r5.revision?.parent, 2n);
    const { files } = await c.listFiles({ name: "work" });
    assert.deepEqual(
      files.map((f) => f.path),
      ["a/x.txt", "b.txt", "c.txt"],
    );
    assert.deepEqual(moved, ["work:latest=2", "work:latest=5"]);
    stop();

    assert.deepEqual(await download("anonymous", "work", "a/x.txt", "", 2n), Buffer.from("one"));
    assert.deepEqual(await download("anonymous", "work", "a/x.txt", "", 5n), Buffer.from(""));
    assert.equal(await code(download("anonymous", "work", "a/x.txt", "", 6n)), Code.OutOfRange);
    assert.equal(await code(download("anonymous", "work", "a/x.txt", "nosuchtag")), Code.NotFound);

    const { revisions } = await c.listRevisions({ name: "work" });
    assert.deepEqual(
      revisions.map((r) => [r.number, r.parent, r.fileCount]),
      [
        [5n, 2n, 3n],
        [4n, 3n, 1n],
        [3n, 2n, 2n],
        [2n, 1n, 2n],
        [1n, 0n, 1n],
      ],
    );

    const clone = await ns("other").cloneNamespace({ fromName: "work", fromRef: "3", toName: "work-copy" });
    assert.equal(clone.namespace?.ownerId, ids.other);
    assert.deepEqual(
      (await ns("other").listFiles({ name: "work-copy" })).files.map((f) => f.path),
      ["a/x.txt", "b.txt"],
    );
    assert.equal(await code(ns("other").cloneNamespace({ fromName: "priv", toName: "stolen" })), Code.NotFound);
    // The original's `namespace clone NS --from ORIG`: replace overwrites an existing namespace.
    assert.equal(
      await code(ns("other").cloneNamespace({ fromName: "work", fromRef: "1", toName: "work-copy" })),
      Code.AlreadyExists,
    );
    assert.equal(
      await code(c.cloneNamespace({ fromName: "work", fromRef: "1", toName: "work-copy", replace: true })),
      Code.PermissionDenied,
    );
    const replaced = await ns("other").cloneNamespace({ fromName: "work", fromRef: "1", toName: "work-copy", replace: true });
    assert.deepEqual(
      [replaced.namespace?.name, replaced.namespace?.headRevision, replaced.revision?.number, replaced.revision?.parent],
      ["work-copy", 2n, 2n, 1n],
    );
    assert.equal(replaced.revision?.message, "clone of work@1");
    assert.deepEqual(
      (await ns("other").listFiles({ name: "work-copy" })).files.map((f) => [f.path, f.sha256]),
      [["a/x.txt", sha(a1)]],
    );
    const fresh = await ns("other").cloneNamespace({ fromName: "work", fromRef: "3", toName: "work-new", replace: true });
    assert.deepEqual([fresh.namespace?.headRevision, fresh.revision?.number], [1n, 1n]);

    await c.setTag({ name: "work", tag: "stable", ref: "latest" });
    await c.deleteTag({ name: "work", tag: "stable" });
    assert.equal(await code(c.deleteTag({ name: "work", tag: "stable" })), Code.NotFound);
  });

  it("serves namespace files over plain HTTP: anonymous for public, Range, 416, 404 for private", async () => {
    const data = CONTENT("pub");
    const whole = await get("/namespaces/pub/dir/file.txt");
    assert.equal(whole.status, 200);
    assert.deepEqual(whole.body, data);
    assert.equal(whole.headers.get("content-length"), String(data.length));
    const part = await get("/namespaces/pub/dir/file.txt", { range: "bytes=2-5" });
    assert.equal(part.status, 206);
    assert.deepEqual(part.body, data.subarray(2, 6));
    assert.equal(part.headers.get("content-range"), `bytes 2-5/${data.length}`);
    assert.equal((await get("/namespaces/pub/@1/dir/file.txt")).status, 200);
    assert.equal((await get("/namespaces/pub/dir/file.txt", { range: `bytes=${data.length}-` })).status, 416);
    assert.equal((await get("/namespaces/pub/missing")).status, 404);
    assert.equal((await get("/namespaces/pub/@9/dir/file.txt")).status, 404);
    for (const name of ["int", "org", "priv", "nope"]) {
      const hidden = await get(`/namespaces/${name}/dir/file.txt`);
      assert.equal(hidden.status, 404, name);
      assert.ok(!hidden.body.includes(CONTENT(name)));
    }
    const auth = (who: string) => ({ authorization: `Bearer ${tokens[who]}` });
    assert.equal((await get("/namespaces/priv/dir/file.txt", auth("other"))).status, 404);
    assert.equal((await get("/namespaces/int/dir/file.txt", auth("other"))).status, 200);
    const own = await get("/namespaces/priv/dir/file.txt", auth("owner"));
    assert.equal(own.status, 200);
    assert.deepEqual(own.body, CONTENT("priv"));
    assert.equal((await get("/namespaces/priv/dir/file.txt", auth("task"))).status, 200);
    assert.equal((await get("/namespaces/priv/dir/file.txt", { authorization: "Bearer mtk_wrong" })).status, 401);
  });

  it("20 concurrent UploadFile calls make 20 consecutive revisions, each its parent plus one file", async () => {
    const c = ns("owner");
    await c.createNamespace({ name: "busy" });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => c.uploadFile(uploadMessages("busy", `f${i}`, Buffer.from(`file ${i}`)))),
    );
    const numbers = results.map((r) => Number(r.revision!.number)).sort((a, b) => a - b);
    assert.deepEqual(
      numbers,
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    for (const r of results) {
      const n = r.revision!.number;
      assert.equal(r.revision!.parent, n - 1n);
      const diff = await c.diffRevisions({ name: "busy", fromRef: String(n - 1n), toRef: String(n) });
      assert.deepEqual(
        diff.added.map((f) => f.path),
        [r.file!.path],
      );
      assert.equal(diff.removed.length + diff.changed.length, 0);
    }
  });

  it("publishes a task's artefacts (replace and append) over RPC and on success", async () => {
    const c = ns("owner");
    await c.createNamespace({ name: "repo" });
    const task = await addTask("publisher", "owner", [], { tagNamespace: "repo" });
    const blobs = new LocalBlobStore(blobDir);
    const put = async (taskId: string, path: string, text: string) => {
      const info = await blobs.put([Buffer.from(text)]);
      await store.artefacts.put({ taskId, path, ...info, createTime: 1 });
    };
    await put(task.id, "pkg/a.deb", "a");
    await put(task.id, "pkg/b.deb", "b");
    const r1 = await c.publishTaskArtefacts({ name: "repo", taskId: task.id });
    assert.equal(r1.revision?.taskId, task.id);
    const appendTask = await addTask("appender", "owner", [], { tagNamespace: "repo", publishMode: "append" });
    await put(appendTask.id, "pkg/c.deb", "c");
    const onSuccess = createPublishOnSuccess({ store, publisher, events, logger: pino({ level: "silent" }) });
    assert.equal(await onSuccess(appendTask), "");
    assert.deepEqual(
      (await c.listFiles({ name: "repo" })).files.map((f) => f.path),
      ["pkg/a.deb", "pkg/b.deb", "pkg/c.deb"],
    );
    assert.equal(await onSuccess(task), "", "replace mode");
    assert.deepEqual(
      (await c.listFiles({ name: "repo" })).files.map((f) => f.path),
      ["pkg/a.deb", "pkg/b.deb"],
    );
    assert.equal(await code(ns("other").publishTaskArtefacts({ name: "pub", taskId: task.id })), Code.PermissionDenied);

    const failures: string[] = [];
    const stop = events.listen((e) => e.type === NAMESPACE_PUBLISH_FAILED && failures.push(e.attributes.namespace ?? ""));
    const missing = await addTask("missing", "owner", [], { tagNamespace: "no-such-ns" });
    assert.match(await onSuccess(missing), /publishing artefacts to namespace no-such-ns failed: namespace no-such-ns not found/);
    const foreign = await addTask("foreign", "other", [], { tagNamespace: "repo" });
    assert.match(await onSuccess(foreign), /may not write namespace repo/);
    assert.deepEqual(failures, ["no-such-ns", "repo"]);
    stop();
  });

  it("organizations: managers create, users see their own, owners manage members", async () => {
    assert.equal(await code(client("other", OrganizationService).createOrganization({ name: "x" })), Code.PermissionDenied);
    assert.equal(await code(client("admin", OrganizationService).createOrganization({ name: "team" })), Code.AlreadyExists);
    assert.deepEqual(
      (await client("member", OrganizationService).listOrganizations({})).organizations.map((o) => o.name),
      ["team"],
    );
    assert.deepEqual((await client("other", OrganizationService).listOrganizations({})).organizations, []);
    assert.equal(await code(client("other", OrganizationService).getOrganization({ id: "team" })), Code.NotFound);
    assert.equal(
      await code(client("member", OrganizationService).addOrganizationMember({ organizationId: "team", userId: "other" })),
      Code.PermissionDenied,
    );
    const { organization } = await client("orgowner", OrganizationService).addOrganizationMember({
      organizationId: "team",
      userId: "other",
    });
    assert.ok(organization?.members.some((m) => m.userId === ids.other && m.role === MemberRole.MEMBER));
    assert.equal((await ns("other").getNamespace({ name: "org" })).namespace?.name, "org");
    await client("orgowner", OrganizationService).removeOrganizationMember({ organizationId: "team", userId: "other" });
    assert.equal(await code(ns("other").getNamespace({ name: "org" })), Code.NotFound);
  });
});
