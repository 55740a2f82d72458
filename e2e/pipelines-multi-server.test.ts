import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  EventService,
  NodeService,
  NodeState,
  parsePipelineFile,
  PipelineService,
  TaskResult,
  TaskService,
  TaskStatus,
} from "@mottainai/proto";
import { requireJongodb, type JongodbServer } from "@mottainai/server";
import {
  adminClient,
  cleanupAll,
  registrationToken,
  spawnAgent,
  startServer,
  tempDir,
  waitFor,
  type ServerProc,
} from "./harness.js";

/** Three server processes on one MongoDB database (jongodb) advancing one pipeline (issue 13). */
const ci = Boolean(process.env.CI);
const TIMERS = ["--heartbeat-interval", "200ms", "--lease-ttl", "5s", "--restart-grace", "5s", "--event-poll-interval", "100ms"];

describe("pipelines on several servers sharing one MongoDB database (real processes, jongodb)", function () {
  this.timeout(180_000);
  let mongo: JongodbServer | undefined;

  before(async function () {
    mongo = await requireJongodb(ci, process.env);
    if (!mongo) this.skip();
  });
  after(async () => {
    await cleanupAll();
    await mongo?.stop();
  });

  it("starts each member once and keeps concurrency, whichever server sees a member end", async () => {
    const url = `${mongo!.url}mottainai_pipelines_${process.pid}`;
    const tokenFile = join(tempDir("shared"), "admin-token");
    const started = await Promise.all(
      [0, 1, 2].map(() => {
        const dataDir = tempDir("server");
        writeFileSync(join(dataDir, "admin-token"), "");
        return startServer({ dataDir, args: ["--store", url, "--blobs", "gridfs", "--admin-token-file", tokenFile, ...TIMERS] });
      }),
    );
    const adminToken = readFileSync(tokenFile, "utf8").trim();
    const servers: ServerProc[] = started.map((s) => ({ ...s, adminToken }));
    for (let i = 0; i < 3; i++) {
      const order = [...servers.slice(i), ...servers.slice(0, i)];
      const name = `pipe-agent-${i}`;
      spawnAgent(
        { url: order.map((s) => s.url).join(",") },
        { registrationToken: await registrationToken(servers[0]!), name, args: ["--capacity", "2"] },
      );
      await waitFor(
        async () =>
          (await adminClient(servers[0]!, NodeService).listNodes({})).nodes.some(
            (n) => n.name === name && n.state === NodeState.ONLINE,
          ),
        30_000,
        () => `agent ${name} did not connect`,
      );
    }
    const dir = tempDir("multi");
    const witness = join(dir, "witness");
    const step = (key: string, extra = "") =>
      `{type: host, script: ["echo start ${key} $(date +%s%3N) >> ${witness}", "sleep 0.4", "echo end ${key} $(date +%s%3N) >> ${witness}"]${extra}}`;
    const group = ["g1", "g2", "g3", "g4", "g5", "g6"];
    const chord = ["c1", "c2", "c3"];
    const yaml =
      `concurrency: 3\ngroup: [${group.join(", ")}]\nchord: [${chord.join(", ")}, last]\ntasks:\n` +
      [...group, ...chord].map((k) => `  ${k}: ${step(k)}\n`).join("") +
      `  last: ${step("last", ", depends_on: [c1, c2, c3]")}\n`;
    const { pipeline } = await adminClient(servers[1]!, PipelineService).createPipeline({ spec: parsePipelineFile(yaml) });
    const id = pipeline!.id;
    const done = await waitFor(
      async () => {
        const { pipeline: p } = await adminClient(servers[2]!, PipelineService).getPipeline({ id });
        return p && (p.status === TaskStatus.DONE || p.status === TaskStatus.STOPPED) ? p : undefined;
      },
      120_000,
      () => "the pipeline did not finish",
    );
    assert.equal(done.result, TaskResult.SUCCESS, JSON.stringify(done.members.map((m) => [m.key, m.result])));
    const keys = [...group, ...chord, "last"];
    const lines = existsSync(witness) ? readFileSync(witness, "utf8").trim().split("\n") : [];
    const marks = lines.map((l) => l.split(" ")).map(([event, key, ms]) => ({ event, key, ms: Number(ms) }));
    assert.deepEqual(
      marks
        .filter((m) => m.event === "start")
        .map((m) => m.key)
        .sort(),
      [...keys].sort(),
      "each member ran once",
    );
    const at = (event: string, key: string) => marks.find((m) => m.event === event && m.key === key)!.ms;
    for (const k of keys) {
      const together = keys.filter((o) => at("start", o) <= at("start", k) && at("end", o) >= at("start", k));
      assert.ok(together.length <= 3, `${together.join(", ")} ran together`);
    }
    const { tasks } = await adminClient(servers[0]!, TaskService).listTasks({ pipelineId: id });
    assert.equal(tasks.length, keys.length, "one task per member");
    assert.ok(tasks.every((t) => t.attempt === 1));
    const { events } = await adminClient(servers[0]!, EventService).listEvents({
      fromSequence: 0n,
      pageSize: 1000,
      types: ["task.created"],
    });
    const created = events.filter((e) => e.type === "task.created" && e.attributes["pipeline_id"] === id);
    assert.equal(created.length, keys.length, "task.created once per member");
  });
});
