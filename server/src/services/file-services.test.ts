import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  ArtefactService,
  StorageService,
  TaskSpecSchema,
  UploadArtefactRequestSchema,
  UploadStorageFileRequestSchema,
} from "@mottainai/proto";
import { pino } from "pino";
import { generateSecret, hashSecret, newId } from "../auth/secrets.js";
import { loadServerConfig } from "../config.js";
import { definitionFromSpec } from "../convert/task-convert.js";
import { startServer, type MottainaiServer } from "../server.js";
import { openSqliteStore } from "../sqlite/sqlite-store.js";
import { newWaitingTask } from "../store/new-task.js";
import type { Store } from "../store/store.js";
import type { UserRole } from "../store/user-store.js";

const MAX_UPLOAD = 1024 * 1024;
const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

/** A server in this process on a free port, with a second connection to its database for set-up. */
describe("artefact and storage services, task tokens, HTTP file routes", function () {
  this.timeout(30_000);
  let dataDir: string;
  let server: MottainaiServer;
  let store: Store;
  let url: string;
  const tokens: Record<string, string> = {};
  let transport: ReturnType<typeof createGrpcTransport>;
  let artefacts: Client<typeof ArtefactService>;
  let storages: Client<typeof StorageService>;

  const as = (who: string) => ({ headers: { authorization: `Bearer ${tokens[who] ?? who}` } });

  const addUser = async (name: string, role: UserRole) => {
    const user = { id: newId(), name, email: "", role, passwordHash: "", createTime: 1 };
    await store.users.create(user);
    const secret = generateSecret("mtk");
    await store.users.createToken({
      id: newId(),
      name: "t",
      userId: user.id,
      hash: hashSecret(secret),
      createTime: 1,
      lastUseTime: 0,
      expireTime: 0,
    });
    tokens[name] = secret;
    return user;
  };

  /** A task of owner in its first attempt (running), whose task token is tokens[id]. */
  const addRunningTask = async (id: string, ownerId: string, spec: { storage?: string[]; rootTask?: string[] } = {}) => {
    const definition = definitionFromSpec(create(TaskSpecSchema, { name: id, type: "host", script: ["true"], ...spec }));
    await store.tasks.create(newWaitingTask({ id, definition, ownerId, now: 1 }));
    const secret = generateSecret("mtt");
    await store.tasks.assign({
      taskId: id,
      fromAttempt: 0,
      nodeId: "n1",
      leaseId: `L-${id}`,
      leaseExpireTime: Date.now() + 3_600_000,
      logBase: 0,
      tokenHash: hashSecret(secret),
      now: Date.now(),
    });
    tokens[id] = secret;
  };

  async function* uploadMessages(taskId: string, path: string, data: Uint8Array, digest = sha256(data), size = data.length) {
    yield create(UploadArtefactRequestSchema, {
      message: { case: "header", value: { taskId, path, size: BigInt(size), sha256: digest } },
    });
    for (let i = 0; i < data.length; i += 64 * 1024) {
      yield create(UploadArtefactRequestSchema, { message: { case: "chunk", value: data.subarray(i, i + 64 * 1024) } });
    }
  }

  const upload = (taskId: string, path: string, data: Uint8Array, who = taskId) =>
    artefacts.uploadArtefact(uploadMessages(taskId, path, data), as(who));

  async function* storageMessages(id: string, path: string, data: Uint8Array) {
    yield create(UploadStorageFileRequestSchema, {
      message: { case: "header", value: { id, path, size: BigInt(data.length), sha256: sha256(data) } },
    });
    yield create(UploadStorageFileRequestSchema, { message: { case: "chunk", value: data } });
  }

  const download = async (stream: AsyncIterable<{ chunk: Uint8Array; offset: bigint }>) => {
    const parts: Uint8Array[] = [];
    for await (const m of stream) parts.push(m.chunk);
    return Buffer.concat(parts);
  };

  const rejectsWith = async (p: Promise<unknown>, code: Code, message?: RegExp) => {
    await assert.rejects(p, (err: unknown) => {
      const ce = ConnectError.from(err);
      assert.equal(Code[ce.code], Code[code], ce.rawMessage);
      if (message) assert.match(ce.rawMessage, message);
      return true;
    });
  };

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "mottainai-files-"));
    const config = loadServerConfig(
      ["--listen", "127.0.0.1:0", "--data-dir", dataDir, "--max-upload-size", String(MAX_UPLOAD)],
      {},
    );
    server = await startServer(config, pino({ level: "silent" }));
    tokens.admin = server.adminToken!;
    store = openSqliteStore(join(dataDir, "mottainai.db"));
    url = `http://127.0.0.1:${server.port}`;
    transport = createGrpcTransport({ baseUrl: url });
    artefacts = createClient(ArtefactService, transport);
    storages = createClient(StorageService, transport);
    const alice = await addUser("alice", "user");
    const bob = await addUser("bob", "user");
    await addUser("manager", "manager");
    await addRunningTask("tb", alice.id);
    await addRunningTask("ta", alice.id, { storage: ["distfiles"], rootTask: ["tb"] });
    await addRunningTask("tbob", bob.id);
    // Bob's task names Alice's task and storage: its token must not reach further than Bob's.
    await addRunningTask("tsneaky", bob.id, { storage: ["distfiles"], rootTask: ["tb"] });
  });

  after(async () => {
    await store?.close();
    await server?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  describe("ArtefactService", () => {
    const data = randomBytes(300 * 1024);

    it("takes a task's upload with its token and serves it back, whole and from an offset", async () => {
      const { artefact } = await upload("tb", "pkgs//./a.bin", data);
      assert.equal(artefact?.path, "pkgs/a.bin");
      assert.equal(artefact?.size, BigInt(data.length));
      assert.equal(artefact?.sha256, sha256(data));
      const { artefacts: list } = await artefacts.listArtefacts({ taskId: "tb" }, as("alice"));
      assert.deepEqual(
        list.map((a) => [a.path, a.size, a.sha256]),
        [["pkgs/a.bin", BigInt(data.length), sha256(data)]],
      );
      assert.deepEqual(await download(artefacts.downloadArtefact({ taskId: "tb", path: "pkgs/a.bin" }, as("alice"))), data);
      const tail = await download(artefacts.downloadArtefact({ taskId: "tb", path: "pkgs/a.bin", offset: 1000n }, as("alice")));
      assert.deepEqual(tail, data.subarray(1000));
      const end = await download(
        artefacts.downloadArtefact({ taskId: "tb", path: "pkgs/a.bin", offset: BigInt(data.length) }, as("alice")),
      );
      assert.equal(end.length, 0);
      await rejectsWith(
        download(artefacts.downloadArtefact({ taskId: "tb", path: "pkgs/a.bin", offset: BigInt(data.length + 1) }, as("alice"))),
        Code.OutOfRange,
        /^offset: /,
      );
      await rejectsWith(download(artefacts.downloadArtefact({ taskId: "tb", path: "nope" }, as("alice"))), Code.NotFound);
    });

    it("replaces a path uploaded again; lists by prefix", async () => {
      await upload("tb", "r.txt", Buffer.from("one"));
      await upload("tb", "r.txt", Buffer.from("second"));
      const { artefacts: list } = await artefacts.listArtefacts({ taskId: "tb", prefix: "r." }, as("alice"));
      assert.deepEqual(
        list.map((a) => [a.path, a.size]),
        [["r.txt", 6n]],
      );
      assert.equal((await download(artefacts.downloadArtefact({ taskId: "tb", path: "r.txt" }, as("tb")))).toString(), "second");
    });

    it("refuses bad paths naming header.path", async () => {
      for (const path of ["../x", "a/../../x", "/abs", "a\0b", ""]) {
        await rejectsWith(upload("tb", path, Buffer.from("x")), Code.InvalidArgument, /^header\.path: /);
      }
      await rejectsWith(
        download(artefacts.downloadArtefact({ taskId: "tb", path: "../x" }, as("alice"))),
        Code.InvalidArgument,
        /^path: /,
      );
    });

    it("lets only the task itself upload: another task's token and users are refused", async () => {
      await rejectsWith(upload("tb", "x", Buffer.from("x"), "ta"), Code.PermissionDenied, /header\.task_id/);
      await rejectsWith(upload("tb", "x", Buffer.from("x"), "admin"), Code.PermissionDenied);
      await rejectsWith(upload("tb", "x", Buffer.from("x"), "alice"), Code.PermissionDenied);
      await rejectsWith(upload("tb", "x", Buffer.from("x"), "mtt_forged"), Code.Unauthenticated);
      const { artefacts: list } = await artefacts.listArtefacts({ taskId: "tb", prefix: "x" }, as("alice"));
      assert.equal(list.length, 0);
    });

    it("refuses an upload over the limit with ResourceExhausted naming header.size", async () => {
      const big = Buffer.alloc(16);
      await rejectsWith(
        artefacts.uploadArtefact(uploadMessages("tb", "big", big, sha256(big), MAX_UPLOAD + 1), as("tb")),
        Code.ResourceExhausted,
        /^header\.size: /,
      );
    });

    it("commits nothing of a corrupted upload (wrong sha256); a retry succeeds", async () => {
      const bytes = randomBytes(100_000);
      await rejectsWith(
        artefacts.uploadArtefact(uploadMessages("tb", "c.bin", bytes, sha256(Buffer.from("other"))), as("tb")),
        Code.DataLoss,
        /^header\.sha256: /,
      );
      assert.equal((await artefacts.listArtefacts({ taskId: "tb", prefix: "c.bin" }, as("alice"))).artefacts.length, 0);
      await upload("tb", "c.bin", bytes);
      assert.equal((await artefacts.listArtefacts({ taskId: "tb", prefix: "c.bin" }, as("alice"))).artefacts.length, 1);
    });

    it("commits nothing of an upload the client aborts midway; a retry succeeds", async () => {
      const bytes = randomBytes(512 * 1024);
      const abort = new AbortController();
      let sent = 0;
      async function* halfway() {
        for await (const m of uploadMessages("tb", "i.bin", bytes)) {
          if (m.message.case === "chunk") {
            sent += m.message.value.length;
            if (sent > bytes.length / 2) {
              await new Promise((r) => setTimeout(r, 100));
              abort.abort();
              await new Promise((r) => setTimeout(r, 100));
              return;
            }
          }
          yield m;
        }
      }
      await assert.rejects(artefacts.uploadArtefact(halfway(), { ...as("tb"), signal: abort.signal }));
      await new Promise((r) => setTimeout(r, 200));
      assert.equal((await artefacts.listArtefacts({ taskId: "tb", prefix: "i.bin" }, as("alice"))).artefacts.length, 0);
      await upload("tb", "i.bin", bytes);
      const { artefacts: list } = await artefacts.listArtefacts({ taskId: "tb", prefix: "i.bin" }, as("alice"));
      assert.equal(list[0]?.sha256, sha256(bytes));
    });

    it("lets the owner, managers, admins and tasks naming it in root_task read; others are refused", async () => {
      for (const who of ["alice", "admin", "manager", "ta", "tb"]) {
        const { artefacts: list } = await artefacts.listArtefacts({ taskId: "tb" }, as(who));
        assert.ok(list.length > 0, who);
      }
      await rejectsWith(artefacts.listArtefacts({ taskId: "tb" }, as("bob")), Code.PermissionDenied);
      await rejectsWith(artefacts.listArtefacts({ taskId: "ta" }, as("tb")), Code.PermissionDenied);
      await rejectsWith(artefacts.listArtefacts({ taskId: "tb" }, as("tbob")), Code.PermissionDenied);
      await rejectsWith(artefacts.listArtefacts({ taskId: "tb" }, as("tsneaky")), Code.PermissionDenied);
      await rejectsWith(download(artefacts.downloadArtefact({ taskId: "tb", path: "r.txt" }, as("bob"))), Code.PermissionDenied);
      await rejectsWith(artefacts.listArtefacts({ taskId: "missing" }, as("admin")), Code.NotFound);
      await rejectsWith(artefacts.listArtefacts({ taskId: "" }, as("admin")), Code.InvalidArgument, /^task_id: /);
      await rejectsWith(artefacts.listArtefacts({ taskId: "tb" }, as("")), Code.Unauthenticated);
    });
  });

  describe("task tokens", () => {
    it("stop working when their attempt ends or is no longer the current one", async () => {
      await addRunningTask("tend", "someone");
      await upload("tend", "ok", Buffer.from("ok"));
      const old = tokens.tend!;
      await store.tasks.endAttempt({
        taskId: "tend",
        attempt: 1,
        leaseId: "L-tend",
        result: "failed",
        exitCode: 1,
        error: "",
        taskStatus: "waiting",
        infraFailures: 0,
        scriptRetries: 1,
        logSize: 0,
        now: Date.now(),
      });
      await rejectsWith(upload("tend", "late", Buffer.from("x"), old), Code.Unauthenticated);
      const next = generateSecret("mtt");
      await store.tasks.assign({
        taskId: "tend",
        fromAttempt: 1,
        nodeId: "n1",
        leaseId: "L2",
        leaseExpireTime: Date.now() + 60_000,
        logBase: 0,
        tokenHash: hashSecret(next),
        now: Date.now(),
      });
      await rejectsWith(upload("tend", "late", Buffer.from("x"), old), Code.Unauthenticated);
      await upload("tend", "second", Buffer.from("x"), next);
    });
  });

  describe("StorageService", () => {
    const file = randomBytes(50_000);

    it("creates storages with valid, unique names", async () => {
      const { storage } = await storages.createStorage({ name: "distfiles" }, as("alice"));
      assert.equal(storage?.name, "distfiles");
      await rejectsWith(storages.createStorage({ name: "distfiles" }, as("bob")), Code.AlreadyExists);
      await rejectsWith(storages.createStorage({ name: "../x" }, as("alice")), Code.InvalidArgument, /^name: /);
      await rejectsWith(storages.createStorage({ name: "x" }, as("ta")), Code.Unauthenticated);
    });

    it("lets the owner and managers upload, list, download and remove files", async () => {
      await storages.uploadStorageFile(storageMessages("distfiles", "src/a.tar", file), as("alice"));
      await storages.uploadStorageFile(storageMessages("distfiles", "src/b.txt", Buffer.from("b")), as("manager"));
      const { storage } = await storages.getStorage({ id: "distfiles" }, as("alice"));
      assert.equal(storage?.fileCount, 2n);
      assert.equal(storage?.totalSize, BigInt(file.length + 1));
      assert.equal((await storages.getStorage({ id: storage!.id }, as("admin"))).storage?.name, "distfiles");
      const { files } = await storages.listStorageFiles({ id: "distfiles", prefix: "src/a" }, as("manager"));
      assert.deepEqual(
        files.map((f) => [f.path, f.size, f.sha256]),
        [["src/a.tar", BigInt(file.length), sha256(file)]],
      );
      const tail = await download(storages.downloadStorageFile({ id: "distfiles", path: "src/a.tar", offset: 7n }, as("alice")));
      assert.deepEqual(tail, file.subarray(7));
      await rejectsWith(
        storages.uploadStorageFile(storageMessages("distfiles", "/abs", file), as("alice")),
        Code.InvalidArgument,
        /^header\.path: /,
      );
      await storages.uploadStorageFile(storageMessages("distfiles", "tmp", file), as("alice"));
      await storages.removeStorageFile({ id: "distfiles", paths: ["tmp"] }, as("alice"));
      await rejectsWith(
        storages.removeStorageFile({ id: "distfiles", paths: ["a/../../b"] }, as("alice")),
        Code.InvalidArgument,
        /^paths\[0\]: /,
      );
      assert.equal((await storages.listStorageFiles({ id: "distfiles" }, as("alice"))).files.length, 2);
    });

    it("answers NotFound to users who may not read a storage, as for one that does not exist", async () => {
      await rejectsWith(storages.getStorage({ id: "distfiles" }, as("bob")), Code.NotFound);
      await rejectsWith(storages.listStorageFiles({ id: "distfiles" }, as("bob")), Code.NotFound);
      await rejectsWith(download(storages.downloadStorageFile({ id: "distfiles", path: "src/b.txt" }, as("bob"))), Code.NotFound);
      await rejectsWith(storages.uploadStorageFile(storageMessages("distfiles", "x", file), as("bob")), Code.NotFound);
      await rejectsWith(storages.deleteStorage({ id: "distfiles" }, as("bob")), Code.NotFound);
      await rejectsWith(storages.getStorage({ id: "nope" }, as("admin")), Code.NotFound);
      assert.deepEqual((await storages.listStorages({}, as("bob"))).storages, []);
      assert.deepEqual(
        (await storages.listStorages({}, as("alice"))).storages.map((s) => s.name),
        ["distfiles"],
      );
    });

    it("lets a task read the storages it declares, never write them; others are NotFound", async () => {
      assert.equal((await storages.getStorage({ id: "distfiles" }, as("ta"))).storage?.name, "distfiles");
      assert.equal((await storages.listStorageFiles({ id: "distfiles" }, as("ta"))).files.length, 2);
      assert.equal(
        (await download(storages.downloadStorageFile({ id: "distfiles", path: "src/b.txt" }, as("ta")))).toString(),
        "b",
      );
      assert.deepEqual(
        (await storages.listStorages({}, as("ta"))).storages.map((s) => s.name),
        ["distfiles"],
      );
      await rejectsWith(storages.uploadStorageFile(storageMessages("distfiles", "x", file), as("ta")), Code.PermissionDenied);
      await rejectsWith(storages.removeStorageFile({ id: "distfiles", paths: ["src/b.txt"] }, as("ta")), Code.PermissionDenied);
      await rejectsWith(storages.deleteStorage({ id: "distfiles" }, as("ta")), Code.PermissionDenied);
      await rejectsWith(storages.getStorage({ id: "distfiles" }, as("tb")), Code.NotFound);
      await rejectsWith(storages.getStorage({ id: "distfiles" }, as("tsneaky")), Code.NotFound);
      assert.deepEqual((await storages.listStorages({}, as("tsneaky"))).storages, []);
    });

    it("commits nothing of a corrupted storage upload; a retry succeeds", async () => {
      async function* corrupted() {
        for await (const m of storageMessages("distfiles", "bad.bin", file)) {
          if (m.message.case === "chunk") {
            const flipped = Buffer.from(m.message.value);
            flipped[0] = flipped[0]! ^ 0xff;
            m.message.value = flipped;
          }
          yield m;
        }
      }
      await rejectsWith(storages.uploadStorageFile(corrupted(), as("alice")), Code.DataLoss, /^header\.sha256: /);
      assert.equal((await storages.listStorageFiles({ id: "distfiles", prefix: "bad" }, as("alice"))).files.length, 0);
      await storages.uploadStorageFile(storageMessages("distfiles", "bad.bin", file), as("alice"));
      assert.equal((await storages.listStorageFiles({ id: "distfiles", prefix: "bad" }, as("alice"))).files.length, 1);
      await storages.removeStorageFile({ id: "distfiles", paths: ["bad.bin"] }, as("alice"));
    });

    it("deletes a storage for its owner", async () => {
      await storages.createStorage({ name: "scratch" }, as("bob"));
      await storages.deleteStorage({ id: "scratch" }, as("bob"));
      await rejectsWith(storages.getStorage({ id: "scratch" }, as("bob")), Code.NotFound);
    });
  });

  describe("HTTP GET with Range", () => {
    const get = (path: string, who: string | undefined, headers: Record<string, string> = {}, method = "GET") =>
      fetch(`${url}${path}`, {
        method,
        headers: { ...(who !== undefined ? { authorization: `Bearer ${tokens[who] ?? who}` } : {}), ...headers },
      });
    let content: Buffer;

    before(async () => {
      content = Buffer.from("0123456789abcdefghij");
      await upload("tb", "dir/f.txt", content);
    });

    it("serves a whole artefact with length, ETag and Accept-Ranges", async () => {
      const res = await get("/artefacts/tb/dir/f.txt", "alice");
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-length"), "20");
      assert.equal(res.headers.get("accept-ranges"), "bytes");
      assert.equal(res.headers.get("etag"), `"${sha256(content)}"`);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), content);
      const cached = await get("/artefacts/tb/dir/f.txt", "alice", { "if-none-match": `"${sha256(content)}"` });
      assert.equal(cached.status, 304);
    });

    it("serves ranges with 206 and exact bytes, 416 past the end", async () => {
      let res = await get("/artefacts/tb/dir/f.txt", "alice", { range: "bytes=2-5" });
      assert.equal(res.status, 206);
      assert.equal(res.headers.get("content-range"), "bytes 2-5/20");
      assert.equal(res.headers.get("content-length"), "4");
      assert.equal(Buffer.from(await res.arrayBuffer()).toString(), "2345");
      res = await get("/artefacts/tb/dir/f.txt", "alice", { range: "bytes=17-" });
      assert.equal(Buffer.from(await res.arrayBuffer()).toString(), "hij");
      res = await get("/artefacts/tb/dir/f.txt", "alice", { range: "bytes=-4" });
      assert.equal(res.headers.get("content-range"), "bytes 16-19/20");
      assert.equal(Buffer.from(await res.arrayBuffer()).toString(), "ghij");
      res = await get("/artefacts/tb/dir/f.txt", "alice", { range: "bytes=15-100" });
      assert.equal(res.status, 206);
      assert.equal(Buffer.from(await res.arrayBuffer()).toString(), "fghij");
      res = await get("/artefacts/tb/dir/f.txt", "alice", { range: "bytes=20-" });
      assert.equal(res.status, 416);
      assert.equal(res.headers.get("content-range"), "bytes */20");
      await res.arrayBuffer();
    });

    it("answers HEAD with the headers only", async () => {
      const res = await get("/artefacts/tb/dir/f.txt", "alice", { range: "bytes=0-0" }, "HEAD");
      assert.equal(res.status, 206);
      assert.equal(res.headers.get("content-length"), "1");
      assert.equal((await res.arrayBuffer()).byteLength, 0);
    });

    it("answers 401 without a valid token and 404 for missing or not allowed files", async () => {
      for (const [path, who, status] of [
        ["/artefacts/tb/dir/f.txt", undefined, 401],
        ["/artefacts/tb/dir/f.txt", "mtk_wrong", 401],
        ["/artefacts/tb/dir/f.txt", "bob", 404],
        ["/artefacts/tb/dir/missing", "alice", 404],
        ["/artefacts/nope/dir/f.txt", "admin", 404],
        ["/artefacts/tb/..%2F..%2Fetc%2Fpasswd", "alice", 404],
        ["/storages/distfiles/src/b.txt", "bob", 404],
        ["/storages/distfiles/src/b.txt", "tb", 404],
      ] as const) {
        const res = await get(path, who);
        assert.equal(res.status, status, `${path} as ${who}`);
        await res.arrayBuffer();
      }
    });

    it("serves storage files by name or id to their readers, tasks included", async () => {
      const { storage } = await storages.getStorage({ id: "distfiles" }, as("alice"));
      for (const [path, who] of [
        ["/storages/distfiles/src/b.txt", "alice"],
        [`/storages/${storage!.id}/src/b.txt`, "manager"],
        ["/storages/distfiles/src/b.txt", "ta"],
      ] as const) {
        const res = await get(path, who);
        assert.equal(res.status, 200, `${path} as ${who}`);
        assert.equal(await res.text(), "b");
      }
    });
  });
});
