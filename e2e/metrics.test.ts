import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { TaskService, TaskStatus } from "@mottainai/proto";
import {
  adminClient,
  cleanupAll,
  cli,
  registrationToken,
  startAgent,
  startServer,
  tempDir,
  waitFor,
  type ServerProc,
} from "./harness.js";

const TOKEN = "scrape-secret";

/** The value of one sample line (`name{labels} value`), undefined when the line is absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("GET /metrics (server + agent processes)", function () {
  this.timeout(120_000);
  let server: ServerProc;
  let env: Record<string, string>;

  before(async () => {
    server = await startServer({ args: ["--metrics-token", TOKEN] });
    await startAgent(server, { registrationToken: await registrationToken(server), name: "metrics-agent" });
    env = { MOTTAINAI_SERVER: server.url, MOTTAINAI_TOKEN: server.adminToken, XDG_CONFIG_HOME: tempDir("config") };
  });
  after(cleanupAll);

  const scrape = async (): Promise<string> => {
    const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    return res.text();
  };

  it("refuses a scrape without the token or with a wrong one with 401", async () => {
    const none = await fetch(`${server.url}/metrics`);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get("www-authenticate"), 'Bearer realm="metrics"');
    assert.equal(await none.text(), "a metrics token is required: send Authorization: Bearer <token>\n");
    const wrong = await fetch(`${server.url}/metrics`, { headers: { authorization: "Bearer nope" } });
    assert.equal(wrong.status, 401);
  });

  it("moves the task, dispatch, attempt, log, RPC and agent metrics exactly as tasks run", async () => {
    const before = await scrape();
    assert.equal(sample(before, 'mottainai_tasks_finished_total{result="success"}'), undefined);
    assert.equal(sample(before, "mottainai_dispatch_latency_seconds_count"), 0);
    assert.equal(sample(before, "mottainai_agents_connected"), 1);
    assert.equal(sample(before, "mottainai_log_bytes_appended_total"), 0);
    assert.match(before, /^# HELP mottainai_tasks_waiting Tasks waiting for an agent, per queue; cluster-wide, from the store$/m);
    assert.match(before, /^process_cpu_user_seconds_total /m);

    const dir = tempDir("metrics-files");
    const ids: string[] = [];
    for (const [name, script] of [
      ["ok", "printf 'hello\\n'"],
      ["ok2", "printf 'world!\\n'"],
      ["bad", "exit 3"],
    ]) {
      const path = join(dir, `${name}.yaml`);
      writeFileSync(path, `name: ${name}\ntype: host\nscript:\n  - ${script}\n`);
      const r = await cli(["task", "create", "-f", path], env);
      assert.equal(r.code, 0, r.stderr);
      ids.push(r.stdout.toString().trim());
    }
    const tasks = adminClient(server, TaskService);
    await waitFor(
      async () => {
        const all = await Promise.all(ids.map((id) => tasks.getTask({ id })));
        return all.every((t) => t.task?.status === TaskStatus.DONE);
      },
      60_000,
      () => "tasks did not finish",
    );

    const after = await scrape();
    assert.equal(sample(after, 'mottainai_tasks_finished_total{result="success"}'), 2);
    assert.equal(sample(after, 'mottainai_tasks_finished_total{result="failed"}'), 1);
    assert.equal(sample(after, "mottainai_dispatch_latency_seconds_count"), 3);
    assert.equal(sample(after, 'mottainai_attempt_duration_seconds_count{result="success"}'), 2);
    assert.equal(sample(after, 'mottainai_attempt_duration_seconds_count{result="failed"}'), 1);
    assert.equal(sample(after, "mottainai_log_bytes_appended_total"), "hello\n".length + "world!\n".length);
    assert.equal(sample(after, "mottainai_lease_expiries_total"), 0);
    assert.equal(sample(after, 'mottainai_tasks_waiting{queue="general"}'), undefined);
    assert.equal(
      sample(after, 'mottainai_rpc_requests_total{service="mottainai.v1.TaskService",method="CreateTask",code="ok"}'),
      3,
    );
    assert.equal(
      sample(after, 'mottainai_rpc_duration_seconds_count{service="mottainai.v1.TaskService",method="CreateTask"}'),
      3,
    );
  });

  it("counts refused RPCs by their code and shows waiting tasks per queue from the store", async () => {
    const res = await fetch(`${server.url}/mottainai.v1.TaskService/ListTasks`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(res.status, 401);
    const path = join(tempDir("metrics-queue"), "q.yaml");
    writeFileSync(path, "name: parked\ntype: host\nqueue: nobody-serves-this\nscript:\n  - true\n");
    assert.equal((await cli(["task", "create", "-f", path], env)).code, 0);
    const text = await scrape();
    assert.equal(
      sample(text, 'mottainai_rpc_requests_total{service="mottainai.v1.TaskService",method="ListTasks",code="Unauthenticated"}'),
      1,
    );
    assert.equal(sample(text, 'mottainai_tasks_waiting{queue="nobody-serves-this"}'), 1);
  });
});
