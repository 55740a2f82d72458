import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupAll, cli, registrationToken, startAgent, startServer, tempDir, waitFor, type ServerProc } from "./harness.js";

type Json = Record<string, unknown>;

/**
 * End to end: where the real server sends tasks among real agents. Agents: alpha (zone=a,
 * queues general:2 and gpu:1) and beta (zone=b, general:2); gamma (capacity 1, queue fifo)
 * only for the FIFO test.
 */
describe("dispatch targeting (server + two agents + CLI processes)", function () {
  this.timeout(120_000);
  let server: ServerProc;
  let env: Record<string, string>;
  let dir: string;
  const nodeIds: Record<string, string> = {};

  before(async () => {
    server = await startServer();
    const token = await registrationToken(server);
    await startAgent(server, {
      registrationToken: token,
      name: "alpha",
      args: ["--label", "zone=a", "--queue", "general:2", "--queue", "gpu:1"],
    });
    await startAgent(server, { registrationToken: token, name: "beta", args: ["--label", "zone=b"] });
    dir = tempDir("files");
    env = { MOTTAINAI_SERVER: server.url, MOTTAINAI_TOKEN: server.adminToken, XDG_CONFIG_HOME: tempDir("config") };
    for (const name of ["alpha", "beta"]) nodeIds[name] = String((await nodeJson(name)).id);
  });
  after(cleanupAll);

  const ok = async (args: string[]): Promise<string> => {
    const r = await cli(args, env);
    assert.equal(r.stderr, "", `mottainai ${args.join(" ")}`);
    assert.equal(r.code, 0, `mottainai ${args.join(" ")}`);
    return r.stdout.toString();
  };

  const nodeJson = async (name: string): Promise<Json> => JSON.parse(await ok(["node", "show", name, "--json"])) as Json;

  let files = 0;
  /** Creates a host task from YAML lines (name first); extra are CLI flags such as --to. */
  const createTask = async (lines: string[], extra: string[] = []): Promise<string> => {
    const path = join(dir, `task-${++files}.yaml`);
    writeFileSync(path, `${lines.join("\n")}\n`);
    const out = await ok(["task", "create", "-f", path, ...extra]);
    assert.match(out, /^[0-9a-f]{16}\n$/);
    return out.trim();
  };
  const script = (...commands: string[]) => ["type: host", "script:", ...commands.map((c) => `  - ${JSON.stringify(c)}`)];

  const showJson = async (id: string): Promise<Json> => JSON.parse(await ok(["task", "show", id, "--json"])) as Json;

  const waitDone = (id: string): Promise<Json> =>
    waitFor(
      async () => {
        const task = await showJson(id);
        return task.status === "TASK_STATUS_DONE" ? task : undefined;
      },
      30_000,
      () => `task ${id} never finished`,
    ) as Promise<Json>;

  const waitRunning = (id: string): Promise<Json> =>
    waitFor(
      async () => {
        const task = await showJson(id);
        return task.status === "TASK_STATUS_RUNNING" ? task : undefined;
      },
      30_000,
      () => `task ${id} never ran`,
    ) as Promise<Json>;

  /** A script line that blocks until open() is called. */
  let gates = 0;
  const gate = () => {
    const path = join(dir, `gate-${++gates}`);
    return { wait: `while [ ! -e '${path}' ]; do sleep 0.05; done`, open: () => writeFileSync(path, "") };
  };

  /** Runs a task to its end and says on which node it ran (the only attempt's node). */
  const ranOn = async (id: string): Promise<string> => {
    const task = await waitDone(id);
    assert.equal(task.result, "TASK_RESULT_SUCCESS");
    assert.equal(task.attempt, 1);
    const attempts = task.attempts as Json[];
    assert.equal(attempts.length, 1);
    assert.equal(attempts[0]!.nodeId, task.nodeId);
    const name = Object.keys(nodeIds).find((n) => nodeIds[n] === task.nodeId);
    assert.ok(name, `task ${id} ran on an unknown node ${String(task.nodeId)}`);
    return name;
  };

  /** The task stays waiting with exactly this reason (in --json and in the human view); then it is stopped. */
  const expectWaiting = async (id: string, reason: string) => {
    const task = await showJson(id);
    assert.equal(task.status, "TASK_STATUS_WAITING");
    assert.equal(task.waitingReason, reason);
    assert.equal(task.attempts, undefined);
    const human = (await ok(["task", "show", id])).split("\n");
    assert.deepEqual(human.slice(-2), [`waiting: ${reason}`, ""]);
    assert.equal(await ok(["task", "stop", id]), "");
    assert.equal((await showJson(id)).status, "TASK_STATUS_STOPPED");
  };

  const ms = (timestamp: unknown) => Date.parse(String(timestamp));

  it("the agents announce their names, labels and queues", async () => {
    const alpha = (await ok(["node", "show", "alpha"])).split("\n");
    assert.ok(alpha.includes("queues: general:2,gpu:1"), alpha.join("\n"));
    assert.ok(alpha.includes("labels: zone=a"));
    assert.ok(alpha.includes("capacity: 2"));
    const beta = (await ok(["node", "show", "beta"])).split("\n");
    assert.ok(beta.includes("queues: general:2"), beta.join("\n"));
    assert.ok(beta.includes("labels: zone=b"));
    assert.deepEqual((await nodeJson("alpha")).labels, { zone: "a" });
    assert.deepEqual((await nodeJson("beta")).queues, [{ queue: "general", slots: 2 }]);
  });

  it("task create --to runs only on the node whose name matches", async () => {
    const toBeta: string[] = [];
    for (let i = 0; i < 3; i++)
      toBeta.push(await createTask([`name: to-beta-${i}`, ...script("echo on $MOTTAINAI_TASK_QUEUE")], ["--to", "^beta$"]));
    const toAlpha = await createTask(["name: to-alpha", ...script("true")], ["--to", "^alpha$"]);
    for (const id of toBeta) {
      assert.equal(await ranOn(id), "beta");
      assert.equal((await showJson(id)).nodeId, nodeIds.beta);
      assert.equal(await ok(["task", "log", id]), "on general\n");
    }
    assert.equal(await ranOn(toAlpha), "alpha");
  });

  it("a task targeted at a busy node waits for it even while another node is idle", async () => {
    const release = gate();
    const occupants = [
      await createTask(["name: occupy-1", ...script(release.wait)], ["--to", "^beta$"]),
      await createTask(["name: occupy-2", ...script(release.wait)], ["--to", "^beta$"]),
    ];
    try {
      for (const id of occupants) assert.equal((await waitRunning(id)).nodeId, nodeIds.beta);
      const patient = await createTask(["name: patient", ...script("true")], ["--to", "^beta$"]);
      const waiting = await showJson(patient);
      assert.equal(waiting.status, "TASK_STATUS_WAITING");
      assert.equal(waiting.waitingReason, "waiting for a free slot on a matching agent");
      // alpha is idle and could run it, but the task is beta's.
      assert.equal((await nodeJson("alpha")).runningTaskIds, undefined);
      release.open();
      assert.equal(await ranOn(patient), "beta");
      const done = await Promise.all(occupants.map(waitDone));
      assert.ok(ms((await showJson(patient)).startTime) >= Math.min(...done.map((t) => ms(t.endTime))));
    } finally {
      release.open();
    }
  });

  it("a task of queue gpu runs only on alpha, the one agent that serves it", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push(await createTask([`name: gpu-${i}`, "queue: gpu", ...script("echo $MOTTAINAI_TASK_QUEUE")]));
    for (const id of ids) {
      assert.equal(await ranOn(id), "alpha");
      assert.equal(await ok(["task", "log", id]), "gpu\n");
    }
  });

  it("a task that requires labels runs on the agent that has them", async () => {
    const zoneB: string[] = [];
    const zoneA: string[] = [];
    for (let i = 0; i < 3; i++) {
      zoneB.push(await createTask([`name: zone-b-${i}`, "labels:", "  zone: b", ...script("true")]));
      zoneA.push(await createTask([`name: zone-a-${i}`, "labels:", "  zone: a", ...script("true")]));
    }
    for (const id of zoneB) assert.equal(await ranOn(id), "beta");
    for (const id of zoneA) assert.equal(await ranOn(id), "alpha");
  });

  it("a task no agent can take stays waiting and says exactly why", async () => {
    await expectWaiting(
      await createTask(["name: zone-c", "labels:", "  zone: c", ...script("true")]),
      "no connected agent has the labels zone=c",
    );
    await expectWaiting(
      await createTask(["name: two-labels", "labels:", "  zone: b", "  disk: ssd", ...script("true")]),
      "no connected agent has the labels zone=b, disk=ssd",
    );
    await expectWaiting(
      await createTask(["name: nowhere", "queue: nothing", ...script("true")]),
      'no connected agent serves queue "nothing"',
    );
    // gpu is served by alpha only, which is in zone a.
    await expectWaiting(
      await createTask(["name: gpu-in-b", "queue: gpu", "labels:", "  zone: b", ...script("true")]),
      "no connected agent has the labels zone=b",
    );
    await expectWaiting(
      await createTask(["name: to-gamma", ...script("true")], ["--to-any", "^gamma$"]),
      'no connected agent\'s name matches "^gamma$"',
    );
    await expectWaiting(
      await createTask(["name: beta-in-a", "labels:", "  zone: a", ...script("true")], ["--to", "^beta$"]),
      'no connected agent\'s name matches "^beta$"',
    );
    await expectWaiting(
      await createTask(["name: docker", "type: docker", "image: busybox", "script:", "  - true"]),
      'no connected agent offers executor docker (tasks of type "docker" need it)',
    );
    // None of them was ever assigned.
    const list = JSON.parse(await ok(["task", "list", "--json", "--status", "stopped"])) as Json[];
    assert.equal(list.length, 7);
    for (const task of list) assert.equal(task.attempt, undefined);
  });

  it("an invalid --to regular expression is refused before anything is sent", async () => {
    const before = (JSON.parse(await ok(["task", "list", "--json"])) as Json[]).length;
    const path = join(dir, "bad-to.yaml");
    writeFileSync(path, "name: bad-to\ntype: host\nscript:\n  - true\n");
    const r = await cli(["task", "create", "-f", path, "--to", "("], env);
    assert.equal(r.code, 2);
    assert.equal(r.stdout.length, 0);
    assert.match(r.stderr, /^mottainai: invalid --to "\(": Invalid regular expression: .*\n/);
    assert.equal((JSON.parse(await ok(["task", "list", "--json"])) as Json[]).length, before);
  });

  it("a queue with one slot runs its tasks one at a time", async () => {
    const first = await createTask(["name: gpu-sleep-1", "queue: gpu", ...script("sleep 1")]);
    const second = await createTask(["name: gpu-sleep-2", "queue: gpu", ...script("sleep 1")]);
    assert.equal(await ranOn(first), "alpha");
    assert.equal(await ranOn(second), "alpha");
    const [a, b] = [await showJson(first), await showJson(second)];
    // Creation order is dispatch order, and the second starts only once the first has ended.
    assert.ok(ms(a.startTime) <= ms(a.endTime));
    assert.ok(ms(b.startTime) >= ms(a.endTime), `second started ${String(b.startTime)}, first ended ${String(a.endTime)}`);
    const attemptA = (a.attempts as Json[])[0]!;
    const attemptB = (b.attempts as Json[])[0]!;
    assert.ok(ms(attemptB.startTime) >= ms(attemptA.endTime));
  });

  it("tasks of one queue on an agent with capacity 1 run in creation order (FIFO)", async () => {
    const gamma = await startAgent(server, {
      registrationToken: await registrationToken(server),
      name: "gamma",
      args: ["--capacity", "1", "--queue", "fifo"],
    });
    nodeIds.gamma = String((await nodeJson("gamma")).id);
    try {
      assert.ok((await ok(["node", "show", "gamma"])).split("\n").includes("queues: fifo:1"));
      const release = gate();
      const blocker = await createTask(["name: blocker", "queue: fifo", ...script(release.wait)]);
      await waitRunning(blocker);
      const ids: string[] = [];
      for (const name of ["a", "b", "c"]) ids.push(await createTask([`name: ${name}`, "queue: fifo", ...script(`echo ${name}`)]));
      for (const id of ids) {
        const task = await showJson(id);
        assert.equal(task.status, "TASK_STATUS_WAITING");
        assert.equal(task.waitingReason, "waiting for a free slot on a matching agent");
      }
      release.open();
      assert.equal(await ranOn(blocker), "gamma");
      const runs: Json[] = [];
      for (const id of ids) {
        assert.equal(await ranOn(id), "gamma");
        runs.push(await showJson(id));
      }
      const blocked = await showJson(blocker);
      const order = [blocked, ...runs];
      for (let i = 1; i < order.length; i++) {
        assert.ok(
          ms(order[i]!.startTime) >= ms(order[i - 1]!.endTime),
          `${String((order[i]!.spec as Json).name)} started before ${String((order[i - 1]!.spec as Json).name)} ended`,
        );
      }
      assert.deepEqual(
        [...runs].sort((x, y) => ms(x.startTime) - ms(y.startTime)).map((t) => (t.spec as Json).name),
        ["a", "b", "c"],
      );
    } finally {
      await gamma.stop();
    }
  });
});
