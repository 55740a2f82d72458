import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { TaskResult, TaskService, TaskStatus } from "@mottainai/proto";
import { adminClient, cleanupAll, cli, startCluster, waitFor, type Cluster } from "./harness.js";

// A real server and host agent: tasks with tag_namespace publish their artefacts on success, the
// CLI lists exactly them, an append task adds to them, and a rollback makes plain HTTP serve the
// old bytes again.
describe("namespaces end to end", function () {
  this.timeout(120_000);
  let cluster: Cluster;

  before(async () => {
    cluster = await startCluster("ns-agent");
  });
  after(cleanupAll);

  const ok = async (args: string[]): Promise<string> => {
    const r = await cli(args, cluster.env);
    assert.equal(r.code, 0, `mottainai ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.toString();
  };

  const files = async (ref = "") =>
    (JSON.parse(await ok(["namespace", "files", "repo", "--json", ...(ref ? ["--ref", ref] : [])])) as { path: string }[]).map(
      (f) => f.path,
    );

  const http = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${cluster.server.url}${path}`, { headers }).then(async (r) => ({ status: r.status, body: await r.text() }));

  it("tag_namespace tasks publish (replace) and append; rollback makes HTTP serve the old bytes", async () => {
    const yaml = (name: string, mode: string, lines: string[]) =>
      `name: ${name}\ntype: host\ntag_namespace: repo\n${mode ? `publish_mode: ${mode}\n` : ""}script:\n${lines
        .map((line) => `  - ${JSON.stringify(line)}\n`)
        .join("")}`;
    const tasks = adminClient(cluster.server, TaskService);
    const run = async (name: string, mode: string, lines: string[]) => {
      const id = (await ok(["task", "create", "-f", cluster.file(`${name}.yaml`, yaml(name, mode, lines))])).trim();
      return waitFor(
        async () => {
          const { task } = await tasks.getTask({ id });
          return task?.status === TaskStatus.DONE ? task : undefined;
        },
        60_000,
        () => `task ${name} did not finish`,
      );
    };

    await ok(["namespace", "create", "repo", "--visibility", "public"]);
    assert.deepEqual(await files(), []);
    const replaced = await run("replace", "", [
      "mkdir -p artefacts/pkg",
      "printf 'alpha v1' > artefacts/pkg/a.txt",
      "printf 'beta v1' > artefacts/b.txt",
    ]);
    assert.equal(replaced.result, TaskResult.SUCCESS, replaced.error);
    assert.equal(replaced.error, "");
    assert.deepEqual(await files(), ["b.txt", "pkg/a.txt"]);
    const table = await ok(["namespace", "files", "repo"]);
    assert.match(table, /^PATH\s+SIZE\s+SHA256\n/);
    assert.match(table, /\nb\.txt\s+7\s+[0-9a-f]{64}\n/);

    const appended = await run("append", "append", [
      "mkdir -p artefacts",
      "printf 'beta v2' > artefacts/b.txt",
      "printf 'gamma' > artefacts/c.txt",
    ]);
    assert.equal(appended.result, TaskResult.SUCCESS, appended.error);
    assert.deepEqual(await files(), ["b.txt", "c.txt", "pkg/a.txt"]);
    assert.deepEqual((await http("/namespaces/repo/b.txt")).body, "beta v2");

    const revisions = JSON.parse(await ok(["namespace", "revisions", "repo", "--json"])) as { number: string; taskId: string }[];
    assert.deepEqual(
      revisions.map((r) => [r.number, r.taskId]),
      [
        ["2", appended.id],
        ["1", replaced.id],
      ],
    );
    assert.equal((await ok(["namespace", "diff", "repo"])).trim(), "M b.txt\nA c.txt");

    assert.equal((await ok(["namespace", "rollback", "repo", "1"])).trim(), "latest -> revision 1");
    const old = await http("/namespaces/repo/b.txt");
    assert.deepEqual([old.status, old.body], [200, "beta v1"]);
    assert.equal((await http("/namespaces/repo/c.txt")).status, 404);
    assert.equal((await http("/namespaces/repo/@2/c.txt")).body, "gamma");
    const part = await fetch(`${cluster.server.url}/namespaces/repo/pkg/a.txt`, { headers: { range: "bytes=6-" } });
    assert.equal(part.status, 206);
    assert.equal(await part.text(), "v1");
    assert.deepEqual(await files(), ["b.txt", "pkg/a.txt"]);
  });

  it("a task whose tag_namespace does not exist keeps its success and records why nothing was published", async () => {
    const tasks = adminClient(cluster.server, TaskService);
    const text =
      "name: lost\ntype: host\ntag_namespace: no-such-namespace\nscript:\n  - mkdir -p artefacts && echo x > artefacts/x\n";
    const id = (await ok(["task", "create", "-f", cluster.file("lost.yaml", text)])).trim();
    const task = await waitFor(
      async () => {
        const { task: t } = await tasks.getTask({ id });
        return t?.status === TaskStatus.DONE ? t : undefined;
      },
      60_000,
      () => "task lost did not finish",
    );
    assert.equal(task.result, TaskResult.SUCCESS);
    assert.match(task.error, /publishing artefacts to namespace no-such-namespace failed: namespace no-such-namespace not found/);
  });

  it("uploads a directory as one tag move, downloads it back, and hides private namespaces", async () => {
    const src = cluster.file("one.txt", "one");
    cluster.file("two.txt", "two");
    await ok(["namespace", "create", "up"]);
    const out = await ok(["namespace", "upload", "up", src, cluster.file("three.txt", "three"), "--to", "d"]);
    assert.match(out, /^revision 2: 2 files/);
    const shown = JSON.parse(await ok(["namespace", "show", "up", "--json"])) as { tags: { name: string; revision: string }[] };
    assert.deepEqual(shown.tags, [
      { name: "latest", revision: "2", updateTime: (shown.tags[0] as { updateTime?: string }).updateTime },
    ]);
    const into = join(cluster.dir, "downloaded");
    await ok(["namespace", "download", "up", "--to", into]);
    assert.equal(readFileSync(join(into, "d/one.txt"), "utf8"), "one");
    assert.equal(readFileSync(join(into, "d/three.txt"), "utf8"), "three");
    assert.equal((await http("/namespaces/up/d/one.txt")).status, 404, "private: anonymous gets 404");
    const authed = await http("/namespaces/up/d/one.txt", { authorization: `Bearer ${cluster.server.adminToken}` });
    assert.deepEqual([authed.status, authed.body], [200, "one"]);
    const anonymous = await cli(["namespace", "list", "--json"], { ...cluster.env, MOTTAINAI_TOKEN: "" });
    assert.equal(anonymous.code, 0, anonymous.stderr);
    assert.deepEqual(
      (JSON.parse(anonymous.stdout.toString()) as { name: string }[]).map((n) => n.name),
      ["repo"],
    );
  });
});
