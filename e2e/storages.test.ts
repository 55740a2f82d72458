import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { NamespaceService, UploadFileRequestSchema, Visibility } from "@mottainai/proto";
import { adminClient, cleanupAll, cli, startCluster, tempDir, type Cluster, type ServerProc } from "./harness.js";

const sha256 = (data: string) => createHash("sha256").update(data).digest("hex");

interface StorageJson {
  id: string;
  name: string;
  fileCount?: string;
  totalSize?: string;
}

/** End to end: storages through the CLI, and task inputs (root_task, storage) staged by the agent. */
describe("storages and task inputs (server + agent + CLI processes)", function () {
  this.timeout(120_000);
  let server: ServerProc;
  let env: Record<string, string>;
  let file: Cluster["file"];
  let storageId = "";

  before(async () => {
    ({ server, env, file } = await startCluster("e2e-storages"));
  });
  after(cleanupAll);

  const ok = async (args: string[]) => {
    const r = await cli(args, env);
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    return r.stdout.toString();
  };

  const runTask = async (name: string, yaml: string) => {
    const id = (await ok(["task", "create", "-f", file(`${name}.yaml`, yaml)])).trim();
    const log = await ok(["task", "log", id, "--follow"]);
    const task = JSON.parse(await ok(["task", "show", id, "--json"])) as Record<string, unknown>;
    return { id, log, task };
  };

  it("creates, uploads a tree, lists, shows, downloads and removes through the CLI", async () => {
    storageId = (await ok(["storage", "create", "distfiles"])).trim();
    assert.match(storageId, /^[0-9a-f]{16}$/);
    const dup = await cli(["storage", "create", "distfiles"], env);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /^mottainai: already_exists: /);
    const bad = await cli(["storage", "create", "../x"], env);
    assert.match(bad.stderr, /^mottainai: invalid_argument: name: /);

    const src = tempDir("tree");
    mkdirSync(join(src, "src/deep"), { recursive: true });
    writeFileSync(join(src, "src/a.txt"), "storage a\n");
    writeFileSync(join(src, "src/deep/b.bin"), "b".repeat(100_000));
    writeFileSync(join(src, "top.txt"), "top\n");
    await ok(["storage", "upload", "distfiles", src]);
    await ok(["storage", "upload", "distfiles", join(src, "top.txt"), "--to", "extra"]);

    const list = JSON.parse(await ok(["storage", "list", "--json"])) as StorageJson[];
    assert.deepEqual(
      list.map((s) => [s.name, s.fileCount, s.totalSize]),
      [["distfiles", "4", String(10 + 100_000 + 4 + 4)]],
    );
    const shown = JSON.parse(await ok(["storage", "show", "distfiles", "--json"])) as {
      storage: StorageJson;
      files: { path: string; size: string; sha256: string }[];
    };
    assert.equal(shown.storage.id, storageId);
    assert.deepEqual(
      shown.files.map((f) => [f.path, f.size, f.sha256]),
      [
        ["extra/top.txt", "4", sha256("top\n")],
        ["src/a.txt", "10", sha256("storage a\n")],
        ["src/deep/b.bin", "100000", sha256("b".repeat(100_000))],
        ["top.txt", "4", sha256("top\n")],
      ],
    );
    const human = await ok(["storage", "show", storageId]);
    assert.match(human, /^name: distfiles$/m);
    assert.match(human, /^src\/a\.txt +10 +/m);

    const out = tempDir("storage-out");
    await ok(["storage", "download", "distfiles", "--to", out]);
    assert.equal(readFileSync(join(out, "src/deep/b.bin"), "utf8"), "b".repeat(100_000));
    assert.equal(readFileSync(join(out, "extra/top.txt"), "utf8"), "top\n");
    const one = tempDir("storage-one");
    await ok(["storage", "download", "distfiles", "--path", "src/a.txt", "--to", one]);
    assert.equal(readFileSync(join(one, "src/a.txt"), "utf8"), "storage a\n");

    await ok(["storage", "remove", "distfiles", "extra/top.txt", "top.txt"]);
    const after = JSON.parse(await ok(["storage", "show", "distfiles", "--json"])) as { files: { path: string }[] };
    assert.deepEqual(
      after.files.map((f) => f.path),
      ["src/a.txt", "src/deep/b.bin"],
    );

    await ok(["storage", "create", "scratch"]);
    await ok(["storage", "remove", "scratch"]);
    const gone = await cli(["storage", "show", "scratch"], env);
    assert.match(gone.stderr, /^mottainai: not_found: /);
  });

  it("stages root_task artefacts and storage files before the script; the storage is read-only", async () => {
    const producer = await runTask(
      "producer",
      [
        "name: producer",
        "type: host",
        "script:",
        '  - mkdir -p "$MOTTAINAI_ARTEFACT_PATH/d"',
        '  - echo from-root > "$MOTTAINAI_ARTEFACT_PATH/d/hello.txt"',
        "",
      ].join("\n"),
    );
    assert.equal(producer.task.result, "TASK_RESULT_SUCCESS", producer.log);
    const consumer = await runTask(
      "consumer",
      [
        "name: consumer",
        "type: host",
        `root_task: ${producer.id}`,
        "storage: distfiles",
        "script:",
        '  - cat "$MOTTAINAI_ARTEFACT_PATH/d/hello.txt"',
        '  - cat "$MOTTAINAI_STORAGE_PATH/src/a.txt"',
        '  - wc -c < "$MOTTAINAI_STORAGE_PATH/src/deep/b.bin"',
        '  - if (echo more >> "$MOTTAINAI_STORAGE_PATH/src/a.txt") 2>/dev/null; then echo WRITABLE; else echo READ-ONLY; fi',
        '  - if (touch "$MOTTAINAI_STORAGE_PATH/new") 2>/dev/null; then echo CREATED; else echo NO-NEW-FILES; fi',
        '  - cat "$MOTTAINAI_STORAGE_PATH/src/a.txt"',
        "",
      ].join("\n"),
    );
    assert.equal(consumer.task.result, "TASK_RESULT_SUCCESS", consumer.log);
    const lines = consumer.log.split("\n").filter((l) => !/^(Downloading|Uploading|Uploaded) /.test(l));
    assert.deepEqual(lines, ["from-root", "storage a", "100000", "READ-ONLY", "NO-NEW-FILES", "storage a", ""]);
    assert.match(consumer.log, /^Downloading root_task [0-9a-f]+: 1 file, 0\.0 MiB$/m);
    assert.match(consumer.log, /^Downloading storage distfiles: 2 files, 0\.1 MiB$/m);
  });

  it("puts each root task in its own directory when namespace_merged is false", async () => {
    const producer = await runTask(
      "p2",
      ["name: p2", "type: host", "script:", '  - echo second > "$MOTTAINAI_ARTEFACT_PATH/s.txt"', ""].join("\n"),
    );
    const consumer = await runTask(
      "c2",
      [
        "name: c2",
        "type: host",
        `root_task: ${producer.id}`,
        "namespace_merged: false",
        "namespace_filters:",
        "  - 's\\.txt$'",
        "script:",
        `  - cat "$MOTTAINAI_ARTEFACT_PATH/${producer.id}/s.txt"`,
        "",
      ].join("\n"),
    );
    assert.equal(consumer.task.result, "TASK_RESULT_SUCCESS", consumer.log);
    assert.match(consumer.log, /^second$/m);
  });

  it("stages namespace files (namespace_filters, merged or per namespace) into the artefact path", async () => {
    const namespaces = adminClient(server, NamespaceService);
    for (const name of ["repo-a", "repo-b"]) {
      await namespaces.createNamespace({ name, visibility: Visibility.PRIVATE });
      for (const [path, text] of [
        ["pkgs/x.tbz2", `${name} x\n`],
        ["pkgs/x.txt", `${name} txt\n`],
      ] as const) {
        await namespaces.uploadFile(
          (async function* () {
            yield create(UploadFileRequestSchema, {
              message: { case: "header", value: { name, path, size: BigInt(text.length), sha256: sha256(text) } },
            });
            yield create(UploadFileRequestSchema, { message: { case: "chunk", value: Buffer.from(text) } });
          })(),
        );
      }
    }
    const merged = await runTask(
      "ns-merged",
      [
        "name: ns-merged",
        "type: host",
        "namespace: repo-a",
        "namespace_filters:",
        "  - '\\.tbz2$'",
        "script:",
        '  - cat "$MOTTAINAI_ARTEFACT_PATH/pkgs/x.tbz2"',
        '  - test ! -e "$MOTTAINAI_ARTEFACT_PATH/pkgs/x.txt" && echo FILTERED',
        "",
      ].join("\n"),
    );
    assert.equal(merged.task.result, "TASK_RESULT_SUCCESS", merged.log);
    assert.match(merged.log, /^repo-a x\nFILTERED$/m);
    const split = await runTask(
      "ns-split",
      [
        "name: ns-split",
        "type: host",
        "namespace: repo-a,repo-b",
        "namespace_merged: false",
        "script:",
        '  - cat "$MOTTAINAI_ARTEFACT_PATH/repo-a/pkgs/x.txt" "$MOTTAINAI_ARTEFACT_PATH/repo-b/pkgs/x.tbz2"',
        "",
      ].join("\n"),
    );
    assert.equal(split.task.result, "TASK_RESULT_SUCCESS", split.log);
    assert.match(split.log, /^repo-a txt\nrepo-b x$/m);
  });

  it("fails the setup naming the input when a declared storage cannot be read", async () => {
    const { task } = await runTask(
      "missing",
      ["name: missing", "type: host", "storage: nope", "script:", "  - true", ""].join("\n"),
    );
    assert.equal(task.result, "TASK_RESULT_ERROR");
    assert.match(String(task.error), /^setup failed: storage nope: NotFound: /);
  });
});
