import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupAll, cli, registrationToken, startAgent, startServer, tempDir, type ServerProc } from "./harness.js";

type Json = Record<string, unknown>;

const HOST_TYPES =
  "docker, docker_execute, libvirt, libvirt_execute, libvirt_vagrant, virtualbox, virtualbox_execute, lxd, host, fake";

/** `task create` with the original's flags, --monitor and --to: a real server, two host agents, the CLI. */
describe("task create with the original's flags (server + two agents + CLI processes)", function () {
  this.timeout(180_000);
  let server: ServerProc;
  let env: Record<string, string>;
  let dir: string;
  const nodeIds: Record<string, string> = {};

  before(async () => {
    server = await startServer();
    const token = await registrationToken(server);
    await startAgent(server, { registrationToken: token, name: "build-1" });
    await startAgent(server, { registrationToken: token, name: "build.2" });
    dir = tempDir("files");
    env = { MOTTAINAI_SERVER: server.url, MOTTAINAI_TOKEN: server.adminToken, XDG_CONFIG_HOME: tempDir("config") };
    for (const name of ["build-1", "build.2"]) nodeIds[name] = String((await showNode(name)).id);
  });
  after(cleanupAll);

  const run = (args: string[]) => cli(args, env);
  const ok = async (args: string[]): Promise<string> => {
    const r = await run(args);
    assert.equal(r.stderr, "", `mottainai ${args.join(" ")}`);
    assert.equal(r.code, 0, `mottainai ${args.join(" ")}`);
    return r.stdout.toString();
  };
  const showNode = async (name: string): Promise<Json> => JSON.parse(await ok(["node", "show", name, "--json"])) as Json;
  const showJson = async (id: string): Promise<Json> => JSON.parse(await ok(["task", "show", id, "--json"])) as Json;
  const file = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it("prints each warning on stderr, the id on stdout, and lets the flags override the file", async () => {
    const path = file(
      "task.yaml",
      "name: file-name\ntype: host\nplan: weekly\nscript:\n  - echo from file\nqueue: nowhere\nflavour: x\n",
    );
    const r = await run([
      "task",
      "create",
      "-f",
      path,
      "--name",
      "flag-name",
      "--queue",
      "general",
      "--script",
      "echo $MOTTAINAI_TASK_NAME",
      "--monitor",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const [id, ...log] = r.stdout.toString().split("\n");
    assert.match(id ?? "", /^[0-9a-f]{16}$/);
    assert.deepEqual(log, ["flag-name", ""]);
    assert.equal(
      r.stderr,
      [
        `warning: ${path}: line 3: field "plan": ignored: the original's tools read it beside "planned"; the task runs without it`,
        `warning: ${path}: line 7: field "flavour": unknown key, ignored as in the original`,
        `task ${id}: done/success`,
        "",
      ].join("\n"),
    );
    const task = await showJson(id ?? "");
    assert.equal((task.spec as Json).name, "flag-name");
    assert.equal((task.spec as Json).queue, "general");
    assert.equal(task.result, "TASK_RESULT_SUCCESS");
  });

  it("creates a task from the flags alone and refuses an incomplete one naming the flag", async () => {
    const r = await run([
      "task",
      "create",
      "--name",
      "hi",
      "--type",
      "host",
      "--script",
      "echo one",
      "--script",
      "echo two",
      "--artefact-path",
      "/",
      "--monitor",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const [id, ...log] = r.stdout.toString().split("\n");
    assert.equal(r.stderr, `task ${id}: done/success\n`);
    assert.deepEqual(log, ["one", "two", ""]);
    assert.equal(((await showJson(id ?? "")).spec as Json).artefactPath, ".");

    const missing = await run(["task", "create", "--name", "hi", "--script", "true"]);
    assert.deepEqual([missing.code, missing.stdout.length], [2, 0]);
    assert.equal(missing.stderr, `mottainai: --type: required, one of: ${HOST_TYPES} (or give a task file with -f)\n`);
    const noImage = await run(["task", "create", "--type", "docker", "--script", "true"]);
    assert.equal(noImage.stderr, 'mottainai: --image: required for type "docker" (or give a task file with -f)\n');
  });

  it("reads the original's --json FILE and --yaml FILE; --json alone still prints JSON", async () => {
    const json = file("original.json", JSON.stringify({ name: "from-json", type: "host", script: ["echo json"] }));
    const yaml = file("original.yaml", "name: from-yaml\ntype: host\nscript:\n  - echo yaml\n");
    const fromJson = (await ok(["task", "create", "--json", json])).trim();
    const fromYaml = (await ok(["task", "create", "-y", yaml])).trim();
    assert.equal(((await showJson(fromJson)).spec as Json).name, "from-json");
    assert.equal(((await showJson(fromYaml)).spec as Json).name, "from-yaml");
    const printed = JSON.parse(await ok(["task", "create", "--yaml", yaml, "--json"])) as Json;
    assert.equal((printed.spec as Json).name, "from-yaml");
  });

  it("--monitor exits 1 with the task's outcome when it did not succeed", async () => {
    const path = file("fails.yaml", "name: fails\ntype: host\nscript:\n  - echo before\n  - exit 3\n");
    const r = await run(["task", "create", "-f", path, "--monitor"]);
    assert.equal(r.code, 1);
    const [id, ...log] = r.stdout.toString().split("\n");
    assert.deepEqual(log, ["before", ""]);
    assert.equal(r.stderr, `task ${id}: done/failed (exit code 3)\n`);
  });

  it("--to creates one task per connected node whose name matches, each bound to that node", async () => {
    const path = file("each.yaml", 'name: each\ntype: host\nscript:\n  - echo "$MOTTAINAI_TASK_NAME"\n');
    const monitored = await run(["task", "create", "-f", path, "--to", "^build", "--monitor"]);
    assert.equal(monitored.code, 0);
    const lines = monitored.stdout.toString().split("\n");
    const ids = lines.slice(0, 2);
    assert.deepEqual(lines.slice(2).sort(), ["", ...ids.map((id) => `${id} | each`)].sort());
    assert.deepEqual(monitored.stderr.split("\n").sort(), ["", ...ids.map((id) => `task ${id}: done/success`)].sort());
    const tasks = await Promise.all(ids.map(showJson));
    assert.deepEqual(
      tasks.map((t) => [t.targetNode, t.nodeId, t.result]),
      [
        ["^build-1$", nodeIds["build-1"], "TASK_RESULT_SUCCESS"],
        ["^build\\.2$", nodeIds["build.2"], "TASK_RESULT_SUCCESS"],
      ],
    );

    const one = (await ok(["task", "create", "-f", path, "--to", "\\.2"])).trim();
    assert.match(one, /^[0-9a-f]{16}$/);
    assert.equal((await showJson(one)).targetNode, "^build\\.2$");

    const none = await run(["task", "create", "-f", path, "--to", "^nope"]);
    assert.deepEqual(
      [none.code, none.stdout.length, none.stderr],
      [1, 0, `mottainai: --to "^nope": no connected node's name matches\n`],
    );
  });

  it("--to-any keeps one task for any matching node; --to and --to-any exclude each other", async () => {
    const path = file("any.yaml", "name: any\ntype: host\nscript:\n  - true\n");
    const out = await ok(["task", "create", "-f", path, "--to-any", "^build", "--json"]);
    const task = JSON.parse(out) as Json;
    assert.equal(task.targetNode, "^build");
    const both = await run(["task", "create", "-f", path, "--to", "a", "--to-any", "b"]);
    assert.deepEqual([both.code, both.stderr], [2, "mottainai: --to and --to-any cannot be used together\n"]);
  });

  it("says in --help which flags are the original's", async () => {
    const help = (await ok(["task", "create", "--help"])).replace(/\s+/g, " ");
    assert.match(
      help,
      /--to #0 One task per connected node whose name matches this regular expression \(the original's meaning\)/,
    );
    assert.match(help, /--monitor Wait for the task\(s\), stream the log, exit 0 only on done\/success \(the original's flag\)/);
    assert.match(help, /--image #0 image \(the original's flag\)/);
  });
});
