import { toJson } from "@bufbuild/protobuf";
import { type Task, TaskSchema, TaskService, type TaskStatus } from "@mottainai/proto";
import { Command, Option, UsageError } from "clipanion";
import { TASK_STATUS_WORDS, formatTimestamp, orNone, parseTaskStatus, taskResultWord, taskStatusWord } from "../format.js";
import { requireField } from "../require-field.js";
import { MottainaiCommand, integerOption, requiredArgument, jsonOption } from "./mottainai-command.js";
import { TaskCreateCommand } from "./task-create.js";

const category = "Tasks";

/** Largest page the server returns (ListTasksRequest.page_size). */
const maxPageSize = 1000;

/** Tasks `task list` shows without `--limit`. */
const defaultListLimit = 50;

/** `mottainai task list [--status S]... [--limit N] [--json]`: newest tasks first. */
export class TaskListCommand extends MottainaiCommand {
  static override paths = [["task", "list"]];
  static override usage = Command.Usage({
    category,
    description: "List tasks, newest first",
    details: `\`--status\` may be repeated or comma-separated: ${TASK_STATUS_WORDS.join(", ")}.`,
    examples: [["Running and waiting tasks", "$0 task list --status running --status waiting"]],
  });

  statuses = Option.Array("--status", [], { description: "Only tasks in this state (repeatable)" });
  limit = integerOption("--limit", `Most tasks to list (default ${defaultListLimit})`, 1);
  quiet = Option.Boolean("-q,--quiet", false, { description: "Print only the ids, one per line (the original's -q)" });
  json = jsonOption();

  async run(): Promise<void> {
    const statuses = this.statuses.flatMap((value) => value.split(",")).map(parseStatusWord);
    const limit = this.limit ?? defaultListLimit;
    const client = await this.client(TaskService);
    const tasks: Task[] = [];
    let pageToken = "";
    do {
      const page = await client.listTasks({
        pageSize: Math.min(limit - tasks.length, maxPageSize),
        pageToken,
        statuses,
      });
      tasks.push(...page.tasks.slice(0, limit - tasks.length));
      pageToken = page.nextPageToken;
    } while (pageToken !== "" && tasks.length < limit);

    if (this.quiet && !this.json) {
      for (const task of tasks) this.output.line(task.id);
      return;
    }
    this.output.list(
      this.json,
      TaskSchema,
      tasks,
      ["ID", "NAME", "TYPE", "STATUS", "RESULT", "ATTEMPT", "NODE", "CREATED"],
      (task) => [
        task.id,
        orNone(task.spec?.name),
        orNone(task.spec?.type),
        taskStatusWord(task.status),
        taskResultWord(task.result),
        String(task.attempt),
        orNone(task.nodeId),
        formatTimestamp(task.createTime),
      ],
    );
  }
}

/** `mottainai task show ID [--json]`: one task as `key: value` lines and an attempts table. */
export class TaskShowCommand extends MottainaiCommand {
  static override paths = [["task", "show"]];
  static override usage = Command.Usage({
    category,
    description: "Show a task and its attempts",
    details: "One `key: value` per line, then a table of attempts. Times are ISO 8601 UTC.",
  });

  id = requiredArgument();
  json = jsonOption();

  async run(): Promise<void> {
    const client = await this.client(TaskService);
    const task = requireField((await client.getTask({ id: this.id })).task, "task");
    if (this.json) {
      this.output.json(toJson(TaskSchema, task));
      return;
    }
    this.output.fields(taskFields(task));
    if (task.attempts.length > 0) {
      this.output.line("");
      this.output.table(
        ["#", "NODE", "RESULT", "EXIT", "ERROR", "STARTED", "ENDED"],
        task.attempts.map((attempt) => [
          String(attempt.number),
          orNone(attempt.nodeId),
          taskResultWord(attempt.result),
          orNone(attempt.exitCode),
          orNone(attempt.error),
          formatTimestamp(attempt.startTime),
          formatTimestamp(attempt.endTime),
        ]),
      );
    }
  }
}

/**
 * The `key: value` view of `task show`. The waiting reason appears only while the task waits and
 * the error only when there is one; other absent values are shown as "-".
 */
export function taskFields(task: Task): [string, string][] {
  const fields: [string, string][] = [
    ["id", task.id],
    ["name", orNone(task.spec?.name)],
    ["type", orNone(task.spec?.type)],
    ["image", orNone(task.spec?.image)],
    ["queue", task.spec?.queue || "general"],
    ["status", taskStatusWord(task.status)],
    ["result", taskResultWord(task.result)],
    ["exit code", orNone(task.exitCode)],
    ["owner", orNone(task.ownerId)],
    ["node", orNone(task.nodeId)],
    ["attempt", String(task.attempt)],
    ["created", formatTimestamp(task.createTime)],
    ["started", formatTimestamp(task.startTime)],
    ["ended", formatTimestamp(task.endTime)],
  ];
  if (taskStatusWord(task.status) === "waiting" && task.waitingReason !== "") {
    fields.push(["waiting", task.waitingReason]);
  }
  if (task.error !== "") {
    fields.push(["error", task.error]);
  }
  return fields;
}

/** `mottainai task log ID [--follow] [--offset N]`: the task's log bytes, exactly, on stdout. */
export class TaskLogCommand extends MottainaiCommand {
  static override paths = [["task", "log"]];
  static override usage = Command.Usage({
    category,
    description: "Print a task's log",
    details:
      "Writes the stored bytes unchanged. With `--follow` it keeps streaming until the task is done and every byte has been written.",
  });

  id = requiredArgument();
  follow = Option.Boolean("-f,--follow", false, { description: "Keep streaming until the task is done" });
  offset = integerOption("--offset", "Byte offset to start from (default 0)");

  async run(): Promise<void> {
    const client = await this.client(TaskService);
    const stream = client.followTaskLog({ id: this.id, offset: BigInt(this.offset ?? 0), follow: this.follow });
    for await (const chunk of stream) {
      await this.output.raw(chunk.data);
    }
  }
}

/** Base of the task commands that take one ID and call one RPC. */
abstract class TaskIdCommand extends MottainaiCommand {
  id = requiredArgument();
}

/** `mottainai task stop ID`: asks for the task to stop; prints nothing. */
export class TaskStopCommand extends TaskIdCommand {
  static override paths = [["task", "stop"]];
  static override usage = Command.Usage({ category, description: "Stop a task (a waiting one stops at once)" });

  async run(): Promise<void> {
    await (await this.client(TaskService)).stopTask({ id: this.id });
  }
}

/** `mottainai task remove ID`: deletes a task that is not running, with its log and artefacts; prints nothing. */
export class TaskRemoveCommand extends TaskIdCommand {
  static override paths = [["task", "remove"]];
  static override usage = Command.Usage({
    category,
    description: "Delete a task that is not running, with its log and artefacts",
  });

  async run(): Promise<void> {
    await (await this.client(TaskService)).deleteTask({ id: this.id });
  }
}

/** `mottainai task clone ID`: a new waiting task from the same spec; prints the new id. */
export class TaskCloneCommand extends TaskIdCommand {
  static override paths = [["task", "clone"]];
  static override usage = Command.Usage({
    category,
    description: "Create a new task from the spec of an existing one; prints the new id",
  });

  async run(): Promise<void> {
    const { task } = await (await this.client(TaskService)).cloneTask({ id: this.id });
    this.output.line(requireField(task, "task").id);
  }
}

/** `mottainai task restart ID`: puts a finished task back to waiting as a new attempt; prints its id. */
export class TaskRestartCommand extends TaskIdCommand {
  static override paths = [["task", "restart"]];
  static override usage = Command.Usage({ category, description: "Run a finished task again as a new attempt; prints its id" });

  async run(): Promise<void> {
    const { task } = await (await this.client(TaskService)).restartTask({ id: this.id });
    this.output.line(requireField(task, "task").id);
  }
}

/** Every `task` command, for registration with the Cli. */
export const taskCommands = [
  TaskCreateCommand,
  TaskListCommand,
  TaskShowCommand,
  TaskLogCommand,
  TaskStopCommand,
  TaskRemoveCommand,
  TaskCloneCommand,
  TaskRestartCommand,
];

function parseStatusWord(word: string): TaskStatus {
  const status = parseTaskStatus(word.trim());
  if (status === undefined) {
    throw new UsageError(`invalid --status "${word}": expected one of ${TASK_STATUS_WORDS.join(", ")}`);
  }
  return status;
}
