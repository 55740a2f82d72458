import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  EventService,
  PlanService,
  PlanSpecSchema,
  Role,
  TaskService,
  TaskSpecSchema,
  TaskStatus,
  TaskResult,
  TokenService,
  UserService,
} from "@mottainai/proto";
import { adminClient, cleanupAll, cli, startCluster, tokenClient, waitFor, type Cluster } from "./harness.js";

type Json = Record<string, unknown>;

/** `mottainai plan …` against a real server (SQLite) and agent (host executor). */
describe("plan commands (server + agent + CLI processes)", function () {
  this.timeout(120_000);
  let cluster: Cluster;

  before(async () => {
    cluster = await startCluster("plan-agent");
  });
  after(cleanupAll);

  const run = (args: string[]) => cli(args, cluster.env);
  const ok = async (args: string[]): Promise<string> => {
    const r = await run(args);
    assert.equal(r.stderr, "", `mottainai ${args.join(" ")}`);
    assert.equal(r.code, 0, `mottainai ${args.join(" ")}`);
    return r.stdout.toString();
  };

  it("creates, lists, shows, runs, pauses, resumes, updates and removes a plan", async () => {
    const path = cluster.file(
      "nightly.yaml",
      'name: nightly\ntype: host\nscript: ["echo built"]\nplanned: "0 0 2 * * *"\ntimezone: Europe/Rome\ncatch_up: once\n',
    );
    const id = (await ok(["plan", "create", "-f", path])).trim();
    assert.match(id, /^[0-9a-f]{16}$/);

    const listed = JSON.parse(await ok(["plan", "list", "--json"])) as Json[];
    assert.equal(listed.length, 1);
    assert.equal(listed[0]!.id, id);
    assert.deepEqual((listed[0]!.spec as Json).planned, "0 0 2 * * *");
    assert.equal((listed[0]!.spec as Json).timezone, "Europe/Rome");
    assert.equal((listed[0]!.spec as Json).catchUp, "CATCH_UP_ONCE");
    const next = new Date(listed[0]!.nextRunTime as string);
    assert.equal(next.getUTCMinutes(), 0);
    assert.ok([0, 1].includes(next.getUTCHours()), "02:00 in Rome is 00:00 or 01:00 UTC");

    const table = (await ok(["plan", "list"])).split("\n");
    assert.match(table[0]!, /^ID\s+PLANNED\s+NEXT RUN\s+LAST RUN\s+PAUSED$/);
    assert.match(table[1]!, new RegExp(`^${id}\\s+0 0 2 \\* \\* \\*\\s+\\S+Z\\s+-\\s+no$`));

    const taskId = (await ok(["plan", "run", id])).trim();
    const tasks = adminClient(cluster.server, TaskService);
    const task = await waitFor(
      async () => {
        const { task } = await tasks.getTask({ id: taskId });
        return task?.status === TaskStatus.DONE ? task : undefined;
      },
      30_000,
      () => `task ${taskId} never finished`,
    );
    assert.equal(task.result, TaskResult.SUCCESS);
    assert.ok(task.spec?.environment.includes(`MOTTAINAI_PLAN_ID=${id}`));

    const shown = await ok(["plan", "show", id]);
    assert.match(shown, new RegExp(`^id: ${id}$`, "m"));
    assert.match(shown, /^planned: 0 0 2 \* \* \*$/m);
    assert.match(shown, /^timezone: Europe\/Rome$/m);
    assert.match(shown, /^catch up: once$/m);
    assert.match(shown, /^paused: no$/m);
    assert.match(shown, /^SCHEDULED\s+FIRED\s+KIND\s+ID\s+STATUS\s+RESULT\s+MANUAL$/m);
    assert.match(shown, new RegExp(`^\\S+Z\\s+\\S+Z\\s+task\\s+${taskId}\\s+done\\s+success\\s+yes$`, "m"));

    await ok(["plan", "pause", id]);
    const paused = JSON.parse(await ok(["plan", "show", id, "--json"])) as Json;
    assert.equal(paused.paused, true);
    assert.equal(paused.nextRunTime, undefined);
    assert.equal(paused.lastRunId, taskId);
    assert.equal((paused.runs as Json[]).length, 1);
    await ok(["plan", "resume", id]);
    const resumed = JSON.parse(await ok(["plan", "show", id, "--json"])) as Json;
    assert.equal(resumed.paused, undefined);
    assert.ok(resumed.nextRunTime);

    const updated = JSON.parse(
      await ok(["plan", "update", id, "--planned", "@every 1h30m", "--type", "host", "--script", "true", "--json"]),
    ) as Json;
    assert.equal((updated.spec as Json).planned, "@every 1h30m");

    await ok(["plan", "remove", id]);
    assert.deepEqual(JSON.parse(await ok(["plan", "list", "--json"])), []);
    const { events } = await adminClient(cluster.server, EventService).listEvents({
      pageSize: 1000,
      types: ["plan.created", "plan.updated", "plan.fired", "plan.paused", "plan.resumed", "plan.deleted"],
    });
    assert.deepEqual(
      events.filter((e) => e.subjectId === id).map((e) => e.type),
      ["plan.created", "plan.fired", "plan.paused", "plan.resumed", "plan.updated", "plan.deleted"],
    );
    const fired = events.find((e) => e.type === "plan.fired")!;
    assert.equal(fired.attributes.target_id, taskId);
    assert.equal(fired.attributes.manual, "true");
    assert.equal(fired.attributes.kind, "task");
    const gone = await run(["plan", "show", id]);
    assert.deepEqual(
      { code: gone.code, stderr: gone.stderr },
      { code: 1, stderr: `mottainai: not_found: plan ${id} not found\n` },
    );
  });

  it("refuses a bad schedule naming planned, with the expression and why, and creates nothing", async () => {
    const bad = await run([
      "plan",
      "create",
      "-f",
      cluster.file("bad.yaml", 'type: host\nscript: [true]\nplanned: "0 75 * * * *"\n'),
    ]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /field "planned": invalid minute field "75" \(values 0-59\) in "0 75 \* \* \* \*"\n$/);
    const flags = await run(["plan", "create", "--planned", "@often", "--type", "host", "--script", "true"]);
    assert.equal(flags.code, 1);
    assert.equal(
      flags.stderr,
      'mottainai: <options>: field "planned": unknown schedule "@often": expected one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or "@every <duration>"\n',
    );
    const neither = await run(["plan", "create"]);
    assert.deepEqual(
      { code: neither.code, stderr: neither.stderr },
      { code: 2, stderr: "mottainai: give a plan file with -f, or --planned and the task options\n" },
    );
    assert.deepEqual(JSON.parse(await ok(["plan", "list", "--json"])), []);
  });

  it("answers over the API: InvalidArgument naming spec.planned, and owners only (PermissionDenied, NotFound)", async () => {
    const plans = adminClient(cluster.server, PlanService);
    const spec = (planned: string, timezone = "") =>
      create(PlanSpecSchema, {
        planned,
        timezone,
        target: { case: "task", value: create(TaskSpecSchema, { type: "host", script: ["true"] }) },
      });
    const refused = async (call: Promise<unknown>, code: Code, message: string) => {
      await assert.rejects(call, (err: unknown) => {
        assert.ok(err instanceof ConnectError);
        assert.equal(err.code, code);
        assert.equal(err.rawMessage, message);
        return true;
      });
    };
    await refused(
      plans.createPlan({ spec: spec("0 75 * * * *") }),
      Code.InvalidArgument,
      'spec.planned: invalid minute field "75" (values 0-59) in "0 75 * * * *"',
    );
    await refused(
      plans.createPlan({ spec: spec("@daily", "Mars/Olympus") }),
      Code.InvalidArgument,
      'spec.timezone: unknown time zone "Mars/Olympus": expected an IANA name such as UTC or Europe/Rome',
    );
    await assert.rejects(plans.createPlan({ spec: spec("0 0 0 30 2 *") }), (err: unknown) => {
      assert.ok(err instanceof ConnectError);
      assert.equal(err.code, Code.InvalidArgument);
      assert.match(err.rawMessage, /^spec\.planned: "0 0 0 30 2 \*" never matches after \d{4}-\d\d-\d\dT[\d:.]+Z$/);
      return true;
    });
    await refused(
      plans.createPlan({ spec: create(PlanSpecSchema, { planned: "@daily" }) }),
      Code.InvalidArgument,
      "spec.task: a plan fires a task or a pipeline; neither is set",
    );

    const { plan } = await plans.createPlan({ spec: spec("@daily") });
    const { user } = await adminClient(cluster.server, UserService).createUser({ name: "planner", role: Role.USER });
    const { secret } = await adminClient(cluster.server, TokenService).createToken({ name: "planner", userId: user!.id });
    const theirs = tokenClient(cluster.server.url, secret, PlanService);
    const denied = `plan ${plan!.id} belongs to another user`;
    await refused(theirs.getPlan({ id: plan!.id }), Code.PermissionDenied, denied);
    await refused(theirs.pausePlan({ id: plan!.id }), Code.PermissionDenied, denied);
    await refused(theirs.runPlan({ id: plan!.id }), Code.PermissionDenied, denied);
    await refused(theirs.deletePlan({ id: plan!.id }), Code.PermissionDenied, denied);
    assert.deepEqual((await theirs.listPlans({})).plans, []);
    const own = await theirs.createPlan({ spec: spec("@hourly") });
    assert.equal(own.plan?.ownerId, user!.id);
    const { run } = await theirs.runPlan({ id: own.plan!.id });
    const { task } = await adminClient(cluster.server, TaskService).getTask({ id: run!.targetId });
    assert.equal(task?.ownerId, user!.id, "a plan's task has its owner's rights");
    assert.deepEqual(
      (await plans.listPlans({})).plans.map((p) => p.id).sort(),
      [plan!.id, own.plan!.id].sort(),
      "admins see every plan",
    );
    await refused(plans.getPlan({ id: "nope" }), Code.NotFound, "plan nope not found");
  });
});
