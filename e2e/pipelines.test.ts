import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import {
  EventService,
  parsePipelineFile,
  Role,
  TokenService,
  UserService,
  PipelineMemberState,
  PipelineService,
  TaskResult,
  TaskService,
  TaskStatus,
  type Pipeline,
  type PipelineMember,
} from "@mottainai/proto";
import {
  adminClient,
  cleanupAll,
  cli,
  registrationToken,
  tokenClient,
  startAgent,
  startServer,
  tempDir,
  waitFor,
  type ServerProc,
} from "./harness.js";
import { freePort } from "./tcp-proxy.js";

const FINISHED = [TaskStatus.DONE, TaskStatus.STOPPED];

/** A host task that runs script lines; `extra` adds YAML keys (flow style). */
const member = (script: string[], extra = "") => `{type: host, script: ${JSON.stringify(script)}${extra ? `, ${extra}` : ""}}`;

/** Appends "<event> <key> <ms>" to the witness file: what the scripts themselves saw. */
const mark = (dir: string, event: string, key: string) => `echo "${event} ${key} $(date +%s%3N)" >> ${join(dir, "witness")}`;

interface Mark {
  event: string;
  key: string;
  ms: number;
}

const marks = (dir: string): Mark[] =>
  existsSync(join(dir, "witness"))
    ? readFileSync(join(dir, "witness"), "utf8")
        .trim()
        .split("\n")
        .map((line) => {
          const [event = "", key = "", ms = "0"] = line.split(" ");
          return { event, key, ms: Number(ms) };
        })
    : [];

const at = (list: Mark[], event: string, key: string): number => {
  const found = list.find((m) => m.event === event && m.key === key);
  assert.ok(found, `no ${event} mark for ${key}`);
  return found.ms;
};

/** Members by key. */
const byKey = (p: Pipeline): Record<string, PipelineMember> => Object.fromEntries(p.members.map((m) => [m.key, m]));

describe("pipelines (server + agent processes, host executor)", function () {
  this.timeout(180_000);
  let server: ServerProc;
  let pipelines: ReturnType<typeof adminClient<typeof PipelineService>>;

  before(async () => {
    server = await startServer();
    await startAgent(server, { registrationToken: await registrationToken(server), name: "pipes", args: ["--capacity", "4"] });
    pipelines = adminClient(server, PipelineService);
  });
  after(cleanupAll);

  const create = async (yaml: string): Promise<string> => {
    const { pipeline } = await pipelines.createPipeline({ spec: parsePipelineFile(yaml) });
    assert.ok(pipeline);
    return pipeline.id;
  };
  const get = async (id: string): Promise<Pipeline> => {
    const { pipeline } = await pipelines.getPipeline({ id });
    assert.ok(pipeline);
    return pipeline;
  };
  /** The pipeline's events: type, snapshot status and member count. */
  const pipelineEvents = async (id: string) => {
    const { events } = await adminClient(server, EventService).listEvents({
      fromSequence: 0n,
      pageSize: 1000,
      types: ["pipeline.created", "pipeline.started", "pipeline.finished", "pipeline.stopped"],
    });
    return events
      .filter((e) => e.subjectId === id)
      .map((e) => [
        e.type,
        e.payload.case === "pipeline" ? e.payload.value.status : undefined,
        e.payload.case === "pipeline" ? e.payload.value.members.length : 0,
      ]);
  };
  const finished = (id: string) =>
    waitFor(
      async () => {
        const p = await get(id);
        return FINISHED.includes(p.status) ? p : undefined;
      },
      90_000,
      () => `pipeline ${id} did not finish`,
    );

  it("runs a chain in order, each member after the previous one ended", async () => {
    const dir = tempDir("chain");
    const step = (key: string) => member([mark(dir, "start", key), "sleep 0.2", mark(dir, "end", key)]);
    const id = await create(
      `pipeline_name: ordered\nchain: [c, a, b]\ntasks:\n  a: ${step("a")}\n  b: ${step("b")}\n  c: ${step("c")}\n`,
    );
    const p = await finished(id);
    assert.equal(p.status, TaskStatus.DONE);
    assert.equal(p.result, TaskResult.SUCCESS);
    const seen = marks(dir);
    assert.deepEqual(
      seen.map((m) => `${m.event} ${m.key}`),
      ["start c", "end c", "start a", "end a", "start b", "end b"],
    );
    assert.deepEqual(
      p.members.map((m) => [m.key, m.state, m.status, m.result]),
      [
        ["c", PipelineMemberState.CREATED, TaskStatus.DONE, TaskResult.SUCCESS],
        ["a", PipelineMemberState.CREATED, TaskStatus.DONE, TaskResult.SUCCESS],
        ["b", PipelineMemberState.CREATED, TaskStatus.DONE, TaskResult.SUCCESS],
      ],
    );
    assert.deepEqual(byKey(p)["b"]?.dependsOn, ["a"]);
    assert.deepEqual(await pipelineEvents(id), [
      ["pipeline.created", TaskStatus.WAITING, 3],
      ["pipeline.started", TaskStatus.RUNNING, 3],
      ["pipeline.finished", TaskStatus.DONE, 3],
    ]);
    const tasks = adminClient(server, TaskService);
    for (const m of p.members) {
      const { task } = await tasks.getTask({ id: m.taskId });
      assert.equal(task?.pipelineId, id);
      assert.equal(task?.spec?.queue, "");
    }
  });

  it("finishes a group only when every member has finished, the slow one included", async () => {
    const dir = tempDir("group");
    const id = await create(
      `group: [fast, slow]\ntasks:\n  fast: ${member(["true"])}\n  slow: ${member([`sleep 2`, mark(dir, "end", "slow")])}\n`,
    );
    const states: [TaskStatus, TaskStatus | undefined, TaskStatus | undefined][] = [];
    let p = await get(id);
    while (!FINISHED.includes(p.status)) {
      const m = byKey(p);
      states.push([p.status, m["fast"]?.status, m["slow"]?.status]);
      await new Promise((r) => setTimeout(r, 50));
      p = await get(id);
    }
    assert.equal(p.result, TaskResult.SUCCESS);
    assert.ok(
      states.some(([, fast, slow]) => fast === TaskStatus.DONE && slow === TaskStatus.RUNNING),
      "the fast member ended while the slow one ran",
    );
    for (const [status, , slow] of states) {
      if (slow !== TaskStatus.DONE) assert.notEqual(status, TaskStatus.DONE, "pipeline done while a member ran");
    }
    assert.ok(timestampMs(p.endTime!) >= at(marks(dir), "end", "slow"));
  });

  it("runs chord members in parallel once the whole group succeeded", async () => {
    const dir = tempDir("chord");
    const step = (key: string, sleep: string) => member([mark(dir, "start", key), `sleep ${sleep}`, mark(dir, "end", key)]);
    const id = await create(
      `group: [g1, g2]\nchord: [c1, c2]\ntasks:\n  g1: ${step("g1", "0.1")}\n  g2: ${step("g2", "0.6")}\n` +
        `  c1: ${step("c1", "1.5")}\n  c2: ${step("c2", "1.5")}\n`,
    );
    const p = await finished(id);
    assert.equal(p.result, TaskResult.SUCCESS);
    const seen = marks(dir);
    const groupEnd = Math.max(at(seen, "end", "g1"), at(seen, "end", "g2"));
    for (const c of ["c1", "c2"]) assert.ok(at(seen, "start", c) >= groupEnd, `${c} started before the group ended`);
    assert.ok(
      at(seen, "start", "c1") < at(seen, "end", "c2") && at(seen, "start", "c2") < at(seen, "end", "c1"),
      "chord ran in series",
    );
    assert.deepEqual(byKey(p)["c1"]?.dependsOn, ["g1", "g2"]);
  });

  it("never runs more than concurrency members at once", async () => {
    const dir = tempDir("concurrency");
    const keys = ["m1", "m2", "m3", "m4", "m5", "m6"];
    const tasks = keys.map((k) => `  ${k}: ${member([mark(dir, "start", k), "sleep 0.5", mark(dir, "end", k)])}\n`).join("");
    const id = await create(`concurrency: 2\ngroup: [${keys.join(", ")}]\ntasks:\n${tasks}`);
    let most = 0;
    let p = await get(id);
    while (!FINISHED.includes(p.status)) {
      const active = p.members.filter((m) => m.state === PipelineMemberState.CREATED && m.result === TaskResult.UNSPECIFIED);
      most = Math.max(most, active.length);
      assert.ok(active.length <= 2, `${active.length} members active at once: ${active.map((m) => m.key).join(", ")}`);
      await new Promise((r) => setTimeout(r, 30));
      p = await get(id);
    }
    assert.equal(p.result, TaskResult.SUCCESS);
    assert.equal(most, 2);
    // What the scripts saw: at no moment were three of them between their start and end marks.
    const seen = marks(dir);
    for (const k of keys) {
      const start = at(seen, "start", k);
      const overlapping = keys.filter((o) => at(seen, "start", o) <= start && at(seen, "end", o) >= start);
      assert.ok(overlapping.length <= 2, `${overlapping.join(", ")} ran together`);
    }
  });

  it("skips the dependents of a failed member, and independent branches go on", async () => {
    const id = await create(
      `group: [ok, bad, d, e, f]\ntasks:\n  ok: ${member(["true"])}\n  bad: ${member(["exit 3"])}\n` +
        `  d: ${member(["true"], "depends_on: [bad]")}\n  e: ${member(["true"], "depends_on: [ok]")}\n` +
        `  f: ${member(["true"], "depends_on: [d, e]")}\n`,
    );
    const p = await finished(id);
    assert.equal(p.status, TaskStatus.DONE);
    assert.equal(p.result, TaskResult.FAILED);
    const m = byKey(p);
    assert.deepEqual(
      ["ok", "bad", "d", "e", "f"].map((k) => [k, m[k]?.state, m[k]?.result, m[k]?.taskId === ""]),
      [
        ["ok", PipelineMemberState.CREATED, TaskResult.SUCCESS, false],
        ["bad", PipelineMemberState.CREATED, TaskResult.FAILED, false],
        ["d", PipelineMemberState.SKIPPED, TaskResult.SKIPPED, true],
        ["e", PipelineMemberState.CREATED, TaskResult.SUCCESS, false],
        ["f", PipelineMemberState.SKIPPED, TaskResult.SKIPPED, true],
      ],
    );
  });

  it("stop stops the running member and skips the rest", async () => {
    const id = await create(`chain: [long, after]\ntasks:\n  long: ${member(["sleep 60"])}\n  after: ${member(["true"])}\n`);
    await waitFor(
      async () => byKey(await get(id))["long"]?.status === TaskStatus.RUNNING,
      30_000,
      () => "long never ran",
    );
    const { pipeline } = await pipelines.stopPipeline({ id });
    assert.ok(pipeline && [TaskStatus.STOP, TaskStatus.STOPPED].includes(pipeline.status));
    const p = await finished(id);
    assert.equal(p.status, TaskStatus.STOPPED);
    assert.equal(p.result, TaskResult.ERROR);
    const m = byKey(p);
    assert.equal(m["after"]?.state, PipelineMemberState.SKIPPED);
    const { task } = await adminClient(server, TaskService).getTask({ id: m["long"]!.taskId });
    assert.equal(task?.status, TaskStatus.STOPPED);
    await assert.rejects(pipelines.stopPipeline({ id }), /already ended \(stopped\)/);
    assert.deepEqual(
      (await pipelineEvents(id)).map(([type]) => type),
      ["pipeline.created", "pipeline.started", "pipeline.stopped"],
    );
  });

  it("retry --failed reruns only the failed and skipped members, keeping the successes", async () => {
    const dir = tempDir("retry");
    const flag = join(dir, "fixed");
    const id = await create(
      `chain: [ok, flaky, last]\ntasks:\n  ok: ${member([`echo ok >> ${join(dir, "ok-runs")}`])}\n` +
        `  flaky: ${member([`test -e ${flag}`])}\n  last: ${member(["true"])}\n`,
    );
    const first = await finished(id);
    assert.equal(first.result, TaskResult.FAILED);
    assert.equal(byKey(first)["last"]?.result, TaskResult.SKIPPED);
    await assert.rejects(
      pipelines.retryPipeline({ id: await create(`chain: [x]\ntasks:\n  x: ${member(["sleep 5"])}\n`) }),
      /is running; wait for it to end/,
    );
    writeFileSync(flag, "");
    const { pipeline } = await pipelines.retryPipeline({ id, failedOnly: true });
    assert.equal(pipeline?.run, 2);
    const second = await finished(id);
    assert.equal(second.result, TaskResult.SUCCESS);
    const [a, b] = [byKey(first), byKey(second)];
    assert.equal(b["ok"]?.taskId, a["ok"]?.taskId);
    assert.notEqual(b["flaky"]?.taskId, a["flaky"]?.taskId);
    assert.equal(b["last"]?.result, TaskResult.SUCCESS);
    assert.equal(readFileSync(join(dir, "ok-runs"), "utf8"), "ok\n");
    await assert.rejects(pipelines.retryPipeline({ id, failedOnly: true }), /every member succeeded, nothing to retry/);
  });

  it("inherit_artefacts gives a member its parents' artefacts under artefacts/<key>/, byte for byte", async () => {
    const dir = tempDir("inherit");
    const id = await create(
      `group: [producer, other]\nchord: [consumer]\ntasks:\n` +
        `  producer: ${member([`head -c 300000 /dev/urandom > artefacts/data.bin`, `cp artefacts/data.bin ${join(dir, "sent.bin")}`])}\n` +
        `  other: ${member(["mkdir -p artefacts/sub", "printf two > artefacts/sub/two.txt"])}\n` +
        `  consumer: ${member([`cp artefacts/producer/data.bin ${join(dir, "got.bin")}`, `cp artefacts/other/sub/two.txt ${join(dir, "two.txt")}`], "inherit_artefacts: true")}\n`,
    );
    const p = await finished(id);
    assert.equal(p.result, TaskResult.SUCCESS, JSON.stringify(p.members.map((m) => [m.key, m.result])));
    assert.ok(readFileSync(join(dir, "got.bin")).equals(readFileSync(join(dir, "sent.bin"))));
    assert.equal(readFileSync(join(dir, "sent.bin")).length, 300000);
    assert.equal(readFileSync(join(dir, "two.txt"), "utf8"), "two");
  });

  it("refuses invalid specs naming the field", async () => {
    const spec = parsePipelineFile(`chain: [a, b]\ntasks:\n  a: ${member(["true"])}\n  b: ${member(["true"])}\n`);
    spec.tasks["a"]!.dependsOn = ["b"];
    await assert.rejects(
      pipelines.createPipeline({ spec }),
      /\[invalid_argument\] spec\.tasks\.a\.depends_on: dependency cycle: "a" → "b" → "a" \(each waits for the next\)/,
    );
  });

  it("drives a pipeline through the CLI: create, show, graph, wait, retry --failed, remove", async () => {
    const dir = tempDir("cli");
    const env = { MOTTAINAI_SERVER: server.url, MOTTAINAI_TOKEN: server.adminToken, XDG_CONFIG_HOME: tempDir("config") };
    const flag = join(dir, "fixed");
    const file = join(dir, "p.yaml");
    writeFileSync(
      file,
      [
        "pipeline_name: cli",
        "group: [a, b]",
        "chord: [c]",
        "tasks:",
        "  a: &host",
        "    type: host",
        "    script: [true]",
        "  b:",
        "    <<: *host",
        `    script: ["test -e ${flag}"]`,
        "  c:",
        "    <<: *host",
        "",
      ].join("\n"),
    );
    const created = await cli(["pipeline", "create", "-f", file], env);
    assert.equal(created.stderr, "");
    const id = created.stdout.toString().trim();
    assert.match(id, /^[0-9a-f]{16}$/);
    const failed = await cli(["pipeline", "wait", id], env);
    assert.deepEqual([failed.code, failed.stdout.toString()], [1, "done failed\n"]);
    const show = (await cli(["pipeline", "show", id], env)).stdout.toString();
    assert.match(show, /^status: done$/m);
    assert.match(show, /^result: failed$/m);
    assert.match(show, /^KEY +TASK +STATUS +RESULT +DURATION$/m);
    assert.match(show, /^a +[0-9a-f]{16} +done +success +\d+\.\ds$/m);
    assert.match(show, /^b +[0-9a-f]{16} +done +failed +\d+\.\ds$/m);
    assert.match(show, /^c +- +skipped +skipped +-$/m);
    const json = JSON.parse((await cli(["pipeline", "show", id, "--json"], env)).stdout.toString()) as {
      members: { key: string; result: string }[];
    };
    assert.deepEqual(
      json.members.map((m) => [m.key, m.result]),
      [
        ["a", "TASK_RESULT_SUCCESS"],
        ["b", "TASK_RESULT_FAILED"],
        ["c", "TASK_RESULT_SKIPPED"],
      ],
    );
    assert.equal(
      (await cli(["pipeline", "graph", id], env)).stdout.toString(),
      "a  [success]\nb  [failed]\n  c  [skipped]  ← a, b\n",
    );
    writeFileSync(flag, "");
    const retry = await cli(["pipeline", "retry", id, "--failed"], env);
    assert.deepEqual([retry.code, retry.stderr], [0, ""]);
    const ok = await cli(["pipeline", "wait", id], env);
    assert.deepEqual([ok.code, ok.stdout.toString()], [0, "done success\n"]);
    const list = (await cli(["pipeline", "list", "--status", "done"], env)).stdout.toString();
    assert.match(list, new RegExp(`^${id} +cli +done +success +3 +2 `, "m"));
    const bad = await cli(["pipeline", "create", "-f", file.replace("p.yaml", "bad.yaml")], env);
    assert.equal(bad.code, 1);
    writeFileSync(
      join(dir, "cycle.yaml"),
      "group: [a, b]\ntasks:\n  a: {type: host, script: [x], depends_on: [b]}\n  b: {type: host, script: [x], depends_on: [a]}\n",
    );
    const cycle = await cli(["pipeline", "create", "-f", join(dir, "cycle.yaml")], env);
    assert.deepEqual(
      [cycle.code, cycle.stderr],
      [
        1,
        `mottainai: ${join(dir, "cycle.yaml")}: field "tasks.a.depends_on": dependency cycle: "a" → "b" → "a" (each waits for the next)\n`,
      ],
    );
    const removed = await cli(["pipeline", "remove", id], env);
    assert.deepEqual([removed.code, removed.stderr], [0, ""]);
    const gone = await cli(["pipeline", "show", id], env);
    assert.deepEqual([gone.code, gone.stderr], [1, `mottainai: not_found: pipeline ${id} not found\n`]);
  });

  it("shows a user only their own pipelines; managers and admins see all", async () => {
    const { user } = await adminClient(server, UserService).createUser({ name: "piper", role: Role.USER });
    const { secret } = await adminClient(server, TokenService).createToken({ name: "piper", userId: user!.id });
    const mine = tokenClient(server.url, secret, PipelineService);
    const { pipeline } = await mine.createPipeline({ spec: parsePipelineFile(`chain: [a]\ntasks:\n  a: ${member(["true"])}\n`) });
    const own = pipeline!.id;
    assert.equal(pipeline?.ownerId, user!.id);
    const theirs = await create(`chain: [a]\ntasks:\n  a: ${member(["true"])}\n`);
    await assert.rejects(mine.getPipeline({ id: theirs }), /\[permission_denied\] pipeline .* belongs to another user/);
    await assert.rejects(mine.stopPipeline({ id: theirs }), /permission_denied/);
    await assert.rejects(mine.deletePipeline({ id: theirs }), /permission_denied/);
    assert.deepEqual(
      (await mine.listPipelines({})).pipelines.map((p) => p.id),
      [own],
    );
    await assert.rejects(mine.listPipelines({ ownerId: "someone" }), /\[permission_denied\] owner_id: only managers and admins/);
    const all = (await pipelines.listPipelines({ ownerId: user!.id })).pipelines.map((p) => p.id);
    assert.deepEqual(all, [own]);
    await finished(own);
    const { task } = await adminClient(server, TaskService).getTask({ id: (await get(own)).members[0]!.taskId });
    assert.equal(task?.ownerId, user!.id, "member tasks run with the owner's rights");
  });

  it("lists pipelines newest first, paged, filtered by status", async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await create(`chain: [a]\ntasks:\n  a: ${member(["true"])}\n`));
    for (const id of ids) await finished(id);
    const first = await pipelines.listPipelines({ pageSize: 2, statuses: [TaskStatus.DONE] });
    assert.deepEqual(
      first.pipelines.map((p) => p.id),
      [ids[2], ids[1]],
    );
    const second = await pipelines.listPipelines({ pageSize: 2, pageToken: first.nextPageToken, statuses: [TaskStatus.DONE] });
    assert.equal(second.pipelines[0]?.id, ids[0]);
    assert.ok(second.pipelines.every((p) => p.status === TaskStatus.DONE));
    assert.deepEqual((await pipelines.listPipelines({ statuses: [TaskStatus.STOP] })).pipelines, []);
    await assert.rejects(
      pipelines.listPipelines({ statuses: [TaskStatus.SETUP] }),
      /\[invalid_argument\] statuses: 2 is not a pipeline status/,
    );
  });

  it("deletes a finished pipeline with its tasks", async () => {
    const id = await create(`chain: [a]\ntasks:\n  a: ${member(["true"])}\n`);
    const p = await finished(id);
    await pipelines.deletePipeline({ id });
    await assert.rejects(pipelines.getPipeline({ id }), /\[not_found\] pipeline .* not found/);
    await assert.rejects(adminClient(server, TaskService).getTask({ id: p.members[0]!.taskId }), /not_found/);
  });
});

describe("pipelines across a server kill -9", function () {
  this.timeout(180_000);
  after(cleanupAll);

  it("finishes after a restart on the same data with each member run exactly once", async () => {
    const dir = tempDir("kill");
    const port = await freePort();
    const args = ["--heartbeat-interval", "200ms", "--lease-ttl", "2s"];
    const first = await startServer({ port, args });
    await startAgent(first, { registrationToken: await registrationToken(first), name: "survivor", args: ["--capacity", "3"] });
    const step = (k: string, extra = "") => member([`echo ${k} >> ${join(dir, "runs")}`, "sleep 0.7"], extra);
    // g1, g2 together; then s1, s2 together; s3 after s1 (and the group); s4 after s3.
    const spec = parsePipelineFile(
      `group: [g1, g2]\nchord: [s1, s2, s3, s4]\ntasks:\n  g1: ${step("g1")}\n  g2: ${step("g2")}\n  s1: ${step("s1")}\n` +
        `  s2: ${step("s2")}\n  s3: ${step("s3", "depends_on: [s1]")}\n  s4: ${step("s4", "depends_on: [s3]")}\n`,
    );
    const { pipeline } = await adminClient(first, PipelineService).createPipeline({ spec });
    const id = pipeline!.id;
    await waitFor(
      () => existsSync(join(dir, "runs")) && readFileSync(join(dir, "runs"), "utf8").includes("s1"),
      30_000,
      () => "the chord never started",
    );
    first.child.kill("SIGKILL");
    await first.exited;
    await new Promise((r) => setTimeout(r, 500));
    const second = await startServer({ port, dataDir: first.dataDir, args });
    const client = adminClient({ url: second.url, adminToken: first.adminToken }, PipelineService);
    const p = await waitFor(
      async () => {
        const { pipeline: now } = await client.getPipeline({ id });
        return now && FINISHED.includes(now.status) ? now : undefined;
      },
      90_000,
      () => "the pipeline did not finish after the restart",
    );
    assert.equal(p.result, TaskResult.SUCCESS, JSON.stringify(p.members.map((m) => [m.key, m.result])));
    const runs = readFileSync(join(dir, "runs"), "utf8").trim().split("\n").sort();
    assert.deepEqual(runs, ["g1", "g2", "s1", "s2", "s3", "s4"]);
    const { tasks } = await adminClient({ url: second.url, adminToken: first.adminToken }, TaskService).listTasks({
      pipelineId: id,
    });
    assert.deepEqual(tasks.map((t) => [t.spec?.name, t.attempt]).sort(), [
      ["g1", 1],
      ["g2", 1],
      ["s1", 1],
      ["s2", 1],
      ["s3", 1],
      ["s4", 1],
    ]);
  });
});
