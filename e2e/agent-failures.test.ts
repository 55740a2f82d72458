import assert from "node:assert/strict";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  EventService,
  NodeService,
  NodeState,
  Role,
  TaskResult,
  TaskService,
  TaskSpecSchema,
  TaskStatus,
  TokenService,
  UserService,
  type Task,
} from "@mottainai/proto";
import {
  adminClient,
  cleanupAll,
  registrationToken,
  startAgent,
  startServer,
  tokenClient,
  waitFor,
  type ServerProc,
} from "./harness.js";
import { freePort, startTcpProxy } from "./tcp-proxy.js";

const FAST_LEASES = ["--heartbeat-interval", "200ms", "--lease-ttl", "1s"];

const hostTask = (name: string, script: string[], extra: MessageInitShape<typeof TaskSpecSchema> = {}) =>
  create(TaskSpecSchema, { ...extra, name, type: "host", script });

async function until(
  server: ServerProc,
  id: string,
  done: (t: Task) => boolean,
  what: string,
  timeoutMs = 30_000,
): Promise<Task> {
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

const finished = (t: Task) => t.status === TaskStatus.DONE || t.status === TaskStatus.STOPPED;

async function readLog(server: ServerProc, id: string): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const m of adminClient(server, TaskService).followTaskLog({ id, offset: 0n })) parts.push(m.data);
  return Buffer.concat(parts);
}

async function eventTypes(server: ServerProc, id: string): Promise<string[]> {
  const { events } = await adminClient(server, EventService).listEvents({ fromSequence: 0n, pageSize: 1000 });
  return events.filter((e) => e.subjectId === id).map((e) => e.type);
}

/** Agents and servers that die or get cut off, for real (DESIGN §3 invariants 3–6). */
describe("agent and server failures (real processes, killed for real)", function () {
  this.timeout(120_000);
  afterEach(cleanupAll);

  it("kill -9 of an agent mid-task: the task completes on a second agent as attempt 2; attempt 1 shows error", async () => {
    const server = await startServer({ args: FAST_LEASES });
    const alpha = await startAgent(server, { registrationToken: await registrationToken(server), name: "alpha" });
    const tasks = adminClient(server, TaskService);
    const { task } = await tasks.createTask({ spec: hostTask("survivor", ["echo start", "sleep 2", "echo end"]) });
    await until(server, task!.id, (t) => t.status === TaskStatus.RUNNING, "ran on alpha");
    await startAgent(server, { registrationToken: await registrationToken(server), name: "beta" });
    alpha.child.kill("SIGKILL");
    const done = await until(server, task!.id, finished, "finished");
    assert.equal(done.result, TaskResult.SUCCESS);
    assert.equal(done.attempt, 2);
    assert.deepEqual(
      done.attempts.map((a) => [a.number, a.result, a.error]),
      [
        [1, TaskResult.ERROR, "lease expired: the agent stopped renewing it"],
        [2, TaskResult.SUCCESS, ""],
      ],
    );
    assert.equal((await readLog(server, task!.id)).toString(), "start\n--- attempt 2 on beta ---\nstart\nend\n");
  });

  it("kill -9 of the server mid-task and a restart on the same data: the task completes once, its log byte-identical", async () => {
    const port = await freePort();
    const first = await startServer({ port, args: ["--heartbeat-interval", "200ms", "--lease-ttl", "2s"] });
    await startAgent(first, { registrationToken: await registrationToken(first), name: "steady" });
    // 40 lines of 100,000 bytes each (a known pattern), a pause after each: about 4 MB over 4 s.
    const script = [
      'awk \'BEGIN { for (i = 0; i < 40; i++) { s = ""; for (j = 0; j < 12500; j++) s = s sprintf("%07d|", i * 12500 + j); print s; fflush(); system("sleep 0.1") } }\'',
    ];
    const { task } = await adminClient(first, TaskService).createTask({ spec: hostTask("pattern", script) });
    await waitFor(
      async () => ((await adminClient(first, TaskService).getTask({ id: task!.id })).task?.logSize ?? 0n) > 500_000n,
      20_000,
      () => "the pattern never started",
    );
    first.child.kill("SIGKILL");
    await first.exited;
    await new Promise((r) => setTimeout(r, 1000));
    const second = await startServer({
      port,
      dataDir: first.dataDir,
      args: ["--heartbeat-interval", "200ms", "--lease-ttl", "2s"],
    });
    const server = { ...second, adminToken: first.adminToken };
    const done = await until(server, task!.id, finished, "finished");
    assert.equal(done.result, TaskResult.SUCCESS);
    assert.equal(done.attempt, 1);
    assert.equal(done.attempts.length, 1);
    let expected = "";
    for (let i = 0; i < 40; i++) {
      let line = "";
      for (let j = 0; j < 12500; j++) line += `${String(i * 12500 + j).padStart(7, "0")}|`;
      expected += `${line}\n`;
    }
    const log = await readLog(server, task!.id);
    assert.equal(log.length, 4_000_040);
    assert.ok(log.equals(Buffer.from(expected)), "stored log differs from what the script wrote");
    assert.deepEqual(
      (await eventTypes(server, task!.id)).filter((t) => t === "task.finished"),
      ["task.finished"],
    );
  });

  it("an agent cut off until its lease expires is fenced when it returns and never reports a second completion", async () => {
    const server = await startServer({ args: FAST_LEASES });
    const proxy = await startTcpProxy(server.port);
    await startAgent(
      { url: proxy.url, adminToken: server.adminToken },
      { registrationToken: await registrationToken(server), name: "island" },
    );
    const tasks = adminClient(server, TaskService);
    const { task } = await tasks.createTask({
      spec: hostTask("fenced", ["echo first", "sleep 3", 'echo "finished attempt $MOTTAINAI_TASK_ATTEMPT"']),
    });
    await until(server, task!.id, (t) => t.status === TaskStatus.RUNNING, "ran on island");
    proxy.cut();
    await until(server, task!.id, (t) => t.status === TaskStatus.WAITING, "was requeued");
    await startAgent(server, { registrationToken: await registrationToken(server), name: "mainland" });
    const done = await until(server, task!.id, finished, "finished on mainland");
    // Let the island's script end (3 s) while cut off, then let it reconnect and try to report.
    await new Promise((r) => setTimeout(r, 3500));
    proxy.restore();
    await waitFor(
      async () => (await adminClient(server, NodeService).getNode({ id: "island" })).node?.state === NodeState.ONLINE,
      20_000,
      () => "the island never reconnected",
    );
    // Give a stale report every chance to arrive before looking.
    await new Promise((r) => setTimeout(r, 1000));
    const after = (await tasks.getTask({ id: task!.id })).task!;
    assert.equal(after.result, TaskResult.SUCCESS);
    assert.equal(after.attempt, 2);
    assert.deepEqual(
      after.attempts.map((a) => [a.number, a.result]),
      [
        [1, TaskResult.ERROR],
        [2, TaskResult.SUCCESS],
      ],
    );
    assert.equal(after.endTime?.seconds, done.endTime?.seconds);
    const log = (await readLog(server, task!.id)).toString();
    assert.doesNotMatch(log, /finished attempt 1/);
    assert.match(log, /(^|\n)--- attempt 2 on mainland ---\nfirst\nfinished attempt 2\n$/);
    assert.deepEqual(
      (await eventTypes(server, task!.id)).filter((t) => t === "task.finished"),
      ["task.finished"],
    );
    await proxy.close();
  });

  it("a timeout ends the attempt with result error and no requeue", async () => {
    const server = await startServer();
    await startAgent(server, { registrationToken: await registrationToken(server), name: "timer" });
    const { task } = await adminClient(server, TaskService).createTask({
      spec: hostTask("slow", ["echo begin", "sleep 30"], { timeout: 1 }),
    });
    const done = await until(server, task!.id, finished, "finished");
    assert.equal(done.status, TaskStatus.DONE);
    assert.equal(done.result, TaskResult.ERROR);
    assert.equal(done.error, "timed out after 1s");
    assert.equal(done.attempts.length, 1);
    assert.equal((await readLog(server, task!.id)).toString(), "begin\n");
  });

  it("retries a failing script as its retry field says, and only on a non-zero exit", async () => {
    const server = await startServer();
    await startAgent(server, { registrationToken: await registrationToken(server), name: "retrier" });
    const tasks = adminClient(server, TaskService);
    const marker = `/tmp/mottainai-retry-${process.pid}-${Date.now()}`;
    const flaky = (
      await tasks.createTask({
        spec: hostTask("flaky", [`if [ -e ${marker} ]; then echo second; else touch ${marker}; echo first; exit 4; fi`], {
          retry: 3,
        }),
      })
    ).task!;
    const alwaysFails = (await tasks.createTask({ spec: hostTask("broken", ["exit 1"], { retry: 2 }) })).task!;
    const ok = (await tasks.createTask({ spec: hostTask("fine", ["true"], { retry: 5 }) })).task!;
    const f = await until(server, flaky.id, finished, "finished");
    assert.equal(f.result, TaskResult.SUCCESS);
    assert.deepEqual(
      f.attempts.map((a) => [a.number, a.result, a.exitCode]),
      [
        [1, TaskResult.FAILED, 4],
        [2, TaskResult.SUCCESS, 0],
      ],
    );
    const b = await until(server, alwaysFails.id, finished, "finished");
    assert.equal(b.result, TaskResult.FAILED);
    assert.equal(b.exitCode, 1);
    assert.deepEqual(
      b.attempts.map((a) => a.result),
      [TaskResult.FAILED, TaskResult.FAILED, TaskResult.FAILED],
    );
    const o = await until(server, ok.id, finished, "finished");
    assert.equal(o.attempts.length, 1);
  });

  it("is fair across owners: one user's queue of waiting tasks does not starve another user's single task", async () => {
    const server = await startServer();
    const users = adminClient(server, UserService);
    const { user } = await users.createUser({ name: "light", role: Role.USER });
    const { secret } = await adminClient(server, TokenService).createToken({ name: "light", userId: user!.id });
    const heavy = adminClient(server, TaskService);
    const light = tokenClient(server.url, secret, TaskService);
    const heavyIds: string[] = [];
    for (let i = 0; i < 12; i++)
      heavyIds.push((await heavy.createTask({ spec: hostTask(`heavy-${i}`, ["sleep 0.1"]) })).task!.id);
    const lightId = (await light.createTask({ spec: hostTask("light", ["echo light"]) })).task!.id;
    await startAgent(server, { registrationToken: await registrationToken(server), name: "single", args: ["--capacity", "1"] });
    await until(server, lightId, finished, "finished");
    const starts = await Promise.all(
      [...heavyIds, lightId].map(async (id) => {
        const t = (await heavy.getTask({ id })).task!;
        return {
          id,
          start: t.attempts[0]?.startTime
            ? Number(t.attempts[0].startTime.seconds) * 1e9 + t.attempts[0].startTime.nanos
            : Infinity,
        };
      }),
    );
    const order = starts
      .filter((s) => s.start !== Infinity)
      .sort((a, b) => a.start - b.start)
      .map((s) => s.id);
    // The light user's task runs second at the latest: right after the heavy user's first.
    assert.ok(order.indexOf(lightId) <= 1, `light task ran at position ${order.indexOf(lightId)} of ${order.length}`);
    const heavyOrder = order.filter((id) => id !== lightId);
    assert.deepEqual(heavyOrder, heavyIds.slice(0, heavyOrder.length), "FIFO within one owner");
    await assert.rejects(light.getTask({ id: heavyIds[0]! }), /permission_denied/);
  });
});
