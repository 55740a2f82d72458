import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupAll, cli, startCluster, tempDir, waitFor, type Cluster } from "./harness.js";

type Json = Record<string, unknown>;

/** End to end: the original mottainai-cli's command forms against a real server and host agent. */
describe("the original's commands (server + agent + CLI processes)", function () {
  this.timeout(120_000);
  let cluster: Cluster;

  before(async () => {
    cluster = await startCluster("compat-agent");
  });
  after(cleanupAll);

  const run = (args: string[]) => cli(args, cluster.env);

  /** Runs the CLI and expects exit 0 with nothing on stderr; resolves to stdout. */
  const ok = async (args: string[]): Promise<string> => {
    const r = await run(args);
    assert.deepEqual([r.code, r.stderr], [0, ""], `mottainai ${args.join(" ")}`);
    return r.stdout.toString();
  };

  /** Creates a host task running script; resolves to its id. */
  const hostTask = async (name: string, script: string[], extra = ""): Promise<string> => {
    const yaml = `name: ${name}\ntype: host\n${extra}script:\n${script.map((l) => `  - ${JSON.stringify(l)}\n`).join("")}`;
    return (await ok(["task", "create", "-f", cluster.file(`${name}.yaml`, yaml)])).trim();
  };

  const taskJson = async (id: string): Promise<Json> => JSON.parse(await ok(["task", "show", id, "--json"])) as Json;

  const waitDone = (id: string): Promise<Json> =>
    waitFor(
      async () => {
        const task = await taskJson(id);
        return task.status === "TASK_STATUS_DONE" ? task : undefined;
      },
      30_000,
      () => `task ${id} never ended`,
    );

  /** Every file below dir as `path=content`, sorted. */
  const tree = (dir: string): string[] =>
    (readdirSync(dir, { recursive: true, withFileTypes: true }) as import("node:fs").Dirent[])
      .filter((e) => e.isFile())
      .map((e) => {
        const full = join(e.parentPath, e.name);
        return `${full.slice(dir.length + 1)}=${readFileSync(full, "utf8")}`;
      })
      .sort();

  /** A done host task whose artefacts are pkgs/a.tbz2, pkgs/b.txt, iso/x.iso and log.txt. */
  let artefactTask: Promise<string> | undefined;
  const withArtefacts = (): Promise<string> =>
    (artefactTask ??= (async () => {
      const id = await hostTask("artefacts", [
        "mkdir -p artefacts/pkgs artefacts/iso",
        "printf A > artefacts/pkgs/a.tbz2",
        "printf B > artefacts/pkgs/b.txt",
        "printf X > artefacts/iso/x.iso",
        "printf L > artefacts/log.txt",
      ]);
      assert.equal((await waitDone(id)).result, "TASK_RESULT_SUCCESS");
      return id;
    })());

  /** A script line that blocks until open() is called. */
  let gates = 0;
  const gate = () => {
    const path = join(cluster.dir, `gate-${++gates}`);
    return { wait: `while [ ! -e '${path}' ]; do sleep 0.05; done`, open: () => writeFileSync(path, "") };
  };

  describe("task monitor", () => {
    it("waits for a running task, writes its log unchanged and exits 0 when it ended done/success", async () => {
      const g = gate();
      const id = await hostTask("mon-one", ["echo before", g.wait, "printf 'after\\nno newline'"]);
      const monitor = run(["task", "monitor", id]);
      await waitFor(
        async () => (await taskJson(id)).status === "TASK_STATUS_RUNNING",
        30_000,
        () => "never ran",
      );
      g.open();
      const r = await monitor;
      assert.deepEqual([r.code, r.stdout.toString(), r.stderr], [0, "before\nafter\nno newline", `task ${id}: done/success\n`]);
    });

    it("prefixes each task's lines with its id, reports every outcome and exits 1 if any did not succeed", async () => {
      const a = await hostTask("mon-a", ["echo a1", "printf 'a2\\na3'"]);
      const b = await hostTask("mon-b", ["echo b1", "exit 3"]);
      const missing = "ffffffffffffffff";
      const r = await run(["task", "monitor", a, b, missing]);
      assert.equal(r.code, 1);
      const lines = r.stdout.toString().split("\n");
      assert.equal(lines.pop(), "");
      assert.deepEqual(
        lines.filter((l) => l.startsWith(`${a} | `)),
        [`${a} | a1`, `${a} | a2`, `${a} | a3`],
      );
      assert.deepEqual(
        lines.filter((l) => !l.startsWith(`${a} | `)),
        [`${b} | b1`],
      );
      assert.deepEqual(
        r.stderr.split("\n").sort(),
        [
          "",
          `task ${a}: done/success`,
          `task ${b}: done/failed (exit code 3)`,
          `task ${missing}: not_found: task ${missing} not found`,
        ].sort(),
      );
    });

    it("exits 1 for a stopped task and 2 without an id", async () => {
      const g = gate();
      const id = await hostTask("mon-stop", [g.wait]);
      await waitFor(
        async () => (await taskJson(id)).status === "TASK_STATUS_RUNNING",
        30_000,
        () => "never ran",
      );
      await ok(["task", "stop", id]);
      const r = await run(["task", "monitor", id]);
      assert.deepEqual([r.code, r.stdout.toString()], [1, ""]);
      assert.match(r.stderr, new RegExp(`^task ${id}: stopped/error( \\(exit code -?\\d+\\))?: .+\\n$`));
      const usage = await run(["task", "monitor"]);
      assert.equal(usage.code, 2);
      assert.match(usage.stderr, /^mottainai: Not enough positional arguments\.\n/);
    });
  });

  describe("task attach and task start (the original's names)", () => {
    it("task attach follows the log to the end; task start runs the task again like task restart", async () => {
      const g = gate();
      const id = await hostTask("attached", ["echo one", g.wait, "echo two"]);
      const attach = run(["task", "attach", id]);
      await waitFor(
        async () => (await taskJson(id)).status === "TASK_STATUS_RUNNING",
        30_000,
        () => "never ran",
      );
      g.open();
      assert.deepEqual(await attach.then((r) => [r.code, r.stdout.toString(), r.stderr]), [0, "one\ntwo\n", ""]);
      assert.equal(await ok(["task", "start", id]), `${id}\n`);
      await waitFor(
        async () => {
          const t = await taskJson(id);
          return t.attempt === 2 && t.status === "TASK_STATUS_DONE";
        },
        30_000,
        () => "attempt 2 never ended",
      );
      assert.equal(await ok(["task", "attach", id]), "one\ntwo\n--- attempt 2 on compat-agent ---\none\ntwo\n");
      const help = await ok(["task", "start", "--help"]);
      assert.match(
        help,
        /^Run a finished task again as a new attempt; prints its id \(the original's name for `task restart`\)\n/,
      );
      assert.match(await ok(["task", "attach", "--help"]), /\(the original's name for `task log ID --follow`\)/);
      const follow = await run(["task", "attach", id, "--follow"]);
      assert.deepEqual([follow.code, follow.stderr.split("\n")[0]], [2, 'mottainai: Unsupported option name ("--follow").']);
    });
  });

  describe("task download and namespace download with DIR and -f filters", () => {
    it("task download ID DIR -f REGEX... downloads only the artefacts a filter matches", async () => {
      const id = await withArtefacts();
      const all = tempDir("dl-all");
      assert.equal(await ok(["task", "download", id, all]), "");
      assert.deepEqual(tree(all), ["iso/x.iso=X", "log.txt=L", "pkgs/a.tbz2=A", "pkgs/b.txt=B"]);
      const some = tempDir("dl-some");
      assert.equal(await ok(["task", "download", id, some, "-f", "\\.tbz2$", "--filter", "^/iso/"]), "");
      assert.deepEqual(tree(some), ["iso/x.iso=X", "pkgs/a.tbz2=A"]);
      const none = tempDir("dl-none");
      assert.equal(await ok(["task", "download", id, "--to", none, "-f", "^nothing"]), "");
      assert.deepEqual(tree(none), []);
    });

    it("namespace download NS DIR -f REGEX filters the namespace's files the same way", async () => {
      const id = await withArtefacts();
      await ok(["namespace", "create", "dl-ns"]);
      assert.equal(await ok(["namespace", "publish", "dl-ns", id]), "revision 1: 4 files, 4 B\n");
      const dir = tempDir("dl-ns");
      assert.equal(await ok(["namespace", "download", "dl-ns", dir, "-f", "^pkgs/"]), "");
      assert.deepEqual(tree(dir), ["pkgs/a.tbz2=A", "pkgs/b.txt=B"]);
    });

    it("refuses two different directories and an invalid filter with exit 2", async () => {
      const id = await withArtefacts();
      let r = await run(["task", "download", id, "a", "--to", "b"]);
      assert.deepEqual(
        [r.code, r.stdout.toString(), r.stderr],
        [2, "", 'mottainai: give the directory once: DIR "a" or --to "b"\n'],
      );
      r = await run(["namespace", "download", "dl-ns", "-f", "("]);
      assert.deepEqual(
        [r.code, r.stderr],
        [2, 'mottainai: invalid -f "(": Invalid regular expression: /(/: Unterminated group\n'],
      );
    });
  });

  describe("namespace tag/append/clone --from, namespace delete and storage delete", () => {
    const files = async (ns: string): Promise<string[]> =>
      (JSON.parse(await ok(["namespace", "files", ns, "--json"])) as { path: string }[]).map((f) => f.path);

    it("namespace tag NS --from TASK replaces the files; append NS --from TASK adds; tag NAME TAG REF still moves a tag", async () => {
      const first = await withArtefacts();
      const second = await hostTask("more", [
        "mkdir -p artefacts/pkgs",
        "printf A2 > artefacts/pkgs/a.tbz2",
        "printf N > artefacts/new.txt",
      ]);
      assert.equal((await waitDone(second)).result, "TASK_RESULT_SUCCESS");
      await ok(["namespace", "create", "orig"]);
      await ok(["namespace", "upload", "orig", cluster.file("stale.txt", "old")]);
      assert.equal(await ok(["namespace", "tag", "orig", "--from", first]), "revision 2: 4 files, 4 B\n");
      assert.deepEqual(await files("orig"), ["iso/x.iso", "log.txt", "pkgs/a.tbz2", "pkgs/b.txt"]);
      assert.equal(await ok(["namespace", "append", "orig", "-f", second]), "revision 3: 5 files, 6 B\n");
      assert.deepEqual(await files("orig"), ["iso/x.iso", "log.txt", "new.txt", "pkgs/a.tbz2", "pkgs/b.txt"]);
      assert.equal(await ok(["namespace", "tag", "orig", "stable", "2"]), "stable -> revision 2\n");
      assert.equal(await ok(["namespace", "tag", "orig", "-f", second]), "revision 4: 2 files, 3 B\n");
      const revisions = JSON.parse(await ok(["namespace", "revisions", "orig", "--json"])) as Json[];
      assert.deepEqual(
        revisions.map((r) => [r.number, r.taskId ?? ""]),
        [
          ["4", second],
          ["3", second],
          ["2", first],
          ["1", ""],
        ],
      );
      let r = await run(["namespace", "tag", "orig", "stable", "--from", first]);
      assert.deepEqual(
        [r.code, r.stderr],
        [2, "mottainai: --from publishes a task's artefacts: give only the namespace (namespace tag NS --from TASK)\n"],
      );
      r = await run(["namespace", "tag", "orig"]);
      assert.deepEqual([r.code, r.stderr], [2, "mottainai: TAG: a tag name is required (or --from TASK)\n"]);
      r = await run(["namespace", "tag", "orig", "stable"]);
      assert.deepEqual([r.code, r.stderr], [2, "mottainai: REF: a tag name or revision number is required (or --delete)\n"]);
      r = await run(["namespace", "append", "orig"]);
      assert.deepEqual([r.code, r.stderr], [2, "mottainai: --from TASK is required (namespace append NS --from TASK)\n"]);
      r = await run(["namespace", "tag", "nope", "--from", first]);
      assert.deepEqual([r.code, r.stderr], [1, "mottainai: not_found: namespace nope not found\n"]);
    });

    it("namespace clone NS --from ORIG overwrites NS with ORIG (or creates it); clone FROM TO still creates TO", async () => {
      const id = await withArtefacts();
      await ok(["namespace", "create", "src"]);
      assert.equal(await ok(["namespace", "publish", "src", id]), "revision 1: 4 files, 4 B\n");
      await ok(["namespace", "create", "dst"]);
      await ok(["namespace", "upload", "dst", cluster.file("mine.txt", "mine")]);
      assert.equal(await ok(["namespace", "clone", "dst", "--from", "src"]), "revision 2: 4 files, 4 B\n");
      assert.deepEqual(await files("dst"), ["iso/x.iso", "log.txt", "pkgs/a.tbz2", "pkgs/b.txt"]);
      const head = JSON.parse(await ok(["namespace", "show", "dst", "--json"])) as Json;
      assert.equal(head.headRevision, "2");
      assert.equal(await ok(["namespace", "clone", "created", "-f", "src"]), "revision 1: 4 files, 4 B\n");
      assert.equal(await ok(["namespace", "clone", "src", "copy"]), "copy\n");
      assert.deepEqual(await files("copy"), ["iso/x.iso", "log.txt", "pkgs/a.tbz2", "pkgs/b.txt"]);
      let r = await run(["namespace", "clone", "src", "copy"]);
      assert.deepEqual([r.code, r.stderr], [1, "mottainai: already_exists: namespace copy already exists\n"]);
      r = await run(["namespace", "clone", "a", "b", "--from", "src"]);
      assert.deepEqual(
        [r.code, r.stderr],
        [2, "mottainai: --from names the source: give only the target (namespace clone NS --from ORIG)\n"],
      );
      r = await run(["namespace", "clone", "lonely"]);
      assert.deepEqual([r.code, r.stderr], [2, "mottainai: TO: the new namespace's name is required (or NS --from ORIG)\n"]);
    });

    it("namespace delete and storage delete are remove under the original's names", async () => {
      await ok(["namespace", "create", "doomed"]);
      await ok(["namespace", "upload", "doomed", cluster.file("d1.txt", "1"), cluster.file("d2.txt", "2")]);
      assert.equal(await ok(["namespace", "delete", "doomed", "d1.txt"]), "revision 3: 1 files, 1 B\n");
      assert.equal(await ok(["namespace", "delete", "doomed"]), "");
      let r = await run(["namespace", "show", "doomed"]);
      assert.deepEqual([r.code, r.stderr], [1, "mottainai: not_found: namespace doomed not found\n"]);
      await ok(["storage", "create", "gone"]);
      await ok(["storage", "upload", "gone", cluster.file("s.txt", "s")]);
      assert.equal(await ok(["storage", "delete", "gone", "s.txt"]), "");
      assert.equal(await ok(["storage", "delete", "gone"]), "");
      r = await run(["storage", "show", "gone"]);
      assert.deepEqual([r.code, r.stderr], [1, "mottainai: not_found: storage gone not found\n"]);
      assert.match(await ok(["namespace", "delete", "--help"]), /\(the original's name for `namespace remove`\)/);
      assert.match(await ok(["storage", "delete", "--help"]), /\(the original's name for `storage remove`\)/);
    });
  });

  describe("upload FILE PATH, remove /PATH, task delete and task list -q", () => {
    it("storage and namespace upload NAME FILE PATH put FILE below PATH; remove takes the original's absolute paths", async () => {
      const file = cluster.file("pkg.tbz2", "P");
      await ok(["storage", "create", "up"]);
      assert.equal(await ok(["storage", "upload", "up", file, "/distfiles/sub"]), "");
      assert.equal(await ok(["storage", "upload", "up", file, "/"]), "");
      const listed = (dir: string) => JSON.parse(dir) as { files?: { path: string }[] };
      const storage = listed(await ok(["storage", "show", "up", "--json"]));
      assert.deepEqual(
        (storage.files ?? []).map((f) => f.path),
        ["distfiles/sub/pkg.tbz2", "pkg.tbz2"],
      );
      assert.equal(await ok(["storage", "remove", "up", "/distfiles/sub/pkg.tbz2"]), "");
      assert.deepEqual(
        (listed(await ok(["storage", "show", "up", "--json"])).files ?? []).map((f) => f.path),
        ["pkg.tbz2"],
      );
      await ok(["namespace", "create", "upns"]);
      assert.equal(await ok(["namespace", "upload", "upns", file, "/amd64"]), "revision 1: 1 files, 1 B\n");
      assert.deepEqual(
        (JSON.parse(await ok(["namespace", "files", "upns", "--json"])) as { path: string }[]).map((f) => f.path),
        ["amd64/pkg.tbz2"],
      );
      assert.equal(await ok(["namespace", "remove", "upns", "/amd64/pkg.tbz2"]), "revision 2: 0 files, 0 B\n");
      const r = await run(["storage", "upload", "up", file, cluster.file("other.txt", "O"), "--to", "x"]);
      assert.deepEqual([r.code, r.stderr], [0, ""]);
    });

    it("task delete removes a task like task remove; task list -q prints the ids only", async () => {
      const id = await hostTask("deleted", ["true"]);
      await waitDone(id);
      const ids = (await ok(["task", "list", "-q", "--limit", "3"])).split("\n");
      assert.equal(ids.pop(), "");
      assert.equal(ids[0], id);
      assert.ok(
        ids.every((i) => /^[0-9a-f]{16}$/.test(i)),
        ids.join(","),
      );
      assert.equal(await ok(["task", "delete", id]), "");
      const r = await run(["task", "show", id]);
      assert.deepEqual([r.code, r.stderr], [1, `mottainai: not_found: task ${id} not found\n`]);
    });
  });

  describe("the original's global flags", () => {
    it("-m/--master, -k/--apikey and -p name the server, token and profile, before or after the command", async () => {
      const bare = { XDG_CONFIG_HOME: tempDir("config-bare") };
      const { url, adminToken } = cluster.server;
      const whoami = (args: string[]) => cli(args, bare).then((r) => [r.code, r.stdout.toString(), r.stderr]);
      assert.deepEqual(await whoami(["-m", url, "-k", adminToken, "whoami"]), [0, "admin (admin)\n", ""]);
      assert.deepEqual(await whoami(["whoami", "--master", url, "--apikey", adminToken]), [0, "admin (admin)\n", ""]);
      assert.deepEqual(await whoami(["profile", "create", "old", url, adminToken]), [0, "", ""]);
      assert.deepEqual(await whoami(["profile", "create", "other", "http://127.0.0.1:1", "--use"]), [0, "", ""]);
      assert.deepEqual(await whoami(["-p", "old", "whoami"]), [0, "admin (admin)\n", ""]);
    });
  });
});
