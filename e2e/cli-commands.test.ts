import assert from "node:assert/strict";
import { readFileSync, statSync, writeFileSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { hostname } from "node:os";
import { join } from "node:path";
import { Role, TaskService, TokenService, UserService } from "@mottainai/proto";
import {
  ROOT,
  adminClient,
  cleanupAll,
  cli,
  cliStream,
  registrationToken,
  spawnAgent,
  startAgent,
  startCluster,
  startServer,
  tempDir,
  waitFor,
  type Cluster,
  type ServerProc,
} from "./harness.js";

type Json = Record<string, unknown>;

/** `2025-01-02T03:04:05.678Z` as the CLI prints it: `2025-01-02T03:04:05Z`. */
const seconds = (iso: unknown): string => String(iso).replace(/\.\d+Z$/, "Z");

/** The CLI's borderless table: columns padded to their widest cell, two spaces apart, lines trimmed. */
function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows
    .map(
      (row) =>
        `${row
          .map((cell, i) => cell.padEnd(widths[i]!))
          .join("  ")
          .trimEnd()}\n`,
    )
    .join("");
}

/** A TCP port nothing listens on (taken from the kernel, then released). */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

const AGENT_VERSION = (JSON.parse(readFileSync(join(ROOT, "agent/package.json"), "utf8")) as { version: string }).version;

/** End to end: every CLI command group against a real server and real agents (host executor). */
describe("CLI commands (server + agent + CLI processes)", function () {
  this.timeout(120_000);
  let server: ServerProc;
  let env: Record<string, string>;
  let file: Cluster["file"];
  let dir: string;

  before(async () => {
    ({ server, env, file, dir } = await startCluster("cli-agent"));
  });
  after(cleanupAll);

  /** Runs the CLI with the admin environment and expects success with nothing on stderr. */
  const ok = async (args: string[], extraEnv: Record<string, string> = {}): Promise<string> => {
    const r = await cli(args, { ...env, ...extraEnv });
    assert.equal(r.stderr, "", `mottainai ${args.join(" ")}`);
    assert.equal(r.code, 0, `mottainai ${args.join(" ")}`);
    return r.stdout.toString();
  };

  const createTask = async (name: string, text: string, extra: string[] = []): Promise<string> => {
    const out = await ok(["task", "create", "-f", file(`${name}.yaml`, text), ...extra]);
    assert.match(out, /^[0-9a-f]{16}\n$/);
    return out.trim();
  };

  const hostTask = (name: string, script: string[]) =>
    createTask(name, `name: ${name}\ntype: host\nscript:\n${script.map((line) => `  - ${JSON.stringify(line)}\n`).join("")}`);

  /** A script line that blocks until open() is called: running tasks that end when the test says so. */
  let gates = 0;
  const gate = () => {
    const path = join(dir, `gate-${++gates}`);
    return { wait: `while [ ! -e '${path}' ]; do sleep 0.05; done`, open: () => writeFileSync(path, "") };
  };

  const showJson = async (id: string, extraEnv: Record<string, string> = {}): Promise<Json> =>
    JSON.parse(await ok(["task", "show", id, "--json"], extraEnv)) as Json;

  const waitTask = (
    id: string,
    check: (task: Json) => boolean,
    what: string,
    extraEnv: Record<string, string> = {},
  ): Promise<Json> =>
    waitFor(
      async () => {
        const task = await showJson(id, extraEnv);
        return check(task) ? task : undefined;
      },
      30_000,
      () => `task ${id}: ${what}`,
    ) as Promise<Json>;

  const waitStatus = (id: string, status: string, extraEnv: Record<string, string> = {}): Promise<Json> =>
    waitTask(id, (task) => task.status === status, `never reached ${status}`, extraEnv);

  const nodeJson = async (name: string): Promise<Json> => JSON.parse(await ok(["node", "show", name, "--json"])) as Json;

  /**
   * Runs a human node view (`node list` or `node show`) between two JSON reads of the node and
   * retries until both reads agree, so that the expected text is built from the same state
   * (a heartbeat may land in between).
   */
  const stableNodeView = async (name: string, args: string[]): Promise<{ node: Json; human: string }> => {
    for (let i = 0; i < 10; i++) {
      const before = await nodeJson(name);
      const human = await ok(args);
      const after = await nodeJson(name);
      if (JSON.stringify(before) === JSON.stringify(after)) return { node: after, human };
    }
    throw new Error(`node ${name} kept changing`);
  };

  /** `node list` between two identical `node list --json` reads (a heartbeat may land in between). */
  const stableList = async (): Promise<{ nodes: Json[]; human: string }> => {
    for (let i = 0; i < 10; i++) {
      const before = await ok(["node", "list", "--json"]);
      const human = await ok(["node", "list"]);
      const after = await ok(["node", "list", "--json"]);
      if (before === after) return { nodes: JSON.parse(after) as Json[], human };
    }
    throw new Error("the node list kept changing");
  };

  describe("profiles", () => {
    it("create, list, use and remove profiles; whoami goes through the current one; tokens are never listed", async () => {
      const penv = { XDG_CONFIG_HOME: tempDir("profiles") };
      const run = (args: string[], extra: Record<string, string> = {}) => cli(args, { ...penv, ...extra });
      const expectOk = async (args: string[], stdout: string, extra: Record<string, string> = {}) => {
        const r = await run(args, extra);
        assert.deepEqual(
          { code: r.code, stdout: r.stdout.toString(), stderr: r.stderr },
          { code: 0, stdout, stderr: "" },
          args.join(" "),
        );
      };
      const expectFail = async (args: string[], code: number, stderr: string, extra: Record<string, string> = {}) => {
        const r = await run(args, extra);
        assert.deepEqual(
          { code: r.code, stdout: r.stdout.toString(), stderr: r.stderr },
          { code, stdout: "", stderr },
          args.join(" "),
        );
      };
      const elsewhere = `http://127.0.0.1:${await closedPort()}`;

      await expectOk(["profile", "list"], "CURRENT  NAME  SERVER  TOKEN\n");
      await expectOk(["profile", "create", "local", "--server", server.url, "--token", server.adminToken], "");
      await expectOk(["profile", "create", "broken", "--server", server.url, "--token", "mtk_not-a-real-token"], "");
      await expectOk(["profile", "create", "elsewhere", "--server", elsewhere, "--token", server.adminToken], "");
      await expectFail(["profile", "create", "local", "--server", server.url], 1, 'mottainai: profile "local" already exists\n');
      await expectFail(["profile", "create", "nowhere"], 2, "mottainai: profile create needs --server URL\n");

      const listing = table([
        ["CURRENT", "NAME", "SERVER", "TOKEN"],
        ["", "broken", server.url, "set"],
        ["", "elsewhere", elsewhere, "set"],
        ["*", "local", server.url, "set"],
      ]);
      await expectOk(["profile", "list"], listing);
      const json = await run(["profile", "list", "--json"]);
      assert.equal(json.code, 0);
      assert.deepEqual(JSON.parse(json.stdout.toString()), [
        { name: "broken", server: server.url, current: false, hasToken: true },
        { name: "elsewhere", server: elsewhere, current: false, hasToken: true },
        { name: "local", server: server.url, current: true, hasToken: true },
      ]);
      assert.ok(!json.stdout.toString().includes(server.adminToken) && !json.stdout.toString().includes("mtk_"));
      const stored = join(penv.XDG_CONFIG_HOME, "mottainai", "profiles.yaml");
      assert.equal(statSync(stored).mode & 0o777, 0o600);

      // The first profile became current: whoami goes through it.
      await expectOk(["whoami"], "admin (admin)\n");

      await expectOk(["profile", "use", "broken"], "");
      await expectFail(["whoami"], 1, "mottainai: unauthenticated: invalid or expired token\n");
      // Flags and the environment override the profile's token; a flag beats the environment.
      await expectOk(["whoami", "--token", server.adminToken], "admin (admin)\n");
      await expectOk(["whoami"], "admin (admin)\n", { MOTTAINAI_TOKEN: server.adminToken });
      await expectFail(["whoami", "--token", "mtk_wrong"], 1, "mottainai: unauthenticated: invalid or expired token\n", {
        MOTTAINAI_TOKEN: server.adminToken,
      });
      // --profile and MOTTAINAI_PROFILE pick another profile without changing the current one.
      await expectOk(["whoami", "--profile", "local"], "admin (admin)\n");
      await expectOk(["whoami"], "admin (admin)\n", { MOTTAINAI_PROFILE: "local" });
      await expectFail(["whoami", "--profile", "nosuch"], 1, 'mottainai: profile "nosuch" not found\n');

      await expectOk(["profile", "use", "elsewhere"], "");
      const unreachable = await run(["whoami"]);
      assert.equal(unreachable.code, 1);
      assert.equal(unreachable.stdout.length, 0);
      assert.match(unreachable.stderr, /^mottainai: unavailable: .*ECONNREFUSED.*\n$/);
      // A server from a flag or the environment overrides the profile's, and the profile's token
      // is not sent to a server it was not made for.
      await expectFail(["whoami", "--server", server.url], 1, "mottainai: unauthenticated: missing bearer token\n");
      await expectFail(["whoami"], 1, "mottainai: unauthenticated: missing bearer token\n", { MOTTAINAI_SERVER: server.url });
      await expectOk(["whoami", "--server", server.url, "--token", server.adminToken], "admin (admin)\n");
      await expectOk(["whoami"], "admin (admin)\n", { MOTTAINAI_SERVER: server.url, MOTTAINAI_TOKEN: server.adminToken });

      await expectOk(["profile", "remove", "broken"], "");
      await expectOk(
        ["profile", "list"],
        table([
          ["CURRENT", "NAME", "SERVER", "TOKEN"],
          ["*", "elsewhere", elsewhere, "set"],
          ["", "local", server.url, "set"],
        ]),
      );
      // Removing the current profile leaves none current.
      await expectOk(["profile", "remove", "elsewhere"], "");
      await expectOk(
        ["profile", "list"],
        table([
          ["CURRENT", "NAME", "SERVER", "TOKEN"],
          ["", "local", server.url, "set"],
        ]),
      );
      await expectFail(["profile", "remove", "nosuch"], 1, 'mottainai: profile "nosuch" not found\n');
      await expectFail(["profile", "use", "nosuch"], 1, 'mottainai: profile "nosuch" not found\n');
      // --use makes a new profile current at once.
      await expectOk(["profile", "create", "spare", "--server", server.url, "--use"], "");
      await expectOk(
        ["profile", "list"],
        table([
          ["CURRENT", "NAME", "SERVER", "TOKEN"],
          ["", "local", server.url, "set"],
          ["*", "spare", server.url, "-"],
        ]),
      );
      await expectFail(["whoami"], 1, "mottainai: unauthenticated: missing bearer token\n");
      await expectOk(["profile", "use", "local"], "");
      await expectOk(["whoami"], "admin (admin)\n");
      assert.ok(!readFileSync(stored, "utf8").includes("mtk_not-a-real-token"), "a removed profile's token stays in the file");
    });
  });

  describe("task list", () => {
    it("lists newest first, limits with --limit, filters with --status, prints the exact table", async () => {
      // A server of its own, so that the listing holds exactly the tasks made here.
      const own = await startServer();
      await startAgent(own, { registrationToken: await registrationToken(own), name: "list-agent" });
      const oenv = { MOTTAINAI_SERVER: own.url, MOTTAINAI_TOKEN: own.adminToken, XDG_CONFIG_HOME: tempDir("config") };
      const run = async (args: string[]) => {
        const r = await cli(args, oenv);
        assert.equal(r.stderr, "", args.join(" "));
        assert.equal(r.code, 0, args.join(" "));
        return r.stdout.toString();
      };
      const create = async (name: string, text: string) =>
        (await run(["task", "create", "-f", file(`${name}.yaml`, text)])).trim();

      const done: string[] = [];
      for (const name of ["ran-1", "ran-2"]) {
        const id = await create(name, `name: ${name}\ntype: host\nscript:\n  - "true"\n`);
        await run(["task", "log", id, "--follow"]);
        done.push(id);
      }
      const waiting: string[] = [];
      for (let i = 1; i <= 7; i++) {
        waiting.push(await create(`list-${i}`, `name: list-${i}\ntype: docker\nimage: busybox\nscript:\n  - echo ${i}\n`));
      }
      await waitFor(
        async () => (JSON.parse(await run(["task", "list", "--json", "--status", "done"])) as unknown[]).length === 2,
        20_000,
        () => "the host tasks did not finish",
      );
      const newestFirst = [...done, ...waiting].reverse();
      const ids = (out: string) => (JSON.parse(out) as Json[]).map((t) => t.id);

      assert.deepEqual(ids(await run(["task", "list", "--json"])), newestFirst);
      assert.deepEqual(ids(await run(["task", "list", "--json", "--limit", "3"])), newestFirst.slice(0, 3));
      assert.deepEqual(ids(await run(["task", "list", "--json", "--limit", "8"])), newestFirst.slice(0, 8));
      assert.deepEqual(ids(await run(["task", "list", "--json", "--limit", "100"])), newestFirst);
      assert.deepEqual(ids(await run(["task", "list", "--json", "--status", "waiting"])), [...waiting].reverse());
      assert.deepEqual(
        ids(await run(["task", "list", "--json", "--status", "waiting", "--limit", "3"])),
        waiting.slice(4).reverse(),
      );
      assert.deepEqual(ids(await run(["task", "list", "--json", "--status", "done"])), [...done].reverse());
      assert.deepEqual(ids(await run(["task", "list", "--json", "--status", "done,waiting", "--limit", "9"])), newestFirst);
      assert.deepEqual(ids(await run(["task", "list", "--json", "--status", "running"])), []);

      // The same order page by page through the API: pages of 3 with continuation tokens.
      const tasks = adminClient(own, TaskService);
      const paged: string[] = [];
      const tokens: string[] = [];
      let pageToken = "";
      do {
        const page = await tasks.listTasks({ pageSize: 3, pageToken });
        paged.push(...page.tasks.map((t) => t.id));
        pageToken = page.nextPageToken;
        tokens.push(pageToken);
      } while (pageToken !== "");
      assert.deepEqual(paged, newestFirst);
      // 9 tasks in pages of 3: the third page is the last and says so.
      assert.equal(tokens.length, 3);

      // The human table, exactly.
      const all = JSON.parse(await run(["task", "list", "--json", "--status", "waiting", "--limit", "3"])) as Json[];
      const human = await run(["task", "list", "--status", "waiting", "--limit", "3"]);
      assert.equal(human.split("\n")[0], "ID                NAME    TYPE    STATUS   RESULT  ATTEMPT  NODE  CREATED");
      assert.equal(
        human,
        table([
          ["ID", "NAME", "TYPE", "STATUS", "RESULT", "ATTEMPT", "NODE", "CREATED"],
          ...all.map((t) => [
            String(t.id),
            String((t.spec as Json).name),
            "docker",
            "waiting",
            "none",
            "0",
            "-",
            seconds(t.createTime),
          ]),
        ]),
      );
      assert.deepEqual(
        all.map((t) => (t.spec as Json).name),
        ["list-7", "list-6", "list-5"],
      );

      const bad = await cli(["task", "list", "--status", "bogus"], oenv);
      assert.deepEqual(
        { code: bad.code, stdout: bad.stdout.toString(), stderr: bad.stderr },
        {
          code: 2,
          stdout: "",
          stderr: 'mottainai: invalid --status "bogus": expected one of waiting, setup, running, done, stop, stopped\n',
        },
      );
      const zero = await cli(["task", "list", "--limit", "0"], oenv);
      assert.equal(zero.code, 2);
      assert.equal(zero.stdout.length, 0);
      await own.stop();
    });

    it("follows the server's pages when --limit is larger than one page (1000 tasks)", async () => {
      const own = await startServer();
      const oenv = { MOTTAINAI_SERVER: own.url, MOTTAINAI_TOKEN: own.adminToken, XDG_CONFIG_HOME: tempDir("config") };
      const tasks = adminClient(own, TaskService);
      const created: string[] = [];
      for (let batch = 0; batch < 21; batch++) {
        const ids = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            tasks.createTask({ spec: { name: `bulk-${batch * 50 + i}`, type: "docker", image: "busybox", script: ["true"] } }),
          ),
        );
        // Creation order within a batch is the server's: read it back below.
        created.push(...ids.map((r) => r.task!.id));
      }
      const order: string[] = [];
      let pageToken = "";
      do {
        const page = await tasks.listTasks({ pageSize: 1000, pageToken });
        order.push(...page.tasks.map((t) => t.id));
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      assert.equal(order.length, 1050);
      assert.deepEqual([...order].sort(), [...created].sort());

      const r = await cli(["task", "list", "--json", "--limit", "1020"], oenv);
      assert.equal(r.stderr, "");
      assert.equal(r.code, 0);
      assert.deepEqual(
        (JSON.parse(r.stdout.toString()) as Json[]).map((t) => t.id),
        order.slice(0, 1020),
      );
      await own.stop();
    });
  });

  describe("tasks", () => {
    it("task show prints the exact fields and attempts table of a finished task", async () => {
      const id = await hostTask("shown", ["echo shown", "exit 3"]);
      const task = await waitStatus(id, "TASK_STATUS_DONE");
      const attempt = (task.attempts as Json[])[0]!;
      const nodeId = String(task.nodeId);
      assert.equal(nodeId, String((await nodeJson("cli-agent")).id));
      const expected =
        [
          `id: ${id}`,
          "name: shown",
          "type: host",
          "image: -",
          "queue: general",
          "status: done",
          "result: failed",
          "exit code: 3",
          `owner: ${String(task.ownerId)}`,
          `node: ${nodeId}`,
          "attempt: 1",
          `created: ${seconds(task.createTime)}`,
          `started: ${seconds(task.startTime)}`,
          `ended: ${seconds(task.endTime)}`,
          "",
          "#  NODE              RESULT  EXIT  ERROR  STARTED               ENDED",
          `1  ${nodeId}  failed  3     -      ${seconds(attempt.startTime)}  ${seconds(attempt.endTime)}`,
        ].join("\n") + "\n";
      assert.equal(await ok(["task", "show", id]), expected);
      assert.equal(await ok(["task", "log", id]), "shown\n");
    });

    it("task show of a waiting task says why it waits and has no attempts table", async () => {
      const id = await createTask("docked", "name: docked\ntype: docker\nimage: busybox\nscript:\n  - echo hi\n");
      const task = await showJson(id);
      assert.equal(
        await ok(["task", "show", id]),
        [
          `id: ${id}`,
          "name: docked",
          "type: docker",
          "image: busybox",
          "queue: general",
          "status: waiting",
          "result: none",
          "exit code: -",
          `owner: ${String(task.ownerId)}`,
          "node: -",
          "attempt: 0",
          `created: ${seconds(task.createTime)}`,
          "started: -",
          "ended: -",
          'waiting: no connected agent offers executor docker (tasks of type "docker" need it)',
          "",
        ].join("\n"),
      );
      await ok(["task", "remove", id]);
    });

    it("task clone makes a new task from the same spec, which runs on its own", async () => {
      const id = await createTask(
        "original",
        'name: original\ntype: host\nenvironment:\n  - A=b=c\nscript:\n  - echo "$A $MOTTAINAI_TASK_ID"\n',
        ["--to", "^cli-agent$"],
      );
      const original = await waitStatus(id, "TASK_STATUS_DONE");
      const out = await ok(["task", "clone", id]);
      assert.match(out, /^[0-9a-f]{16}\n$/);
      const cloneId = out.trim();
      assert.notEqual(cloneId, id);
      const clone = await waitStatus(cloneId, "TASK_STATUS_DONE");
      assert.deepEqual(clone.spec, original.spec);
      assert.equal(clone.targetNode, "^cli-agent$");
      assert.equal(clone.result, "TASK_RESULT_SUCCESS");
      assert.equal(clone.attempt, 1);
      assert.equal(await ok(["task", "log", cloneId]), `b=c ${cloneId}\n`);
      assert.equal(await ok(["task", "log", id]), `b=c ${id}\n`);
      const again = await showJson(id);
      assert.equal(again.attempt, 1);
      assert.deepEqual(again.attempts, original.attempts);
    });

    it("task restart runs a finished task again as a new attempt; the log holds every run", async () => {
      // Attempt 2 ends without a newline: the server's attempt line still starts on a line of its own.
      const id = await hostTask("thrice", [
        "echo run $MOTTAINAI_TASK_ATTEMPT",
        '[ "$MOTTAINAI_TASK_ATTEMPT" -ne 2 ] || printf unterminated',
      ]);
      const first = await waitStatus(id, "TASK_STATUS_DONE");
      assert.equal(first.attempt, 1);
      assert.equal(await ok(["task", "restart", id]), `${id}\n`);
      const second = await waitTask(id, (t) => t.attempt === 2 && t.status === "TASK_STATUS_DONE", "attempt 2 never ended");
      assert.equal(second.result, "TASK_RESULT_SUCCESS");
      assert.equal(await ok(["task", "log", id]), "run 1\n--- attempt 2 on cli-agent ---\nrun 2\nunterminated");
      assert.equal(await ok(["task", "restart", id]), `${id}\n`);
      const task = await waitTask(id, (t) => t.attempt === 3 && t.status === "TASK_STATUS_DONE", "attempt 3 never ended");
      assert.equal(task.result, "TASK_RESULT_SUCCESS");
      const nodeId = String((await nodeJson("cli-agent")).id);
      assert.deepEqual(
        (task.attempts as Json[]).map((a) => [a.number, a.nodeId, a.status, a.result, a.exitCode]),
        [
          [1, nodeId, "TASK_STATUS_DONE", "TASK_RESULT_SUCCESS", 0],
          [2, nodeId, "TASK_STATUS_DONE", "TASK_RESULT_SUCCESS", 0],
          [3, nodeId, "TASK_STATUS_DONE", "TASK_RESULT_SUCCESS", 0],
        ],
      );
      const log = "run 1\n--- attempt 2 on cli-agent ---\nrun 2\nunterminated\n--- attempt 3 on cli-agent ---\nrun 3\n";
      assert.equal(await ok(["task", "log", id]), log);
      assert.equal(await ok(["task", "log", id, "--follow"]), log);
      assert.equal(task.logSize, String(Buffer.byteLength(log)));
      const human = (await ok(["task", "show", id])).split("\n");
      assert.ok(human.includes("attempt: 3"));
      assert.deepEqual(
        human.slice(human.indexOf("") + 1, -1).map((line) => line.split(/ +/).slice(0, 5)),
        [
          ["#", "NODE", "RESULT", "EXIT", "ERROR"],
          ["1", nodeId, "success", "0", "-"],
          ["2", nodeId, "success", "0", "-"],
          ["3", nodeId, "success", "0", "-"],
        ],
      );
    });

    it("task restart of a task that has not ended is refused with failed_precondition", async () => {
      const id = await createTask("parked", "name: parked\ntype: docker\nimage: busybox\nscript:\n  - echo hi\n");
      const r = await cli(["task", "restart", id], env);
      assert.deepEqual(
        { code: r.code, stdout: r.stdout.toString(), stderr: r.stderr },
        { code: 1, stdout: "", stderr: `mottainai: failed_precondition: task ${id} has not ended (waiting); stop it first\n` },
      );
      await ok(["task", "remove", id]);
    });

    it("task remove deletes a finished task; show and log then fail with not_found", async () => {
      const id = await hostTask("removed", ["echo bye"]);
      await waitStatus(id, "TASK_STATUS_DONE");
      assert.equal(await ok(["task", "remove", id]), "");
      for (const args of [
        ["task", "show", id],
        ["task", "log", id],
        ["task", "remove", id],
        ["task", "restart", id],
      ]) {
        const r = await cli(args, env);
        assert.deepEqual(
          { code: r.code, stdout: r.stdout.toString(), stderr: r.stderr },
          { code: 1, stdout: "", stderr: `mottainai: not_found: task ${id} not found\n` },
          args.join(" "),
        );
      }
      const listed = (JSON.parse(await ok(["task", "list", "--json"])) as Json[]).map((t) => t.id);
      assert.ok(!listed.includes(id));
    });

    it("task remove refuses a running task with failed_precondition, and the task keeps running", async () => {
      const release = gate();
      const id = await hostTask("busy", ["echo start", release.wait, "echo end"]);
      await waitStatus(id, "TASK_STATUS_RUNNING");
      const r = await cli(["task", "remove", id], env);
      release.open();
      assert.deepEqual(
        { code: r.code, stdout: r.stdout.toString(), stderr: r.stderr },
        { code: 1, stdout: "", stderr: `mottainai: failed_precondition: task ${id} is running; stop it before removing it\n` },
      );
      const task = await waitStatus(id, "TASK_STATUS_DONE");
      assert.equal(task.result, "TASK_RESULT_SUCCESS");
      assert.equal(await ok(["task", "log", id]), "start\nend\n");
      assert.equal(await ok(["task", "remove", id]), "");
    });
  });

  describe("node tokens", () => {
    it("create prints only the secret; list shows it without the secret; a revoked token cannot register an agent", async () => {
      const created = await cli(["node", "token", "create", "--description", "cli-e2e"], env);
      assert.equal(created.stderr, "");
      assert.equal(created.code, 0);
      const out = created.stdout.toString();
      assert.match(out, /^mrt_[A-Za-z0-9_-]{43}\n$/);
      const secret = out.trim();

      const listed = await ok(["node", "token", "list", "--json"]);
      assert.ok(!listed.includes(secret) && !listed.includes(secret.slice(4)), "token list shows the secret");
      const entries = JSON.parse(listed) as Json[];
      const mine = entries.filter((t) => t.description === "cli-e2e");
      assert.equal(mine.length, 1);
      const token = mine[0]!;
      assert.deepEqual(Object.keys(token).sort(), ["createTime", "description", "id"]);
      assert.match(String(token.id), /^[0-9a-f]{16}$/);

      const human = await ok(["node", "token", "list"]);
      assert.equal(
        human,
        table([
          ["ID", "DESCRIPTION", "CREATED", "EXPIRES", "REVOKED"],
          ...entries.map((t) => [String(t.id), t.description ? String(t.description) : "-", seconds(t.createTime), "-", "no"]),
        ]),
      );

      assert.equal(await ok(["node", "token", "revoke", String(token.id)]), "");
      const after = (JSON.parse(await ok(["node", "token", "list", "--json"])) as Json[]).find((t) => t.id === token.id);
      assert.deepEqual(after, { ...token, revoked: true });
      const missing = await cli(["node", "token", "revoke", "0000000000000000"], env);
      assert.deepEqual(
        { code: missing.code, stderr: missing.stderr },
        { code: 1, stderr: "mottainai: not_found: registration token 0000000000000000 not found\n" },
      );

      const refused = spawnAgent(server, { registrationToken: secret, name: "revoked-agent" });
      assert.equal(await refused.exited, 1);
      const fatal = refused.logLines().filter((line) => line.level === 60);
      assert.deepEqual(
        fatal.map((line) => line.msg),
        ["registration refused: registration token is invalid, revoked or expired"],
      );
      assert.equal(existsSync(join(refused.stateDir, "credential.json")), false);
      const nodes = JSON.parse(await ok(["node", "list", "--json"])) as Json[];
      assert.ok(!nodes.some((n) => n.name === "revoked-agent"));
    });
  });

  describe("nodes", () => {
    it("node list and node show describe a connected agent exactly, with its running tasks", async () => {
      const listed = await stableNodeView("cli-agent", ["node", "list"]);
      const node = listed.node;
      assert.equal(node.state, "NODE_STATE_ONLINE");
      const others = (JSON.parse(await ok(["node", "list", "--json"])) as Json[]).filter((n) => n.name !== "cli-agent");
      assert.deepEqual(others, []);
      assert.equal(
        listed.human,
        table([
          ["NAME", "ID", "STATE", "QUEUES", "RUNNING", "LAST HEARTBEAT"],
          ["cli-agent", String(node.id), "online", "general:2", "0", seconds(node.lastHeartbeatTime)],
        ]),
      );
      const shown = await stableNodeView("cli-agent", ["node", "show", "cli-agent"]);
      const expectedShow = (n: Json, state: string, running: string) =>
        [
          `id: ${String(n.id)}`,
          "name: cli-agent",
          `hostname: ${hostname()}`,
          `state: ${state}`,
          `agent version: ${AGENT_VERSION}`,
          "capacity: 2",
          "queues: general:2",
          "executors: host",
          "labels: -",
          `running: ${running}`,
          `last heartbeat: ${seconds(n.lastHeartbeatTime)}`,
          `connected: ${seconds(n.connectTime)}`,
          `created: ${seconds(n.createTime)}`,
          "",
        ].join("\n");
      assert.equal(shown.human, expectedShow(shown.node, "online", "-"));
      // By id as well as by name.
      assert.equal(await ok(["node", "show", String(node.id)]), await ok(["node", "show", "cli-agent"]));

      const release = gate();
      const id = await hostTask("occupant", ["echo in", release.wait, "echo out"]);
      await waitStatus(id, "TASK_STATUS_RUNNING");
      const busy = await stableNodeView("cli-agent", ["node", "show", "cli-agent"]);
      assert.deepEqual(busy.node.runningTaskIds, [id]);
      assert.equal(busy.human, expectedShow(busy.node, "online", id));
      const busyList = await stableNodeView("cli-agent", ["node", "list"]);
      assert.equal(
        busyList.human,
        table([
          ["NAME", "ID", "STATE", "QUEUES", "RUNNING", "LAST HEARTBEAT"],
          ["cli-agent", String(node.id), "online", "general:2", "1", seconds(busyList.node.lastHeartbeatTime)],
        ]),
      );
      release.open();
      await waitStatus(id, "TASK_STATUS_DONE");
      assert.deepEqual((await nodeJson("cli-agent")).runningTaskIds, undefined);

      const missing = await cli(["node", "show", "nosuch"], env);
      assert.deepEqual(
        { code: missing.code, stdout: missing.stdout.toString(), stderr: missing.stderr },
        { code: 1, stdout: "", stderr: "mottainai: not_found: node nosuch not found\n" },
      );
    });

    it("a stopped agent is offline, comes back online with its stored credential; drain survives; node remove deletes it", async () => {
      const stateDir = tempDir("short-lived");
      const first = await startAgent(server, {
        registrationToken: await registrationToken(server),
        name: "short-lived",
        stateDir,
      });
      const id = String((await nodeJson("short-lived")).id);
      assert.equal(await first.stop(), 0);
      const offline = async (): Promise<Json> =>
        (await waitFor<Json | undefined>(
          async () => {
            const n = await nodeJson("short-lived");
            return n.state === "NODE_STATE_OFFLINE" ? n : undefined;
          },
          20_000,
          () => "the stopped agent never went offline",
        ))!;
      const expectList = async (state: string) => {
        const { nodes, human } = await stableList();
        assert.equal(
          human,
          table([
            ["NAME", "ID", "STATE", "QUEUES", "RUNNING", "LAST HEARTBEAT"],
            ...nodes.map((n) => [
              String(n.name),
              String(n.id),
              n.name === "short-lived" ? state : "online",
              "general:2",
              "0",
              seconds(n.lastHeartbeatTime),
            ]),
          ]),
        );
      };
      let node = await offline();
      assert.equal(node.draining, undefined);
      await expectList("offline");
      assert.ok((await ok(["node", "show", "short-lived"])).split("\n").includes("state: offline"));

      // Started again without a registration token: the stored credential brings back the same node.
      const second = await startAgent(server, { registrationToken: "", name: "short-lived", stateDir });
      assert.equal((await nodeJson("short-lived")).id, id);
      await expectList("online");
      assert.equal(await ok(["node", "drain", "short-lived"]), "");
      assert.equal((await nodeJson("short-lived")).state, "NODE_STATE_DRAINING");
      await expectList("draining");
      assert.equal(await second.stop(), 0);
      node = await offline();
      assert.equal(node.draining, true);
      await expectList("offline (draining)");
      assert.ok((await ok(["node", "show", "short-lived"])).split("\n").includes("state: offline (draining)"));

      assert.equal(await ok(["node", "remove", "short-lived"]), "");
      const gone = await cli(["node", "show", "short-lived"], env);
      assert.deepEqual(
        { code: gone.code, stdout: gone.stdout.toString(), stderr: gone.stderr },
        { code: 1, stdout: "", stderr: "mottainai: not_found: node short-lived not found\n" },
      );
      assert.deepEqual(
        (JSON.parse(await ok(["node", "list", "--json"])) as Json[]).map((n) => n.name),
        ["cli-agent"],
      );
    });

    it("node remove of a connected agent revokes its credential: the agent exits 1 saying so", async () => {
      const doomed = spawnAgent(server, { registrationToken: await registrationToken(server), name: "doomed" });
      await waitFor(
        async () =>
          (JSON.parse(await ok(["node", "list", "--json"])) as Json[]).some(
            (n) => n.name === "doomed" && n.state === "NODE_STATE_ONLINE",
          ),
        20_000,
        () => `doomed did not connect:\n${doomed.output.join("\n")}`,
      );
      assert.equal(await ok(["node", "remove", "doomed"]), "");
      assert.equal(await doomed.exited, 1);
      const fatal = doomed.logLines().filter((line) => line.level === 60);
      assert.equal(fatal.length, 1, doomed.output.join("\n"));
      assert.equal(
        fatal[0]!.msg,
        `the server refused this agent's credential: invalid or expired token (delete ${join(doomed.stateDir, "credential.json")} and start with --registration-token to register again)`,
      );
      assert.ok(!(JSON.parse(await ok(["node", "list", "--json"])) as Json[]).some((n) => n.name === "doomed"));
    });

    it("node drain keeps new tasks waiting while running ones finish; node resume runs them", async () => {
      const release = gate();
      const running = await hostTask("before-drain", ["echo a", release.wait, "echo b"]);
      await waitStatus(running, "TASK_STATUS_RUNNING");
      assert.equal(await ok(["node", "drain", "cli-agent"]), "");
      assert.equal((await nodeJson("cli-agent")).state, "NODE_STATE_DRAINING");
      assert.match(await ok(["node", "list"]), /^cli-agent +[0-9a-f]{16} +draining +general:2 +1 /m);

      let held: string;
      try {
        held = await hostTask("during-drain", ["echo held"]);
        // The new task is looked at while the agent has a free slot, and again once the running one ends.
        assert.equal((await showJson(held)).waitingReason, "every matching agent is draining");
        release.open();
        const finished = await waitStatus(running, "TASK_STATUS_DONE");
        assert.equal(finished.result, "TASK_RESULT_SUCCESS");
        assert.equal(await ok(["task", "log", running]), "a\nb\n");
        // The agent has had free slots all along: the task waits only because of the drain.
        const waiting = await showJson(held);
        assert.equal(waiting.status, "TASK_STATUS_WAITING");
        assert.equal(waiting.attempt, undefined);
        assert.equal(waiting.attempts, undefined);
        assert.equal(waiting.waitingReason, "every matching agent is draining");
        const human = (await ok(["task", "show", held])).split("\n");
        assert.ok(human.includes("status: waiting"));
        assert.ok(human.includes("attempt: 0"));
        assert.deepEqual(human.slice(-2), ["waiting: every matching agent is draining", ""]);
      } finally {
        release.open();
        assert.equal(await ok(["node", "resume", "cli-agent"]), "");
      }
      const ran = await waitStatus(held, "TASK_STATUS_DONE");
      assert.equal(ran.result, "TASK_RESULT_SUCCESS");
      assert.equal(await ok(["task", "log", held]), "held\n");
      assert.equal((await nodeJson("cli-agent")).state, "NODE_STATE_ONLINE");
    });
  });

  describe("users without rights", () => {
    /** A user of `role` made by the admin through the API (the CLI has no user commands), and an env with their token. */
    const userEnv = async (name: string, role: Role): Promise<Record<string, string>> => {
      const { user } = await adminClient(server, UserService).createUser({ name, role });
      const { secret } = await adminClient(server, TokenService).createToken({ name: `${name}-cli`, userId: user!.id });
      return { ...env, MOTTAINAI_TOKEN: secret };
    };

    it("a plain user sees and controls only their own tasks and cannot manage nodes", async () => {
      const bob = await userEnv("bob", Role.USER);
      const as = (args: string[]) => cli(args, bob);
      const expectFail = async (args: string[], stderr: string) => {
        const r = await as(args);
        assert.deepEqual(
          { code: r.code, stdout: r.stdout.toString(), stderr: r.stderr },
          { code: 1, stdout: "", stderr },
          args.join(" "),
        );
      };
      assert.equal((await as(["whoami"])).stdout.toString(), "bob (user)\n");

      const admins = await hostTask("admins-own", ["echo secret-output"]);
      await waitStatus(admins, "TASK_STATUS_DONE");
      for (const args of [
        ["task", "show", admins],
        ["task", "log", admins],
        ["task", "stop", admins],
        ["task", "restart", admins],
        ["task", "clone", admins],
        ["task", "remove", admins],
      ]) {
        await expectFail(args, `mottainai: permission_denied: task ${admins} belongs to another user\n`);
      }
      assert.equal((await showJson(admins)).attempt, 1);

      const tail = cliStream(["events", "tail", "--json", "--from", "0"], bob);
      const created = await as(["task", "create", "-f", file("bobs.yaml", "name: bobs\ntype: host\nscript:\n  - echo mine\n")]);
      assert.equal(created.stderr, "");
      const mine = created.stdout.toString().trim();
      const done = await waitStatus(mine, "TASK_STATUS_DONE", { MOTTAINAI_TOKEN: bob.MOTTAINAI_TOKEN! });
      assert.equal(done.result, "TASK_RESULT_SUCCESS");
      assert.equal((await as(["task", "log", mine])).stdout.toString(), "mine\n");
      const listed = await as(["task", "list", "--json"]);
      assert.deepEqual(
        (JSON.parse(listed.stdout.toString()) as Json[]).map((t) => t.id),
        [mine],
      );
      // Only the events about what bob owns, in order: the API token the admin created for him
      // (no secret in it), then his task's.
      await tail.waitForLines((lines) => lines.some((line) => line.includes('"task.finished"')));
      assert.equal((await tail.interrupt()).code, 130);
      assert.deepEqual(
        tail.lines.map((line) => {
          const e = JSON.parse(line) as Json;
          return [e.type, e.type === "token.created" ? (e.attributes as Json).owner_id : e.subjectId];
        }),
        [
          ["token.created", done.ownerId],
          ...["task.created", "task.assigned", "task.running", "task.finished"].map((type) => [type, mine]),
        ],
      );
      // The admin sees bob's task.
      assert.equal((await showJson(mine)).ownerId, done.ownerId);

      await expectFail(["node", "list"], "mottainai: permission_denied: managing nodes is for managers and admins\n");
      await expectFail(
        ["node", "show", "cli-agent"],
        "mottainai: permission_denied: managing nodes is for managers and admins\n",
      );
      await expectFail(
        ["node", "drain", "cli-agent"],
        "mottainai: permission_denied: managing nodes is for managers and admins\n",
      );
      await expectFail(
        ["node", "remove", "cli-agent"],
        "mottainai: permission_denied: managing nodes is for managers and admins\n",
      );
      await expectFail(["node", "token", "create"], "mottainai: permission_denied: this call is for admins\n");
      await expectFail(["node", "token", "list"], "mottainai: permission_denied: this call is for admins\n");
      assert.equal((await nodeJson("cli-agent")).state, "NODE_STATE_ONLINE");
    });

    it("a manager manages nodes and every task but not registration tokens", async () => {
      const carol = await userEnv("carol", Role.MANAGER);
      const admins = await hostTask("managed", ["echo hi"]);
      await waitStatus(admins, "TASK_STATUS_DONE");
      const shown = await cli(["task", "show", admins, "--json"], carol);
      assert.equal(shown.code, 0, shown.stderr);
      assert.equal((JSON.parse(shown.stdout.toString()) as Json).id, admins);
      const nodes = await cli(["node", "list", "--json"], carol);
      assert.equal(nodes.code, 0, nodes.stderr);
      assert.deepEqual(
        (JSON.parse(nodes.stdout.toString()) as Json[]).map((n) => n.name),
        ["cli-agent"],
      );
      const token = await cli(["node", "token", "create"], carol);
      assert.deepEqual(
        { code: token.code, stdout: token.stdout.toString(), stderr: token.stderr },
        { code: 1, stdout: "", stderr: "mottainai: permission_denied: this call is for admins\n" },
      );
    });
  });

  describe("events", () => {
    it("events tail --json --from 0 replays and streams a task's life in sequence order", async () => {
      const tail = cliStream(["events", "tail", "--json", "--from", "0"], env);
      const id = await hostTask("observed", ["echo seen"]);
      const parse = (lines: string[]) => lines.map((line) => JSON.parse(line) as Json);
      await tail.waitForLines((lines) => parse(lines).some((e) => e.type === "task.finished" && e.subjectId === id));
      const { code, stderr } = await tail.interrupt();
      assert.deepEqual({ code, stderr }, { code: 130, stderr: "" });

      const events = parse(tail.lines);
      // Every stored event from the first one on, in strictly increasing sequence order.
      assert.equal(events[0]!.sequence, "1");
      assert.equal(events[0]!.type, "node.registered");
      const sequences = events.map((e) => Number(e.sequence));
      for (let i = 1; i < sequences.length; i++)
        assert.ok(sequences[i]! > sequences[i - 1]!, `sequence ${sequences[i]} after ${sequences[i - 1]}`);
      const mine = events.filter((e) => e.subjectId === id);
      assert.deepEqual(
        mine.map((e) => e.type),
        ["task.created", "task.assigned", "task.running", "task.finished"],
      );
      assert.deepEqual(mine[1]!.attributes, { node_id: String((await nodeJson("cli-agent")).id), attempt: "1" });
      assert.deepEqual(mine[3]!.attributes, { attempt: "1", result: "success" });
      assert.equal((mine[3]!.task as Json).status, "TASK_STATUS_DONE");

      // The human form of the same events, after the sequence of the event before the task's creation.
      const index = events.indexOf(mine[0]!);
      const from = Number(events[index - 1]!.sequence);
      const human = cliStream(["events", "tail", "--from", String(from)], env);
      const expected = events
        .slice(index)
        .map((e) => `${String(e.sequence)} ${seconds(e.time)} ${String(e.type)} ${e.subjectId ? String(e.subjectId) : "-"}`);
      await human.waitForLines((lines) => lines.length >= expected.length);
      assert.equal((await human.interrupt()).code, 130);
      assert.deepEqual(human.lines.slice(0, expected.length), expected);
    });

    it("events tail --type keeps only the events whose type starts with the prefix", async () => {
      const first = await hostTask("filtered-1", ["true"]);
      await waitStatus(first, "TASK_STATUS_DONE");
      const tail = cliStream(["events", "tail", "--json", "--type", "task.finished"], env);
      const second = await hostTask("filtered-2", ["true"]);
      await tail.waitForLines((lines) => lines.some((line) => (JSON.parse(line) as Json).subjectId === second));
      assert.equal((await tail.interrupt()).code, 130);
      const events = tail.lines.map((line) => JSON.parse(line) as Json);
      assert.deepEqual([...new Set(events.map((e) => e.type))], ["task.finished"]);
      assert.equal(events.filter((e) => e.subjectId === first).length, 1);
      assert.equal(events.filter((e) => e.subjectId === second).length, 1);
      const sequences = events.map((e) => Number(e.sequence));
      assert.deepEqual(
        sequences,
        [...sequences].sort((a, b) => a - b),
      );
      assert.equal(new Set(sequences).size, sequences.length);
    });
  });
});
