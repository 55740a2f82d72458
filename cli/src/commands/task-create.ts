import { readFile } from "node:fs/promises";
import type { Readable } from "node:stream";
import { create, toJson } from "@bufbuild/protobuf";
import {
  NodeService,
  NodeState,
  SpecError,
  type Task,
  TaskSchema,
  TaskService,
  type TaskSpec,
  TaskSpecSchema,
  parseTaskFileWithWarnings,
} from "@mottainai/proto";
import { Command, Option, UsageError } from "clipanion";
import { monitorTasks } from "../monitor-tasks.js";
import { requireField } from "../require-field.js";
import { MottainaiCommand, jsonOption } from "./mottainai-command.js";

const category = "Tasks";

/**
 * `mottainai task create [-f FILE] [FIELD FLAGS] [--to REGEX | --to-any REGEX] [--monitor]`:
 * queues a task (one per matching node with --to); prints each id on a line, warnings on stderr.
 */
export class TaskCreateCommand extends MottainaiCommand {
  static override paths = [["task", "create"]];
  static override usage = Command.Usage({
    category,
    description: "Create a task from a task file (YAML or JSON) and/or the original's per-field flags",
    details: [
      "The file is checked before anything is sent; a malformed field is reported with its name. The server parses it again with the same rules and returns warnings for what it accepted but does not use as written (a `plan` key, unknown keys, repeated keys, `virtualbox` types); each is printed on stderr as `warning: …`.",
      "",
      "The per-field flags are the original's (`mottainai-cli task create`): each one given replaces the file's value (`--script` may be repeated; `--namespace` and `--storage` take comma-separated lists; `--cache-image` and `--prune` can only turn the option on). Without `-f`, the flags must describe a whole task (at least `--type`, `--script` and, for docker, libvirt and lxd types, `--image`).",
      "",
      "The original's file flags `--yaml FILE` (`-y`) and `--json FILE` (`-j`) are read as `-f FILE`; `--json` with no value prints the created task as JSON.",
      "",
      "`--to REGEX` is the original's: one task per connected node whose name matches, each bound to exactly that node. `--to-any REGEX` (new here) creates one task that may run on any matching node.",
      "",
      "Prints each new task's id alone on a line, so that `id=$(mottainai task create -f task.yaml)` works. With `--monitor` (the original's) it then waits as `task monitor` does: streams each task's log (lines prefixed with the id when there are several), writes `task ID: STATUS/RESULT` to stderr as each ends, and exits 0 only if every task ended done/success, 1 otherwise.",
    ].join("\n"),
    examples: [
      ["Create a task", "$0 task create -f task.yaml"],
      ["Override the file's image and wait for the outcome", "$0 task create -f task.yaml --image debian:12 --monitor"],
      ["A task from flags alone", "$0 task create --name hi --type host --script 'echo hi'"],
      ["One task on each node named builder-*", "$0 task create -f task.yaml --to '^builder-'"],
      ["Read the file from stdin, one task on any node named builder-*", "$0 task create -f - --to-any '^builder-'"],
    ],
  });

  file = Option.String("-f,--file", { description: "Task file; - reads stdin (optional when the flags give a whole task)" });
  name = Option.String("--name", { description: "name (the original's flag; overrides the file)" });
  script = Option.Array("--script", {
    description: "A script line, repeatable (the original's flag; replaces the file's script)",
  });
  image = Option.String("--image", { description: "image (the original's flag)" });
  type = Option.String("--type", { description: "type (the original's flag)" });
  source = Option.String("--source", { description: "source, a git URL (the original's flag)" });
  directory = Option.String("--directory", { description: "directory, from the checkout root (the original's flag)" });
  namespace = Option.String("--namespace", { description: "namespace, comma-separated (the original's flag)" });
  tagNamespace = Option.String("--tag-namespace", { description: "tag_namespace (the original's flag)" });
  storage = Option.String("--storage", { description: "storage, comma-separated (the original's flag)" });
  queue = Option.String("--queue", { description: "queue (the original's flag)" });
  cacheImage = Option.Boolean("--cache-image", false, { description: "Turn cache_image on (the original's flag)" });
  prune = Option.Boolean("--prune", false, { description: "Turn prune on (the original's flag)" });
  artefactPath = Option.String("--artefact-path", { description: "artefact_path (the original's flag)" });
  storagePath = Option.String("--storage-path", { description: "storage_path (the original's flag)" });
  to = Option.String("--to", {
    description: "One task per connected node whose name matches this regular expression (the original's meaning)",
  });
  toAny = Option.String("--to-any", {
    description: "One task that may run on any node whose name matches this regular expression",
  });
  monitor = Option.Boolean("--monitor", false, {
    description: "Wait for the task(s), stream the log, exit 0 only on done/success (the original's flag)",
  });
  json = jsonOption();

  async run(): Promise<number> {
    if (this.to !== undefined && this.toAny !== undefined) throw new UsageError("--to and --to-any cannot be used together");
    if (this.to !== undefined) checkRegularExpression("--to", this.to);
    if (this.toAny !== undefined) checkRegularExpression("--to-any", this.toAny);
    const overrides = this.overrides();
    const request = await this.request(overrides);
    const client = await this.client(TaskService);
    const targets = this.to === undefined ? [this.toAny ?? ""] : await this.matchingNodes(this.to);
    const tasks: Task[] = [];
    const warned = new Set<string>();
    for (const targetNode of targets) {
      const response = await client.createTask({ ...request, targetNode });
      for (const warning of response.warnings) {
        if (!warned.has(warning)) this.output.note(`warning: ${warning}`);
        warned.add(warning);
      }
      const task = requireField(response.task, "task");
      tasks.push(task);
      if (!this.json) this.output.line(task.id);
    }
    if (this.json) {
      const values = tasks.map((task) => toJson(TaskSchema, task));
      this.output.json(this.to === undefined ? (values[0] ?? null) : values);
    }
    if (!this.monitor) return 0;
    const ids = tasks.map((task) => task.id);
    return (await monitorTasks({ client, output: this.output, ids, signal: this.context.signal })).exitCode;
  }

  /** The fields the flags set; everything else keeps its proto3 default (not set). */
  private overrides(): TaskSpec {
    const list = (value: string | undefined) =>
      value === undefined
        ? []
        : value
            .split(",")
            .map((name) => name.trim())
            .filter((name) => name !== "");
    return create(TaskSpecSchema, {
      name: this.name ?? "",
      script: this.script ?? [],
      image: this.image ?? "",
      type: this.type ?? "",
      source: this.source ?? "",
      directory: this.directory ?? "",
      namespace: list(this.namespace),
      tagNamespace: this.tagNamespace ?? "",
      storage: list(this.storage),
      queue: this.queue ?? "",
      cacheImage: this.cacheImage,
      prune: this.prune,
      artefactPath: this.artefactPath ?? "",
      storagePath: this.storagePath ?? "",
    });
  }

  /**
   * The request: with -f, the file checked here first (nothing is sent when it is refused) and
   * sent as task_file with the flags as overrides; without, the flags completed with the task
   * file defaults, refused as a usage error naming the missing flag.
   */
  private async request(overrides: TaskSpec) {
    if (this.file === undefined) {
      try {
        return { spec: parseTaskFileWithWarnings("{}", undefined, overrides).spec };
      } catch (error) {
        if (!(error instanceof SpecError)) throw error;
        throw new UsageError(
          `--${error.field.replace(/\[\d+\]$/, "").replace(/_/g, "-")}: ${error.reason} (or give a task file with -f)`,
        );
      }
    }
    const fileName = this.file === "-" ? "<stdin>" : this.file;
    const taskFile = this.file === "-" ? await readText(this.context.stdin) : await readFile(this.file, "utf8");
    parseTaskFileWithWarnings(taskFile, fileName, overrides);
    return { taskFile, taskFileName: fileName, spec: overrides };
  }

  /** Anchored, escaped patterns of the connected nodes whose names match `pattern`, by name. */
  private async matchingNodes(pattern: string): Promise<string[]> {
    const re = new RegExp(pattern);
    const { nodes } = await (await this.client(NodeService)).listNodes({});
    const names = nodes
      .filter((node) => node.state === NodeState.ONLINE && re.test(node.name))
      .map((node) => node.name)
      .sort();
    if (names.length === 0) throw new Error(`--to "${pattern}": no connected node's name matches`);
    return names.map((name) => `^${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
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
