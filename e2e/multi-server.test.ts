import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { NodeService, NodeState, TaskResult, TaskService, TaskSpecSchema, TaskStatus, type Task } from "@mottainai/proto";
import { requireJongodb, type JongodbServer } from "@mottainai/server";
import {
  adminClient,
  cleanupAll,
  cliStream,
  registrationToken,
  spawnAgent,
  startServer,
  tempDir,
  waitFor,
  type AgentProc,
  type ServerProc,
} from "./harness.js";

/**
 * Several server processes on one MongoDB database (the jongodb test server), agents given every
 * server's URL, and kill -9 of the server an agent is connected to (issue 7, several servers).
 * Blobs (and so task logs) are in GridFS in the same database; each server has its own data dir.
 */
const ci = Boolean(process.env.CI);
const TIMERS = ["--heartbeat-interval", "200ms", "--lease-ttl", "5s", "--restart-grace", "5s", "--event-poll-interval", "100ms"];
let databases = 0;

const hostTask = (name: string, script: string[]) => create(TaskSpecSchema, { name, type: "host", script });

async function readLog(server: ServerProc, id: string): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const m of adminClient(server, TaskService).followTaskLog({ id, offset: 0n })) parts.push(m.data);
  return Buffer.concat(parts);
}

async function until(server: ServerProc, id: string, done: (t: Task) => boolean, what: string, timeoutMs = 60_000) {
  const tasks = adminClient(server, TaskService);
  return waitFor(
    async () => {
      const { task } = await tasks.getTask({ id });
      return task && done(task) ? task : undefined;
    },
    timeoutMs,
    () => `task ${id} never ${what}`,
  );
}

const ended = (t: Task) => t.status === TaskStatus.DONE || t.status === TaskStatus.STOPPED;

describe("several servers on one MongoDB database (real processes, jongodb)", function () {
  this.timeout(180_000);
  let mongo: JongodbServer | undefined;
  let servers: ServerProc[] = [];

  before(async function () {
    mongo = await requireJongodb(ci, process.env);
    if (!mongo) this.skip();
  });
  after(async () => {
    await mongo?.stop();
  });
  afterEach(cleanupAll);

  /**
   * Starts `count` servers at once on a fresh, empty database: they race to create the admin,
   * one wins and writes the shared token file, the others start without one.
   */
  async function startServers(count: number): Promise<ServerProc[]> {
    const url = `${mongo!.url}mottainai_e2e_${process.pid}_${++databases}`;
    const tokenFile = join(tempDir("shared"), "admin-token");
    const started = await Promise.all(
      Array.from({ length: count }, () => {
        const dataDir = tempDir("server");
        // The harness reads <dataDir>/admin-token; the real token is read from tokenFile below.
        writeFileSync(join(dataDir, "admin-token"), "");
        return startServer({ dataDir, args: ["--store", url, "--blobs", "gridfs", "--admin-token-file", tokenFile, ...TIMERS] });
      }),
    );
    const adminToken = readFileSync(tokenFile, "utf8").trim();
    assert.match(adminToken, /^mtk/, "one server created the admin");
    servers = started.map((s) => ({ ...s, adminToken }));
    const { nodes } = await adminClient(servers[0]!, NodeService).listNodes({});
    assert.deepEqual(nodes, []);
    return servers;
  }

  /** An agent given every server's URL, first, in the order of `order`. */
  async function startAgentOn(order: ServerProc[], name: string, args: string[] = []): Promise<AgentProc> {
    const agent = spawnAgent(
      { url: order.map((s) => s.url).join(",") },
      { registrationToken: await registrationToken(order[0]!), name, args },
    );
    const nodes = adminClient(order[order.length - 1]!, NodeService);
    await waitFor(
      async () => (await nodes.listNodes({})).nodes.some((n) => n.name === name && n.state === NodeState.ONLINE),
      30_000,
      () => `agent ${name} did not connect:\n${agent.output.join("\n")}`,
    );
    return agent;
  }

  it("runs tasks created through every server exactly once, with exact logs, and fans events out to every server", async () => {
    const [a, b, c] = await startServers(3);
    const all = [a!, b!, c!];
    const tail = cliStream(["events", "tail", "--json"], {
      MOTTAINAI_SERVER: c!.url,
      MOTTAINAI_TOKEN: c!.adminToken,
      XDG_CONFIG_HOME: tempDir("config"),
    });
    // Give the subscription a moment to be established before anything is published.
    await new Promise((r) => setTimeout(r, 500));
    for (let i = 0; i < 3; i++) await startAgentOn([...all.slice(i), ...all.slice(0, i)], `agent-${i}`);

    const count = 12;
    const expected = new Map<string, string>();
    const createdOn = new Map<string, ServerProc>();
    for (let i = 0; i < count; i++) {
      const via = all[i % 3]!;
      const { task } = await adminClient(via, TaskService).createTask({
        spec: hostTask(`multi-${i}`, [`echo task-${i}`, "seq 1 300", `printf 'no newline at the end %s' ${i}`]),
      });
      const lines = Array.from({ length: 300 }, (_, k) => `${k + 1}\n`).join("");
      expected.set(task!.id, `task-${i}\n${lines}no newline at the end ${i}`);
      createdOn.set(task!.id, via);
    }
    const ranOn = new Set<string>();
    for (const [id, text] of expected) {
      const via = createdOn.get(id)!;
      const reader = all[(all.indexOf(via) + 1) % 3]!;
      const done = await until(reader, id, ended, "ended");
      ranOn.add(done.attempts[0]?.nodeId ?? "");
      assert.equal(done.result, TaskResult.SUCCESS, `task ${id}`);
      assert.equal(done.attempts.length, 1, `task ${id} ran once`);
      assert.equal(done.attempts[0]!.result, TaskResult.SUCCESS);
      assert.equal((await readLog(reader, id)).toString("utf8"), text, `log of ${id}`);
    }

    assert.ok(ranOn.size >= 2, `the tasks ran on agents of several servers (${ranOn.size})`);

    // An event written through a (or b) reaches the `events tail` subscriber on c, once.
    const seen = await tail.waitForLines((lines) => {
      const events = lines.map((l) => JSON.parse(l) as { type: string; subjectId: string; sequence: string });
      const finished = events.filter((e) => e.type === "task.finished" && expected.has(e.subjectId));
      return finished.length >= count ? events : undefined;
    }, 30_000);
    for (const id of expected.keys()) {
      assert.equal(seen.filter((e) => e.type === "task.created" && e.subjectId === id).length, 1, `task.created of ${id}`);
      assert.equal(seen.filter((e) => e.type === "task.assigned" && e.subjectId === id).length, 1, `task.assigned of ${id}`);
    }
    const sequences = seen.map((e) => Number(e.sequence));
    assert.deepEqual(
      sequences,
      [...sequences].sort((x, y) => x - y),
      "in sequence order",
    );
    assert.equal(new Set(sequences).size, sequences.length, "no event twice");
    await tail.interrupt();
  });

  it("kill -9 of the server an agent is connected to: the agent moves on and the task completes once with its full log", async () => {
    const [a, b, c] = await startServers(3);
    const agent = await startAgentOn([a!, b!, c!], "mover");
    // Created through b: a's scheduler learns of it from the event feed.
    const { task } = await adminClient(b!, TaskService).createTask({
      spec: hostTask("survivor", ["echo begin", "for i in $(seq 1 40); do echo line-$i; sleep 0.1; done", "echo end"]),
    });
    const id = task!.id;
    await until(c!, id, (t) => t.status === TaskStatus.RUNNING, "ran");
    await waitFor(
      async () => (await readLog(c!, id)).includes("line-3\n"),
      30_000,
      () => "no log arrived",
    );
    a!.child.kill("SIGKILL");
    await a!.exited;

    const done = await until(c!, id, ended, "ended");
    assert.equal(done.result, TaskResult.SUCCESS, agent.output.join("\n"));
    assert.equal(done.attempts.length, 1, "re-claimed on another server, not requeued");
    const lines = Array.from({ length: 40 }, (_, k) => `line-${k + 1}\n`).join("");
    assert.equal((await readLog(c!, id)).toString("utf8"), `begin\n${lines}end\n`);
    assert.ok(
      agent.logLines().some((l) => l.msg === "connected" && l.keep === 1),
      "the agent re-claimed its attempt on another server",
    );
  });

  it("kill -9 of a server and its agent: another server's lease sweep requeues the attempt once, and it completes elsewhere", async () => {
    const [a, b, c] = await startServers(3);
    const doomed = await startAgentOn([a!], "doomed");
    const { task } = await adminClient(c!, TaskService).createTask({
      spec: hostTask("orphan", ["echo run", "sleep 3", "echo done"]),
    });
    const id = task!.id;
    await until(b!, id, (t) => t.status === TaskStatus.RUNNING, "ran");
    await waitFor(
      async () => (await readLog(b!, id)).length > 0,
      30_000,
      () => "no log arrived",
    );
    doomed.child.kill("SIGKILL");
    a!.child.kill("SIGKILL");
    await Promise.all([doomed.exited, a!.exited]);
    await startAgentOn([b!, c!], "heir");
    const done = await until(c!, id, ended, "ended");
    assert.equal(done.result, TaskResult.SUCCESS);
    assert.deepEqual(
      done.attempts.map((t) => t.result),
      [TaskResult.ERROR, TaskResult.SUCCESS],
      "attempt 1 lost with its lease, attempt 2 ran on heir",
    );
    const log = (await readLog(b!, id)).toString("utf8");
    assert.equal(log, "run\n--- attempt 2 on heir ---\nrun\ndone\n");
  });

  it("a stop requested through one server reaches the agent connected to another", async () => {
    const [a, b, c] = await startServers(3);
    await startAgentOn([a!, b!, c!], "stoppable");
    const { task } = await adminClient(b!, TaskService).createTask({ spec: hostTask("long", ["echo waiting", "sleep 60"]) });
    await until(c!, task!.id, (t) => t.status === TaskStatus.RUNNING, "ran");
    // The agent is connected to a; every server lists the task as running on it.
    for (const server of [a!, b!, c!]) {
      const { node } = await adminClient(server, NodeService).getNode({ id: "stoppable" });
      assert.deepEqual(node?.runningTaskIds, [task!.id], `node stoppable as ${server.url} sees it`);
    }
    await adminClient(c!, TaskService).stopTask({ id: task!.id });
    const stopped = await until(b!, task!.id, ended, "stopped", 20_000);
    assert.equal(stopped.status, TaskStatus.STOPPED);
    assert.equal(stopped.attempts.length, 1);
  });
});
