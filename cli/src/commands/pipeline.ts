import { readFile } from "node:fs/promises";
import { toJson } from "@bufbuild/protobuf";
import { type Timestamp, timestampMs } from "@bufbuild/protobuf/wkt";
import {
  type Pipeline,
  type PipelineMember,
  PipelineSchema,
  PipelineService,
  TaskResult,
  TaskStatus,
  parsePipelineFile,
} from "@mottainai/proto";
import { Code, ConnectError } from "@connectrpc/connect";
import { Command, Option, UsageError } from "clipanion";
import { TASK_STATUS_WORDS, formatTimestamp, orNone, parseTaskStatus, taskResultWord, taskStatusWord } from "../format.js";
import { requireField } from "../require-field.js";
import { MottainaiCommand, integerOption, jsonOption, requiredArgument } from "./mottainai-command.js";

const category = "Pipelines";

/** Largest page the server returns (ListPipelinesRequest.page_size). */
const maxPageSize = 1000;

/** Pipelines `pipeline list` shows without `--limit`. */
const defaultListLimit = 50;

/** How often `pipeline wait` looks at the pipeline. */
const waitPollMs = 300;

const FINISHED = [TaskStatus.DONE, TaskStatus.STOPPED];

/** A member's duration: end − start (or now − start while it runs), as `12.3s`; "-" before it started. */
export function memberDuration(start: Timestamp | undefined, end: Timestamp | undefined, now = Date.now()): string {
  if (!start) return "-";
  const ms = (end ? timestampMs(end) : now) - timestampMs(start);
  return `${(Math.max(0, ms) / 1000).toFixed(1)}s`;
}

/** The member's status word: its task's, "pending" before its task exists, "skipped" when skipped. */
export function memberStatusWord(m: PipelineMember): string {
  if (m.result === TaskResult.SKIPPED) return "skipped";
  if (m.taskId === "") return "pending";
  return taskStatusWord(m.status);
}

/** `mottainai pipeline create -f FILE [--json]`: starts a pipeline; prints its id. */
export class PipelineCreateCommand extends MottainaiCommand {
  static override paths = [["pipeline", "create"]];
  static override usage = Command.Usage({
    category,
    description: "Create a pipeline from a pipeline file (YAML or JSON)",
    details:
      "The original format: `pipeline_name`, `chain` or `group` with an optional `chord`, `tasks`, `queue`, `concurrency`; tasks may add `depends_on` and `inherit_artefacts`. The file is checked before anything is sent. Prints the new pipeline's id.",
    examples: [["Create a pipeline", "$0 pipeline create -f pipeline.yaml"]],
  });

  file = Option.String("-f,--file", { required: true, description: "Pipeline file; - reads stdin" });
  json = jsonOption();

  async run(): Promise<void> {
    const text = this.file === "-" ? await readStdin(this.context.stdin) : await readFile(this.file, "utf8");
    const spec = parsePipelineFile(text, this.file === "-" ? "<stdin>" : this.file);
    const client = await this.client(PipelineService);
    const pipeline = requireField((await client.createPipeline({ spec })).pipeline, "pipeline");
    if (this.json) this.output.json(toJson(PipelineSchema, pipeline));
    else this.output.line(pipeline.id);
  }
}

/** `mottainai pipeline list [--status S]... [--owner ID] [--limit N] [--json]`: newest first. */
export class PipelineListCommand extends MottainaiCommand {
  static override paths = [["pipeline", "list"]];
  static override usage = Command.Usage({
    category,
    description: "List pipelines, newest first",
    details: `\`--status\` may be repeated or comma-separated: waiting, running, stop, done, stopped.`,
  });

  statuses = Option.Array("--status", [], { description: "Only pipelines in this state (repeatable)" });
  owner = Option.String("--owner", { description: "Only pipelines of this user id (managers and admins)" });
  limit = integerOption("--limit", `Most pipelines to list (default ${defaultListLimit})`, 1);
  json = jsonOption();

  async run(): Promise<void> {
    const statuses = this.statuses
      .flatMap((value) => value.split(","))
      .map((word) => {
        const status = parseTaskStatus(word.trim());
        if (status === undefined)
          throw new UsageError(`invalid --status "${word}": expected one of ${TASK_STATUS_WORDS.join(", ")}`);
        return status;
      });
    const limit = this.limit ?? defaultListLimit;
    const client = await this.client(PipelineService);
    const pipelines: Pipeline[] = [];
    let pageToken = "";
    do {
      const page = await client.listPipelines({
        pageSize: Math.min(limit - pipelines.length, maxPageSize),
        pageToken,
        statuses,
        ownerId: this.owner ?? "",
      });
      pipelines.push(...page.pipelines.slice(0, limit - pipelines.length));
      pageToken = page.nextPageToken;
    } while (pageToken !== "" && pipelines.length < limit);
    this.output.list(
      this.json,
      PipelineSchema,
      pipelines,
      ["ID", "NAME", "STATUS", "RESULT", "MEMBERS", "RUN", "CREATED"],
      (p) => [
        p.id,
        orNone(p.spec?.pipelineName),
        taskStatusWord(p.status),
        taskResultWord(p.result),
        String(p.members.length),
        String(p.run),
        formatTimestamp(p.createTime),
      ],
    );
  }
}

/** `mottainai pipeline show ID [--json]`: `key: value` lines and the member table. */
export class PipelineShowCommand extends MottainaiCommand {
  static override paths = [["pipeline", "show"]];
  static override usage = Command.Usage({
    category,
    description: "Show a pipeline and its members (key, task id, status, result, duration)",
  });

  id = requiredArgument();
  json = jsonOption();

  async run(): Promise<void> {
    const p = requireField((await (await this.client(PipelineService)).getPipeline({ id: this.id })).pipeline, "pipeline");
    if (this.json) {
      this.output.json(toJson(PipelineSchema, p));
      return;
    }
    this.output.fields([
      ["id", p.id],
      ["name", orNone(p.spec?.pipelineName)],
      ["status", taskStatusWord(p.status)],
      ["result", taskResultWord(p.result)],
      ["owner", orNone(p.ownerId)],
      ["concurrency", p.spec?.concurrency ? String(p.spec.concurrency) : "unlimited"],
      ["run", String(p.run)],
      ["created", formatTimestamp(p.createTime)],
      ["started", formatTimestamp(p.startTime)],
      ["ended", formatTimestamp(p.endTime)],
    ]);
    this.output.line("");
    this.output.table(
      ["KEY", "TASK", "STATUS", "RESULT", "DURATION"],
      p.members.map((m) => [
        m.key,
        orNone(m.taskId),
        memberStatusWord(m),
        taskResultWord(m.result),
        memberDuration(m.startTime, m.endTime),
      ]),
    );
  }
}

/** The text DAG of `pipeline graph`: members by level (longest path from a root), each with what it waits for. */
export function pipelineGraphLines(p: Pipeline): string[] {
  const parents = (key: string) => p.graph[key]?.keys ?? [];
  const level = new Map<string, number>();
  const levelOf = (key: string, seen: Set<string> = new Set()): number => {
    const known = level.get(key);
    if (known !== undefined) return known;
    if (seen.has(key)) return 0;
    seen.add(key);
    const value = Math.max(0, ...parents(key).map((k) => levelOf(k, seen) + 1));
    level.set(key, value);
    return value;
  };
  const members = [...p.members].sort((a, b) => levelOf(a.key) - levelOf(b.key));
  const width = Math.max(...members.map((m) => m.key.length), 1);
  return members.map((m) => {
    const indent = "  ".repeat(levelOf(m.key));
    const waits = parents(m.key);
    const state = m.result === TaskResult.UNSPECIFIED ? memberStatusWord(m) : taskResultWord(m.result);
    return `${indent}${m.key.padEnd(width)}  [${state}]${waits.length ? `  ← ${waits.join(", ")}` : ""}`;
  });
}

/** `mottainai pipeline graph ID`: the dependency graph as text. */
export class PipelineGraphCommand extends MottainaiCommand {
  static override paths = [["pipeline", "graph"]];
  static override usage = Command.Usage({
    category,
    description: "Print a pipeline's dependency graph: one member per line, indented by depth, with what it waits for",
  });

  id = requiredArgument();

  async run(): Promise<void> {
    const p = requireField((await (await this.client(PipelineService)).getPipeline({ id: this.id })).pipeline, "pipeline");
    for (const line of pipelineGraphLines(p)) this.output.line(line);
  }
}

/** `mottainai pipeline wait ID`: blocks until the pipeline ends; exits 0 only if it succeeded. */
export class PipelineWaitCommand extends MottainaiCommand {
  static override paths = [["pipeline", "wait"]];
  static override usage = Command.Usage({
    category,
    description: "Wait for a pipeline to end; exit 0 only if it succeeded (1 otherwise)",
    details: "Prints `<status> <result>` when it ends, e.g. `done success`.",
  });

  id = requiredArgument();

  async run(): Promise<number> {
    const client = await this.client(PipelineService);
    for (;;) {
      const p = requireField((await client.getPipeline({ id: this.id })).pipeline, "pipeline");
      if (FINISHED.includes(p.status)) {
        this.output.line(`${taskStatusWord(p.status)} ${taskResultWord(p.result)}`);
        return p.status === TaskStatus.DONE && p.result === TaskResult.SUCCESS ? 0 : 1;
      }
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, waitPollMs);
        this.context.signal?.addEventListener(
          "abort",
          () => (clearTimeout(timer), reject(new ConnectError("interrupted", Code.Canceled))),
          { once: true },
        );
      });
    }
  }
}

/** Base of the pipeline commands that take one ID. */
abstract class PipelineIdCommand extends MottainaiCommand {
  id = requiredArgument();
}

/** `mottainai pipeline stop ID`: stops running members and skips the rest; prints nothing. */
export class PipelineStopCommand extends PipelineIdCommand {
  static override paths = [["pipeline", "stop"]];
  static override usage = Command.Usage({
    category,
    description: "Stop a pipeline: running members stop, the others are skipped",
  });

  async run(): Promise<void> {
    await (await this.client(PipelineService)).stopPipeline({ id: this.id });
  }
}

/** `mottainai pipeline retry ID [--failed]`: runs a finished pipeline again; prints nothing. */
export class PipelineRetryCommand extends PipelineIdCommand {
  static override paths = [["pipeline", "retry"]];
  static override usage = Command.Usage({
    category,
    description: "Run a finished pipeline again; with --failed only its failed and skipped members",
  });

  failed = Option.Boolean("--failed", false, { description: "Rerun only the members that did not succeed" });

  async run(): Promise<void> {
    await (await this.client(PipelineService)).retryPipeline({ id: this.id, failedOnly: this.failed });
  }
}

/** `mottainai pipeline remove ID`: deletes a finished pipeline and its tasks; prints nothing. */
export class PipelineRemoveCommand extends PipelineIdCommand {
  static override paths = [
    ["pipeline", "remove"],
    ["pipeline", "delete"],
  ];
  static override usage = Command.Usage({ category, description: "Delete a finished pipeline with its tasks" });

  async run(): Promise<void> {
    await (await this.client(PipelineService)).deletePipeline({ id: this.id });
  }
}

/** Every `pipeline` command, for registration with the Cli. */
export const pipelineCommands = [
  PipelineCreateCommand,
  PipelineListCommand,
  PipelineShowCommand,
  PipelineGraphCommand,
  PipelineWaitCommand,
  PipelineStopCommand,
  PipelineRetryCommand,
  PipelineRemoveCommand,
];

async function readStdin(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}
