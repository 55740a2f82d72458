import { readFile } from "node:fs/promises";
import type { Readable } from "node:stream";
import { toJson } from "@bufbuild/protobuf";
import {
  CatchUp,
  type Plan,
  PlanRunKind,
  PlanRunSchema,
  PlanSchema,
  PlanService,
  type PlanSpec,
  parsePlanFile,
} from "@mottainai/proto";
import { Command, Option, UsageError } from "clipanion";
import { formatTimestamp, orNone, taskResultWord, taskStatusWord } from "../format.js";
import { requireField } from "../require-field.js";
import { MottainaiCommand, integerOption, jsonOption, requiredArgument } from "./mottainai-command.js";

const category = "Plans";

/** Largest page the server returns (ListPlansRequest.page_size). */
const maxPageSize = 1000;

/** Runs `plan show` lists without `--history`. */
const defaultHistory = 10;

/**
 * The task options of the original `plan create` (and `task create`), for a plan without a
 * file; each becomes the plan file key of the same name, so the file's checks apply unchanged.
 */
abstract class PlanFileCommand extends MottainaiCommand {
  file = Option.String("-f,--file", { description: "Plan file (YAML or JSON); - reads stdin" });
  planned = Option.String("--planned", { description: "Schedule: cron (6 or 5 fields), @daily…, or @every 1h30m" });
  name = Option.String("--name", { description: "Task name" });
  type = Option.String("--type", { description: "Task type (docker, host, libvirt, …)" });
  image = Option.String("--image", { description: "Task image" });
  script = Option.Array("--script", [], { description: "Script line (repeatable)" });
  env = Option.Array("--env", [], { description: "Environment entry K=V (repeatable)" });
  queue = Option.String("--queue", { description: "Queue of the task" });
  source = Option.String("--source", { description: "Git URL of the task's source" });
  directory = Option.String("--directory", { description: "Directory inside the source" });
  timezone = Option.String("--timezone", { description: "IANA time zone of the cron fields (default UTC)" });
  catchUp = Option.String("--catch-up", { description: "After downtime: skip (default) or once" });
  json = jsonOption();

  /** The plan spec from -f or from the options, checked before anything is sent. */
  protected async spec(): Promise<PlanSpec> {
    const flags: Record<string, unknown> = {
      planned: this.planned,
      name: this.name,
      type: this.type,
      image: this.image,
      script: this.script.length > 0 ? this.script : undefined,
      environment: this.env.length > 0 ? this.env : undefined,
      queue: this.queue,
      source: this.source,
      directory: this.directory,
      timezone: this.timezone,
      catch_up: this.catchUp,
    };
    const given = Object.entries(flags).filter(([, value]) => value !== undefined);
    if (this.file !== undefined) {
      if (given.length > 0) {
        throw new UsageError(
          `-f reads the whole plan from a file; --${given[0]![0].replace("_", "-")} cannot be combined with it`,
        );
      }
      const text = this.file === "-" ? await readText(this.context.stdin) : await readFile(this.file, "utf8");
      return parsePlanFile(text, this.file === "-" ? "<stdin>" : this.file);
    }
    if (this.planned === undefined) throw new UsageError("give a plan file with -f, or --planned and the task options");
    return parsePlanFile(JSON.stringify(Object.fromEntries(given)), "<options>");
  }

  protected print(plan: Plan): void {
    if (this.json) this.output.json(toJson(PlanSchema, plan));
    else this.output.line(plan.id);
  }
}

/** `mottainai plan create (-f FILE | --planned S task options) [--json]`: prints the new plan's id. */
export class PlanCreateCommand extends PlanFileCommand {
  static override paths = [["plan", "create"]];
  static override usage = Command.Usage({
    category,
    description: "Create a plan: a task or pipeline fired on a schedule",
    details:
      "A plan file is a task (or pipeline) file plus `planned`, and optionally `timezone` and `catch_up`. Without a file, `--planned` and the task options build one. Prints the new plan's id.",
    examples: [
      ["From a plan file", "$0 plan create -f nightly.yaml"],
      ["From options", "$0 plan create --planned '0 0 2 * * *' --type docker --image debian --script 'make world'"],
    ],
  });

  async run(): Promise<void> {
    const spec = await this.spec();
    const client = await this.client(PlanService);
    this.print(requireField((await client.createPlan({ spec })).plan, "plan"));
  }
}

/** `mottainai plan update ID (-f FILE | options) [--json]`: replaces the plan's spec. */
export class PlanUpdateCommand extends PlanFileCommand {
  static override paths = [["plan", "update"]];
  static override usage = Command.Usage({
    category,
    description: "Replace a plan's spec; its next run follows the new schedule",
  });

  id = requiredArgument();

  async run(): Promise<void> {
    const spec = await this.spec();
    const client = await this.client(PlanService);
    this.print(requireField((await client.updatePlan({ id: this.id, spec })).plan, "plan"));
  }
}

/** `mottainai plan list [--json]`: id, schedule, next and last run, paused. */
export class PlanListCommand extends MottainaiCommand {
  static override paths = [["plan", "list"]];
  static override usage = Command.Usage({ category, description: "List plans with their next and last run" });

  json = jsonOption();

  async run(): Promise<void> {
    const client = await this.client(PlanService);
    const plans: Plan[] = [];
    let pageToken = "";
    do {
      const page = await client.listPlans({ pageSize: maxPageSize, pageToken });
      plans.push(...page.plans);
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    this.output.list(this.json, PlanSchema, plans, ["ID", "PLANNED", "NEXT RUN", "LAST RUN", "PAUSED"], (plan) => [
      plan.id,
      orNone(plan.spec?.planned),
      formatTimestamp(plan.nextRunTime),
      formatTimestamp(plan.lastRunTime),
      plan.paused ? "yes" : "no",
    ]);
  }
}

/** `mottainai plan show ID [--history N] [--json]`: the plan, then its latest runs. */
export class PlanShowCommand extends MottainaiCommand {
  static override paths = [["plan", "show"]];
  static override usage = Command.Usage({
    category,
    description: "Show a plan and its latest runs (task or pipeline id and result)",
  });

  id = requiredArgument();
  history = integerOption("--history", `Runs to show (default ${defaultHistory})`, 1);
  json = jsonOption();

  async run(): Promise<void> {
    const client = await this.client(PlanService);
    const plan = requireField((await client.getPlan({ id: this.id, history: this.history ?? defaultHistory })).plan, "plan");
    if (this.json) {
      this.output.json(toJson(PlanSchema, plan));
      return;
    }
    const spec = plan.spec;
    this.output.fields([
      ["id", plan.id],
      ["planned", orNone(spec?.planned)],
      ["timezone", spec?.timezone || "UTC"],
      ["catch up", spec?.catchUp === CatchUp.ONCE ? "once" : "skip"],
      ["target", spec?.target.case ?? "-"],
      ["owner", orNone(plan.ownerId)],
      ["paused", plan.paused ? "yes" : "no"],
      ["next run", formatTimestamp(plan.nextRunTime)],
      ["last run", formatTimestamp(plan.lastRunTime)],
      ["created", formatTimestamp(plan.createTime)],
    ]);
    if (plan.runs.length > 0) {
      this.output.line("");
      this.output.table(
        ["SCHEDULED", "FIRED", "KIND", "ID", "STATUS", "RESULT", "MANUAL"],
        plan.runs.map((run) => [
          formatTimestamp(run.scheduledTime),
          formatTimestamp(run.fireTime),
          run.kind === PlanRunKind.PIPELINE ? "pipeline" : "task",
          run.targetId,
          run.status ? taskStatusWord(run.status) : "-",
          run.result ? taskResultWord(run.result) : "-",
          run.manual ? "yes" : "no",
        ]),
      );
    }
  }
}

/** Base of the plan commands that take one ID. */
abstract class PlanIdCommand extends MottainaiCommand {
  id = requiredArgument();
}

/** `mottainai plan pause ID`: the plan stops firing on its schedule; prints nothing. */
export class PlanPauseCommand extends PlanIdCommand {
  static override paths = [["plan", "pause"]];
  static override usage = Command.Usage({ category, description: "Stop a plan firing on its schedule" });

  async run(): Promise<void> {
    await (await this.client(PlanService)).pausePlan({ id: this.id });
  }
}

/** `mottainai plan resume ID`: fires again from the next occurrence; prints nothing. */
export class PlanResumeCommand extends PlanIdCommand {
  static override paths = [["plan", "resume"]];
  static override usage = Command.Usage({
    category,
    description: "Fire a paused plan again from its next occurrence (the paused gap is skipped)",
  });

  async run(): Promise<void> {
    await (await this.client(PlanService)).resumePlan({ id: this.id });
  }
}

/** `mottainai plan run ID [--json]`: fires now; prints the created task's (or pipeline's) id. */
export class PlanRunCommand extends PlanIdCommand {
  static override paths = [["plan", "run"]];
  static override usage = Command.Usage({
    category,
    description: "Fire a plan now, outside its schedule; prints the task (or pipeline) id",
  });

  json = jsonOption();

  async run(): Promise<void> {
    const run = requireField((await (await this.client(PlanService)).runPlan({ id: this.id })).run, "run");
    if (this.json) this.output.json(toJson(PlanRunSchema, run));
    else this.output.line(run.targetId);
  }
}

/** `mottainai plan remove ID` (also `plan delete`, the original's name): prints nothing. */
export class PlanRemoveCommand extends PlanIdCommand {
  static override paths = [
    ["plan", "remove"],
    ["plan", "delete"],
  ];
  static override usage = Command.Usage({ category, description: "Delete a plan; the tasks it fired stay" });

  async run(): Promise<void> {
    await (await this.client(PlanService)).deletePlan({ id: this.id });
  }
}

/** Every `plan` command, for registration with the Cli. */
export const planCommands = [
  PlanCreateCommand,
  PlanListCommand,
  PlanShowCommand,
  PlanUpdateCommand,
  PlanPauseCommand,
  PlanResumeCommand,
  PlanRunCommand,
  PlanRemoveCommand,
];

async function readText(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) {
    chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
  }
  return Buffer.concat(chunks).toString("utf8");
}
