import { readFile } from "node:fs/promises";
import type { Readable } from "node:stream";
import { toJson } from "@bufbuild/protobuf";
import { TaskSchema, TaskService, parseTaskFile } from "@mottainai/proto";
import { Command, Option, UsageError } from "clipanion";
import { requireField } from "../require-field.js";
import { MottainaiCommand, jsonOption } from "./mottainai-command.js";

const category = "Tasks";

/** `mottainai task create -f FILE [--to NODE_REGEX] [--json]`: queues a task; prints its id. */
export class TaskCreateCommand extends MottainaiCommand {
  static override paths = [["task", "create"]];
  static override usage = Command.Usage({
    category,
    description: "Create a task from a task file (YAML or JSON)",
    details:
      "The file is checked before anything is sent; a malformed field is reported with its name. Prints the new task's id alone on a line, so that `id=$(mottainai task create -f task.yaml)` works.",
    examples: [
      ["Create a task", "$0 task create -f task.yaml"],
      ["Read the file from stdin, only on nodes named builder-*", "$0 task create -f - --to '^builder-'"],
    ],
  });

  file = Option.String("-f,--file", { required: true, description: "Task file; - reads stdin" });
  to = Option.String("--to", { description: "Regular expression over node names the task may run on" });
  json = jsonOption();

  async run(): Promise<void> {
    if (this.to !== undefined) {
      checkRegularExpression("--to", this.to);
    }
    const text = this.file === "-" ? await readText(this.context.stdin) : await readFile(this.file, "utf8");
    const spec = parseTaskFile(text, this.file === "-" ? "<stdin>" : this.file);
    const client = await this.client(TaskService);
    const task = requireField((await client.createTask({ spec, targetNode: this.to ?? "" })).task, "task");
    if (this.json) {
      this.output.json(toJson(TaskSchema, task));
    } else {
      this.output.line(task.id);
    }
  }
}

function checkRegularExpression(option: string, pattern: string): void {
  try {
    new RegExp(pattern);
  } catch (error) {
    throw new UsageError(`invalid ${option} "${pattern}": ${(error as Error).message}`);
  }
}

async function readText(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) {
    chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
  }
  return Buffer.concat(chunks).toString("utf8");
}
